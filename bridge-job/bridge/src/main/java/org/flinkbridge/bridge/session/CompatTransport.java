package org.flinkbridge.bridge.session;

import org.flinkbridge.proto.control.KeyGroupState;
import org.flinkbridge.proto.control.StepSpec;
import org.flinkbridge.transport.grpc.CompatSegments;

import java.io.IOException;
import java.util.List;
import java.util.Map;

/**
 * The prototype's unary {@code FlinkWorkerService}, one call per input. It has no sessions: the worker learns each
 * segment's steps from its command line, keeps its state out of Flink's checkpoints and hears of no checkpoint,
 * so a lost worker fails the task.
 */
final class CompatTransport implements SessionTransport {

    static final CompatTransport INSTANCE = new CompatTransport();

    private CompatTransport() {}

    @Override
    public TransportSession open(SessionOpening opening) {
        SessionSpec spec = opening.spec();
        String name = opening.segment() + " (compat mode, " + opening.peer() + ")";
        return new CompatSession(name, new CompatChannel(opening.grpc(), spec.segmentId(), spec.workerTimeoutMillis()));
    }

    @Override
    public boolean recoversInPlace() {
        return false;
    }

    @Override
    public List<String> spawnArguments(Map<Integer, List<StepSpec>> segments) {
        return List.of(CompatSegments.OPTION, CompatSegments.toJson(segments));
    }

    /** A segment served by the prototype's service: nothing on the worker to snapshot, restore, notify or close. */
    private record CompatSession(String name, WorkerChannel channel) implements TransportSession {

        @Override
        public List<KeyGroupState> snapshotState(long checkpointId) {
            return List.of();
        }

        @Override
        public void restoreState(List<KeyGroupState> pieces) throws IOException {
            if (!pieces.isEmpty()) {
                throw new IOException(name + ": the checkpoint holds worker state, but the prototype's service "
                        + "(compat mode) cannot take it back; restore with the transport it was taken with");
            }
        }

        @Override
        public void notifyCheckpoint(long checkpointId, boolean completed) {}

        @Override
        public void closeOnWorker(long timeoutSeconds) {}
    }
}
