package org.flinkbridge.worker;

import org.flinkbridge.protocol.BuiltInStep;
import org.flinkbridge.protocol.BuiltInStepVectors;
import org.flinkbridge.protocol.BuiltInStepVectors.CheckpointEvent;
import org.flinkbridge.protocol.BuiltInStepVectors.ClockEvent;
import org.flinkbridge.protocol.BuiltInStepVectors.Event;
import org.flinkbridge.protocol.BuiltInStepVectors.Expected;
import org.flinkbridge.protocol.BuiltInStepVectors.Output;
import org.flinkbridge.protocol.BuiltInStepVectors.RecordEvent;
import org.flinkbridge.protocol.BuiltInStepVectors.RestoreEvent;
import org.flinkbridge.protocol.BuiltInStepVectors.StepSession;
import org.flinkbridge.protocol.BuiltInStepVectors.Vector;
import org.flinkbridge.protocol.BuiltInStepVectors.WatermarkEvent;
import org.flinkbridge.worker.sdk.Record;
import org.flinkbridge.worker.sdk.StepHarness;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.util.List;
import java.util.Set;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

/**
 * The Java worker's built-in steps give what the golden vectors (proto/conventions, builtin-steps.golden.json)
 * say, each step made and fed as a session does (by {@link StepHarness}): one instance per key group, on the
 * session's clock.
 */
class BuiltInStepsGoldenTest {

    private static final String WORKER = "java";
    private static final List<Vector> VECTORS = BuiltInStepVectors.load();

    @TestFactory
    Stream<DynamicTest> everyVector() {
        return VECTORS.stream().map(vector -> DynamicTest.dynamicTest(vector.name(), () -> {
            String mismatch = mismatch(vector);
            if (vector.driftsIn(WORKER)) {
                assertNotNull(mismatch, vector.name() + ": the known drift is gone: remove its known_drift." + WORKER);
            } else {
                assertNull(mismatch, vector.name());
            }
        }));
    }

    @Test
    void everyBuiltInStepHasVectors() {
        Set<String> covered = VECTORS.stream().map(Vector::type).collect(Collectors.toSet());
        assertEquals(Set.copyOf(BuiltInStep.typeNames()), covered);
    }

    /** Null when the Java worker gives what the vector says, else the first difference. */
    private static String mismatch(Vector vector) {
        if (vector.openError() != null) {
            try {
                StepHarness.named(vector.stepName(), vector.type(), vector.configJson()).close();
                return vector.openMismatch(null);
            } catch (Exception e) {
                return vector.openMismatch(String.valueOf(e.getMessage()));
            }
        }
        try {
            return vector.eventsMismatch(() -> new Session(vector));
        } catch (Exception e) {
            throw new AssertionError(vector.name() + ": " + e, e);
        }
    }

    /**
     * A session of the vector's step, in the harness that runs steps as the worker does; its states are the
     * segment's encoding of the step's.
     */
    private static final class Session implements StepSession {
        private final StepHarness harness;

        Session(Vector vector) throws Exception {
            harness = StepHarness.named(vector.stepName(), vector.type(), vector.configJson());
        }

        /** Null when the event gives what the vector says, else what differs. */
        @Override
        public String apply(Event event) {
            try {
                return switch (event) {
                    case ClockEvent clockEvent -> {
                        harness.setProcessingTime(clockEvent.millis());
                        yield null;
                    }
                    case RecordEvent record -> give(record.expected(), () -> harness.process(record.keyGroup(),
                            new Record(record.payload(), record.headers(), record.timestamp())));
                    case WatermarkEvent watermark -> give(watermark.expected(),
                            () -> harness.watermark(watermark.timestamp()));
                    case CheckpointEvent checkpoint -> checkpoint.segmentMismatch(harness.checkpoint());
                    case RestoreEvent restore -> throw new IllegalArgumentException("a restore starts a new session");
                };
            } catch (Exception e) {
                return "threw " + e;
            }
        }

        private static String give(Expected expected, Callable<List<Record>> input) {
            try {
                List<Output> outputs = input.call().stream()
                        .map(record -> new Output(record.payload(), record.headers(), record.timestamp())).toList();
                return expected.mismatch(outputs, null);
            } catch (Exception e) {
                return expected.mismatch(List.of(), String.valueOf(e.getMessage()));
            }
        }

        @Override
        public String restore(RestoreEvent restore) {
            SortedMap<Integer, byte[]> states = new TreeMap<>();
            restore.states().forEach((group, state) -> states.put(group, BuiltInStepVectors.segmentState(state)));
            try {
                harness.restore(states);
                return restore.mismatch(null);
            } catch (Exception e) {
                return restore.mismatch(String.valueOf(e.getMessage()));
            }
        }

        @Override
        public void close() throws Exception {
            harness.close();
        }
    }
}
