package org.flinkbridge.bridge.session;

import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.StreamObserver;
import org.flinkbridge.bridge.BridgeOptions;
import org.flinkbridge.proto.control.Ack;
import org.flinkbridge.proto.control.BridgeControlGrpc;
import org.flinkbridge.proto.control.CheckpointNotification;
import org.flinkbridge.proto.control.CellDeclaration;
import org.flinkbridge.proto.control.KeyGroupState;
import org.flinkbridge.proto.control.OpenSessionRequest;
import org.flinkbridge.proto.control.OpenSessionResponse;
import org.flinkbridge.proto.control.ProtocolVersion;
import org.flinkbridge.proto.control.SessionRef;
import org.flinkbridge.proto.control.ShmRing;
import org.flinkbridge.proto.control.SnapshotStateRequest;
import org.flinkbridge.proto.control.TransportKind;
import org.flinkbridge.protocol.WorkerLostException;
import org.flinkbridge.transport.grpc.GrpcChannels;
import org.flinkbridge.transport.grpc.StatePieces;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * A session the worker's control service keeps (the shared-memory and the streamed gRPC transports): opened with
 * {@code OpenSession}, its state taken and given back over {@code SnapshotState}/{@code RestoreState}, told of
 * checkpoints and closed by its id.
 */
final class ControlServiceSession implements TransportSession {

    private static final Logger LOG = LoggerFactory.getLogger(ControlServiceSession.class);

    private final String name;
    private final String sessionId;
    private final ManagedChannel grpc;
    private final WorkerChannel channel;
    private final long timeoutMillis;
    private final long maxSnapshotBytes;
    private final List<CellDeclaration> cells;
    private final boolean timers;

    private ControlServiceSession(String name, String sessionId, ManagedChannel grpc, WorkerChannel channel,
                                  long timeoutMillis, long maxSnapshotBytes, OpenSessionResponse opened) {
        this.name = name;
        this.sessionId = sessionId;
        this.grpc = grpc;
        this.channel = channel;
        this.timeoutMillis = timeoutMillis;
        this.maxSnapshotBytes = maxSnapshotBytes;
        this.cells = List.copyOf(opened.getCellsList());
        this.timers = opened.getTimers();
    }

    /** The data channel of a session the worker has just opened. */
    @FunctionalInterface
    interface DataChannel {
        WorkerChannel open(String sessionId, String sessionName) throws IOException;
    }

    /**
     * Opens a session on the worker over {@code transport}, then its data channel.
     *
     * @param ring  the session's ring file as the worker is to map it (shared memory), or null
     * @param token the secret the session's data plane carries (a ring file holds it too)
     * @param over  the data plane as the log names it, e.g. {@code gRPC}
     */
    static ControlServiceSession open(SessionOpening opening, TransportKind transport, ShmRing ring, String token,
                                      DataChannel dataChannel, String over) throws IOException {
        SessionSpec spec = opening.spec();
        OpenSessionRequest.Builder request = OpenSessionRequest.newBuilder()
                .setProtocolVersion(ProtocolVersion.PROTOCOL_VERSION_CURRENT)
                .setIdentity(opening.identity())
                .setSegmentId(spec.segmentId())
                .setTransport(transport)
                .setToken(token)
                .setKeyed(spec.keyed());
        if (ring != null) {
            request.setRing(ring);
        }
        for (SessionSpec.Step step : spec.steps()) {
            request.addSteps(step.toProto());
        }
        OpenSessionResponse opened;
        try {
            opened = BridgeControlGrpc.newBlockingStub(opening.grpc())
                    .withDeadlineAfter(spec.workerTimeoutMillis(), TimeUnit.MILLISECONDS)
                    .openSession(request.build());
        } catch (StatusRuntimeException e) {
            throw failure("cannot open a session for " + opening.segment() + " on the " + opening.peer(), e);
        }
        String name = opening.sessionName(opened.getSessionId());
        ControlServiceSession session = new ControlServiceSession(name, opened.getSessionId(), opening.grpc(),
                dataChannel.open(opened.getSessionId(), name), spec.workerTimeoutMillis(), spec.maxSnapshotBytes(),
                opened);
        LOG.info("opened {} over {}", name, over);
        return session;
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public WorkerChannel channel() {
        return channel;
    }

    @Override
    public List<CellDeclaration> cells() {
        return cells;
    }

    @Override
    public boolean timers() {
        return timers;
    }

    @Override
    public List<KeyGroupState> snapshotState(long checkpointId) throws IOException {
        String what = name + ": cannot take the worker's state for checkpoint " + checkpointId;
        try {
            return StatePieces.snapshot(grpc, SnapshotStateRequest.newBuilder().setSessionId(sessionId)
                    .setCheckpointId(checkpointId).build(), timeoutMillis, maxSnapshotBytes);
        } catch (StatePieces.TooLarge e) {
            throw new IOException(what + ": its state passed " + e.bytes() + " bytes, more than the "
                    + maxSnapshotBytes + " that " + BridgeOptions.MAX_SNAPSHOT_SIZE.key() + " allows", e);
        } catch (TimeoutException e) {
            throw new WorkerLostException(what + ": " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException(what + ": interrupted");
        } catch (StatusRuntimeException e) {
            throw failure(what, e);
        }
    }

    @Override
    public void restoreState(List<KeyGroupState> pieces) throws IOException {
        if (pieces.isEmpty()) {
            return;
        }
        try {
            StatePieces.restore(grpc, sessionId, pieces, timeoutMillis);
        } catch (TimeoutException e) {
            throw new IOException(name + ": cannot restore the worker's state: " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException(name + ": interrupted while restoring the worker's state");
        } catch (StatusRuntimeException e) {
            throw failure(name + ": cannot restore the worker's state", e);
        }
    }

    @Override
    public void notifyCheckpoint(long checkpointId, boolean completed) {
        BridgeControlGrpc.newStub(grpc).withDeadlineAfter(timeoutMillis, TimeUnit.MILLISECONDS).notifyCheckpoint(
                CheckpointNotification.newBuilder().setSessionId(sessionId).setCheckpointId(checkpointId)
                        .setCompleted(completed).build(),
                new StreamObserver<>() {
                    @Override
                    public void onNext(Ack ack) {}

                    @Override
                    public void onError(Throwable t) {
                        LOG.warn("{}: telling the worker checkpoint {} {} failed: {}", name, checkpointId,
                                completed ? "completed" : "was aborted", GrpcChannels.describe(Status.fromThrowable(t)));
                    }

                    @Override
                    public void onCompleted() {}
                });
    }

    @Override
    public void closeOnWorker(long timeoutSeconds) {
        try {
            BridgeControlGrpc.newBlockingStub(grpc).withDeadlineAfter(timeoutSeconds, TimeUnit.SECONDS)
                    .closeSession(SessionRef.newBuilder().setSessionId(sessionId).build());
        } catch (StatusRuntimeException e) {
            LOG.warn("{}: closing it on the worker failed: {}", name, e.getStatus());
        }
    }

    /**
     * A control call that failed: the worker is lost when it cannot be reached, did not answer in time, or no
     * longer knows the session (a worker restarted at the same address).
     */
    private static IOException failure(String what, StatusRuntimeException e) {
        String message = what + ": " + GrpcChannels.describe(e.getStatus());
        return switch (e.getStatus().getCode()) {
            case UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED, NOT_FOUND -> new WorkerLostException(message, e);
            default -> new IOException(message, e);
        };
    }
}
