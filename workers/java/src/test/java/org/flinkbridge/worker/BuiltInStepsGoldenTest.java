package org.flinkbridge.worker;

import org.flinkbridge.proto.control.StepSpec;
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
import org.flinkbridge.worker.sdk.Emitter;
import org.flinkbridge.worker.sdk.Record;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

/**
 * The Java worker's built-in steps give what the golden vectors (proto/conventions, builtin-steps.golden.json)
 * say, each step made and fed as a session does: one instance per key group, on the session's clock.
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
        StepSpec spec = StepSpec.newBuilder().setName(vector.stepName()).setType(vector.type())
                .setConfigJson(vector.configJson()).build();
        if (vector.openError() != null) {
            try {
                SegmentInstances.createStep(spec, "golden", new SessionClock()).close();
                return vector.openMismatch(null);
            } catch (Exception e) {
                return vector.openMismatch(String.valueOf(e.getMessage()));
            }
        }
        try {
            return vector.eventsMismatch(() -> new Session(spec));
        } catch (Exception e) {
            throw new AssertionError(vector.name() + ": " + e, e);
        }
    }

    /** A session's logic as the worker keeps it: an instance of the step per key group, on the session's clock. */
    private static final class Session implements StepSession {
        private final SessionClock clock = new SessionClock();
        private final KeyGroupInstances instances;

        Session(StepSpec spec) {
            instances = new KeyGroupInstances(() -> SegmentInstances.createStep(spec, "golden", clock));
        }

        /** Null when the event gives what the vector says, else what differs. */
        @Override
        public String apply(Event event) {
            try {
                return switch (event) {
                    case ClockEvent clockEvent -> {
                        clock.stamp(clockEvent.millis());
                        yield null;
                    }
                    case RecordEvent record -> give(record.expected(), out -> instances.forKeyGroup(record.keyGroup())
                            .process(new Record(record.payload(), record.headers(), record.timestamp()), out));
                    case WatermarkEvent watermark -> give(watermark.expected(),
                            out -> instances.onWatermark(watermark.timestamp(), out));
                    case CheckpointEvent checkpoint -> checkpoint.mismatch(instances.snapshot());
                    case RestoreEvent restore -> throw new IllegalArgumentException("a restore starts a new session");
                };
            } catch (Exception e) {
                return "threw " + e;
            }
        }

        private String give(Expected expected, Call call) {
            List<Output> outputs = new ArrayList<>();
            String error = null;
            try {
                call.run(record -> outputs.add(new Output(record.payload(), record.headers(), record.timestamp())));
            } catch (Exception e) {
                error = String.valueOf(e.getMessage());
            }
            return expected.mismatch(outputs, error);
        }

        @Override
        public String restore(RestoreEvent restore) {
            try {
                instances.restore(restore.states());
                return restore.mismatch(null);
            } catch (Exception e) {
                return restore.mismatch(String.valueOf(e.getMessage()));
            }
        }

        @Override
        public void close() {
            try {
                instances.close();
            } catch (Exception e) {
                throw new IllegalStateException("closing the steps failed", e);
            }
        }
    }

    @FunctionalInterface
    private interface Call {
        void run(Emitter output) throws Exception;
    }
}
