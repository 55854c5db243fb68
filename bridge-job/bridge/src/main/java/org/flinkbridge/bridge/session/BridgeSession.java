package org.flinkbridge.bridge.session;

import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.StreamObserver;
import org.flinkbridge.pipeline.TransportMode;
import org.flinkbridge.proto.control.Ack;
import org.flinkbridge.proto.control.BridgeControlGrpc;
import org.flinkbridge.proto.control.CheckpointNotification;
import org.flinkbridge.proto.control.KeyGroupState;
import org.flinkbridge.proto.control.OpenSessionRequest;
import org.flinkbridge.proto.control.OpenSessionResponse;
import org.flinkbridge.proto.control.ProtocolVersion;
import org.flinkbridge.proto.control.SessionIdentity;
import org.flinkbridge.proto.control.SessionRef;
import org.flinkbridge.proto.control.ShmRing;
import org.flinkbridge.proto.control.SnapshotStateRequest;
import org.flinkbridge.proto.control.TransportKind;
import org.flinkbridge.protocol.SessionTokens;
import org.flinkbridge.protocol.WorkerLostException;
import org.flinkbridge.transport.grpc.ControlSecret;
import org.flinkbridge.transport.grpc.GrpcChannels;
import org.flinkbridge.transport.grpc.StatePieces;
import org.flinkbridge.transport.shm.RingFile;
import org.flinkbridge.transport.shm.RingFiles;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The bridge side of one session: finds or spawns the worker, opens the session over the control service,
 * and owns the data channel. Closing it closes the session on the worker and releases a spawned worker.
 */
