package org.flinkbridge.conformance;

import com.google.protobuf.ByteString;
import io.grpc.StatusRuntimeException;
import org.flinkbridge.conformance.WorkerUnderTest.KitTransport;
import org.flinkbridge.conformance.WorkerUnderTest.Session;
import org.flinkbridge.proto.control.KeyGroupState;
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
import org.flinkbridge.protocol.FrameType;
import org.flinkbridge.protocol.KeyGroups;
import org.flinkbridge.transport.grpc.StatePieces;

import java.util.ArrayList;
import java.util.List;
import java.util.SortedMap;
import java.util.TreeMap;

import static org.flinkbridge.conformance.Report.require;

/**
 * The built-in steps over the wire: each golden vector (proto/conventions, builtin-steps.golden.json) played as a
 * bridge would, in sessions of that one step, its outputs and each key group's state checked against the vector. A
 * vector some worker is known to depart from is left out: the workers' own tests hold each to it or to its drift.
 */
record BuiltInStepPoints(WorkerUnderTest worker, Report report) {

    private static final long ANSWER_MILLIS = 20_000;

    /** One point per built-in step, over {@code transport}. */
    void run(KitTransport transport) {
        List<Vector> vectors = BuiltInStepVectors.load();
        for (BuiltInStep step : BuiltInStep.values()) {
            List<Vector> agreed = vectors.stream()
                    .filter(vector -> vector.type().equals(step.typeName()) && vector.knownDrift().isEmpty()).toList();
            report.check("built-in steps: " + step.typeName() + " gives the outputs and state of its " + agreed.size()
                    + " golden vectors (" + transport.flag + ")", () -> {
                require(!agreed.isEmpty(), "no golden vector describes " + step.typeName());
                for (Vector vector : agreed) {
                    String mismatch = mismatch(transport, vector);
                    require(mismatch == null, "vector '" + vector.name() + "': " + mismatch);
                }
            });
        }
        List<String> drifting = vectors.stream().filter(vector -> !vector.knownDrift().isEmpty())
                .map(vector -> vector.name() + " (" + String.join(", ", vector.knownDrift().keySet()) + ")").toList();
        if (!drifting.isEmpty()) {
            report.skip("built-in steps: the golden vectors some worker is known to depart from",
                    String.join("; ", drifting));
        }
    }

    /** Null when the worker gives what the vector says, else the first difference. */
    private String mismatch(KitTransport transport, Vector vector) throws Exception {
        StepSpec step = StepSpec.newBuilder().setName(vector.stepName()).setType(vector.type())
                .setConfigJson(vector.configJson()).build();
        if (vector.openError() != null) {
            try {
                worker.closeQuietly(worker.open(transport, List.of(step), 0, 1));
                return vector.openMismatch(null);
            } catch (StatusRuntimeException refused) {
                return vector.openMismatch(String.valueOf(refused.getStatus().getDescription()));
            }
        }
        return vector.eventsMismatch(() -> new WireSession(worker.open(transport, List.of(step), 0, 1)));
    }

    /** One session of the step, fed its events in order, each awaited. */
    private final class WireSession implements StepSession {
        final Session session;
        private long sequence;

        WireSession(Session session) {
            this.session = session;
        }

        @Override
        public void close() {
            worker.closeQuietly(session);
        }

        @Override
        public String apply(Event event) throws Exception {
            long input = sequence++;
            DataPath data = session.data();
            return switch (event) {
                case ClockEvent clock -> {
                    data.clock(input, clock.millis());
                    yield answered(input, new Expected(List.of(), null));
                }
                case RecordEvent record -> {
                    data.record(input, record.keyGroup(),
                            new KitRecord(record.timestamp(), record.headers(), record.payload()));
                    yield answered(input, record.expected());
                }
                case WatermarkEvent watermark -> {
                    data.watermark(input, watermark.timestamp());
                    yield answered(input, watermark.expected());
                }
                case CheckpointEvent checkpoint -> {
                    data.barrier(input, input);
                    String barrier = answered(input, new Expected(List.of(), null));
                    yield barrier != null ? "the barrier " + barrier
                            : checkpoint.segmentMismatch(joined(worker.snapshot(session.id(), input)));
                }
                case RestoreEvent restore -> throw new IllegalArgumentException("a restore starts a new session");
            };
        }

        /** Hands the new session its state, as a bridge does before any input. */
        @Override
        public String restore(RestoreEvent restore) throws Exception {
            List<KeyGroupState> pieces = new ArrayList<>();
            restore.states().forEach((group, state) -> pieces.addAll(StatePieces.cut(KeyGroups.toOptional(group),
                    ByteString.copyFrom(BuiltInStepVectors.segmentState(state)))));
            try {
                worker.restore(session.id(), pieces);
                return restore.mismatch(null);
            } catch (StatusRuntimeException refused) {
                return restore.mismatch(String.valueOf(refused.getStatus().getDescription()));
            }
        }

        /** Null when input {@code input}'s answers are what {@code expected} says, else what differs. */
        private String answered(long input, Expected expected) throws Exception {
            List<Output> outputs = new ArrayList<>();
            String error = null;
            for (Answer answer : session.data().answersThrough(input, ANSWER_MILLIS)) {
                if (answer.type() == FrameType.OUTPUT) {
                    KitRecord output = answer.output();
                    outputs.add(new Output(output.payload(), output.headers(), output.timestamp()));
                } else if (answer.type() == FrameType.ERROR) {
                    error = answer.error();
                }
            }
            return expected.mismatch(outputs, error);
        }
    }

    /** Each key group's state, its pieces joined. */
    private static SortedMap<Integer, byte[]> joined(List<KeyGroupState> pieces) {
        SortedMap<Integer, ByteString> states = new TreeMap<>();
        for (KeyGroupState piece : pieces) {
            states.merge(KeyGroups.fromOptional(piece.hasKeyGroup(), piece.getKeyGroup()), piece.getState(),
                    ByteString::concat);
        }
        SortedMap<Integer, byte[]> joined = new TreeMap<>();
        states.forEach((group, state) -> joined.put(group, state.toByteArray()));
        return joined;
    }
}