public final class BridgeSession implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(BridgeSession.class);

    private final String name;
    private final SpawnedWorker spawned;
    private final ManagedChannel grpc;
    private final String sessionId;
    private final WorkerChannel channel;
    private final long timeoutMillis;

    private BridgeSession(String name, SpawnedWorker spawned, ManagedChannel grpc, String sessionId,
                          WorkerChannel channel, long timeoutMillis) {
        this.name = name;
        this.spawned = spawned;
        this.grpc = grpc;
        this.sessionId = sessionId;
        this.channel = channel;
        this.timeoutMillis = timeoutMillis;
    }

    public static BridgeSession open(SessionSpec spec, SessionIdentity identity) throws IOException {
        String subtask = "subtask " + identity.getSubtaskIndex() + "/" + identity.getParallelism();
        SpawnedWorker spawned = spec.workerAddress() == null
                ? SpawnedWorker.acquire(spec.workerCommand(), spec.workerTimeoutMillis(),
                        spec.recovery().inPlace() && spec.recovery().standby())
                : null;
        String address = spawned == null ? spec.workerAddress() : spawned.address();
        String peer = "worker at " + address + (spawned == null ? "" : " (pid " + spawned.pid() + ")");
        ManagedChannel grpc = null;
        RingFile ring = null;
        try {
            grpc = GrpcChannels.open(address, ControlSecret.forDirectory(Path.of(spec.shm().directory())));
            if (spec.mode() == TransportMode.GRPC_COMPAT) {
                String name = "segment " + spec.segmentId() + " '" + spec.segmentName() + "' " + subtask
                        + " (compat mode, " + peer + ")";
                return new BridgeSession(name, spawned, grpc, null,
                        new CompatChannel(grpc, spec.segmentId(), spec.workerTimeoutMillis()),
                        spec.workerTimeoutMillis());
            }
            String token = SessionTokens.random();
            ring = spec.mode() == TransportMode.SHM ? createRing(spec.shm(), token) : null;
            OpenSessionResponse opened = openOnWorker(spec, identity, token, ring, grpc, peer, subtask);
            String name = "session " + opened.getSessionId() + " (segment " + spec.segmentId() + " '"
                    + spec.segmentName() + "' " + subtask + ", " + peer + ")";
            WorkerChannel channel = ring != null
                    ? new ShmChannel(ring, name, spec.shm().livenessTimeoutMillis(), spec.workerTimeoutMillis(),
                            () -> spawned == null ? null : spawned.exitDescription())
                    : new GrpcStreamChannel(grpc, opened.getSessionId(), token, name,
                            spec.maxBatchFrames(), spec.workerTimeoutMillis());
            LOG.info("opened {} over {}", name, ring != null ? "shared memory (" + ring.path() + ")" : "gRPC");
            return new BridgeSession(name, spawned, grpc, opened.getSessionId(), channel,
                    spec.workerTimeoutMillis());
        } catch (IOException | RuntimeException e) {
            if (ring != null) {
                try {
                    ring.close();
                } catch (IOException closing) {
                    e.addSuppressed(closing);
                }
            }
            if (grpc != null) {
                GrpcChannels.close(grpc);
            }
            if (spawned != null && e instanceof WorkerLostException) {
                // It started but does not serve: it hangs, and the next try needs another.
                spawned.releaseLost();
            } else if (spawned != null) {
                spawned.release();
            }
            throw e;
        }
    }

    /** A new ring file in the configured directory, after removing any left there by crashed processes. */
    private static RingFile createRing(SessionSpec.ShmSettings shm, String token) throws IOException {
        Path directory = Path.of(shm.directory());
        int stale = RingFiles.cleanStaleOnce(directory);
        if (stale > 0) {
            LOG.info("removed {} ring file(s) left in {} by processes that are gone", stale, directory);
        }
        return RingFile.create(RingFiles.newSessionPath(directory),
                shm.ringCapacity(), shm.ringCapacity(), token);
    }

    /** @param ring the session's ring file (transport shm), or null for a gRPC data stream */
    private static OpenSessionResponse openOnWorker(SessionSpec spec, SessionIdentity identity, String token,
                                                    RingFile ring, ManagedChannel grpc, String peer,
                                                    String subtask) throws IOException {
        OpenSessionRequest.Builder request = OpenSessionRequest.newBuilder()
                .setProtocolVersion(ProtocolVersion.PROTOCOL_VERSION_CURRENT)
                .setIdentity(identity)
                .setSegmentId(spec.segmentId())
                .setTransport(spec.mode() == TransportMode.SHM ? TransportKind.TRANSPORT_KIND_SHM
                        : TransportKind.TRANSPORT_KIND_GRPC)
                .setToken(token);
        if (ring != null) {
            request.setRing(ShmRing.newBuilder()
                    .setPath(ring.path().toString())
                    .setToWorkerCapacity(spec.shm().ringCapacity())
                    .setFromWorkerCapacity(spec.shm().ringCapacity())
                    .setLivenessTimeoutMs((int) spec.shm().livenessTimeoutMillis()));
        }
        for (SessionSpec.Step step : spec.steps()) {
            request.addSteps(step.toProto());
        }
        try {
            return BridgeControlGrpc.newBlockingStub(grpc)
                    .withDeadlineAfter(spec.workerTimeoutMillis(), TimeUnit.MILLISECONDS)
                    .openSession(request.build());
        } catch (StatusRuntimeException e) {
            throw failure("cannot open a session for segment " + spec.segmentId() + " '"
                    + spec.segmentName() + "' " + subtask + " on the " + peer, e);
        }
    }

    public String name() {
        return name;
    }

    public WorkerChannel channel() {
        return channel;
    }

    public long timeoutMillis() {
        return timeoutMillis;
    }

    /**
     * The worker's state of this session by key group, in the pieces it came in, taken once every earlier
     * input is answered; empty in compatibility mode, whose service keeps no state the bridge can see.
     */
    public List<KeyGroupState> snapshotState(long checkpointId) throws IOException {
        if (sessionId == null) {
            return List.of();
        }
        List<KeyGroupState> pieces = new ArrayList<>();
        try {
            control().snapshotState(SnapshotStateRequest.newBuilder().setSessionId(sessionId)
                    .setCheckpointId(checkpointId).build())
                    .forEachRemaining(message -> pieces.addAll(message.getStatesList()));
        } catch (StatusRuntimeException e) {
            throw controlFailure("cannot take the worker's state for checkpoint " + checkpointId, e);
        }
        return pieces;
    }

    /** Hands the worker its state from a checkpoint, in the pieces it was taken in, before any record. */
    public void restoreState(List<KeyGroupState> pieces) throws IOException {
        if (pieces.isEmpty()) {
            return;
        }
        if (sessionId == null) {
            throw new IOException(name + ": the checkpoint holds worker state, but the prototype's service "
                    + "(compat mode) cannot take it back; restore with the transport it was taken with");
        }
        try {
            StatePieces.restore(grpc, sessionId, pieces, timeoutMillis);
        } catch (TimeoutException e) {
            throw new IOException(name + ": cannot restore the worker's state: " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException(name + ": interrupted while restoring the worker's state");
        } catch (StatusRuntimeException e) {
            throw controlFailure("cannot restore the worker's state", e);
        }
    }

    /**
     * Tells the worker a checkpoint completed or was aborted, without waiting: the notification is advice,
     * and a worker that is gone fails the session through its data plane.
     */
    public void notifyCheckpoint(long checkpointId, boolean completed) {
        if (sessionId == null) {
            return;
        }
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

    private BridgeControlGrpc.BridgeControlBlockingStub control() {
        return BridgeControlGrpc.newBlockingStub(grpc).withDeadlineAfter(timeoutMillis, TimeUnit.MILLISECONDS);
    }

    private IOException controlFailure(String what, StatusRuntimeException e) {
        return failure(name + ": " + what, e);
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

    /** Why the worker stopped answering, when this JVM knows: the spawned process's exit. */
    public String workerExitDescription() {
        return spawned == null ? null : spawned.exitDescription();
    }

    /**
     * Leaves a session whose worker is lost, to open another: kills the worker process when this JVM started it
     * and it still runs, and closes the session on the worker only when it may still serve others (a sidecar).
     * {@code stopped}: the worker stopped as asked (an upgrade): a spawned one is left to exit, and the next
     * session of its command gets a new process rather than the standby, which runs the old build.
     */
    public void abandon(boolean stopped) {
        channel.close();
        if (spawned == null && sessionId != null) {
            closeOnWorker(1);
        }
        GrpcChannels.close(grpc);
        if (spawned != null) {
            if (stopped) {
                spawned.releaseStopped();
            } else {
                spawned.releaseLost();
            }
        }
    }

    @Override
    public void close() {
        channel.close();
        if (sessionId != null) {
            closeOnWorker(5);
        }
        GrpcChannels.close(grpc);
        if (spawned != null) {
            spawned.release();
        }
    }

    private void closeOnWorker(long timeoutSeconds) {
        try {
            BridgeControlGrpc.newBlockingStub(grpc).withDeadlineAfter(timeoutSeconds, TimeUnit.SECONDS)
                    .closeSession(SessionRef.newBuilder().setSessionId(sessionId).build());
        } catch (StatusRuntimeException e) {
            LOG.warn("{}: closing it on the worker failed: {}", name, e.getStatus());
        }
    }
}
