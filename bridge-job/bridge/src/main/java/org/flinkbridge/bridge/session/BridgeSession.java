package org.flinkbridge.bridge.session;

import io.grpc.ManagedChannel;
import org.flinkbridge.proto.control.CellDeclaration;
import org.flinkbridge.proto.control.KeyGroupState;
import org.flinkbridge.proto.control.SessionIdentity;
import org.flinkbridge.protocol.RingFolder;
import org.flinkbridge.protocol.WorkerLostException;
import org.flinkbridge.transport.grpc.ControlSecret;
import org.flinkbridge.transport.grpc.GrpcChannels;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * The bridge side of one session: finds or spawns the worker, opens the session through its transport's strategy
 * ({@link SessionTransport}), and owns what that opened. Closing it closes the session on the worker and releases
 * a spawned worker.
 */
public final class BridgeSession implements AutoCloseable {

    private final SpawnedWorker spawned;
    private final ManagedChannel grpc;
    private final TransportSession session;
    private final long timeoutMillis;

    private BridgeSession(SpawnedWorker spawned, ManagedChannel grpc, TransportSession session, long timeoutMillis) {
        this.spawned = spawned;
        this.grpc = grpc;
        this.session = session;
        this.timeoutMillis = timeoutMillis;
    }

    public static BridgeSession open(SessionSpec spec, SessionIdentity identity) throws IOException {
        // Before a worker is spawned into it, a secret read from it or a socket in it called: whatever transport.
        Path ringFolder = RingFolder.ensurePrivate(Path.of(spec.shm().directory()));
        String subtask = "subtask " + identity.getSubtaskIndex() + "/" + identity.getParallelism();
        if (spec.workerAddress() != null) {
            // Checked before the job starts too; this catches a spec that reached the TaskManager another way.
            WorkerAddressCheck.requireOnThisHost(spec.workerAddress(), spec.allowPlaintextRemote());
        }
        SpawnedWorker spawned = spec.workerAddress() == null
                ? SpawnedWorker.acquire(spec.workerCommand(), spec.workerTimeoutMillis(),
                        spec.recovery().inPlace() && spec.recovery().standby())
                : null;
        String address = spawned == null ? spec.workerAddress() : spawned.address();
        String peer = "worker at " + address + (spawned == null ? "" : " (pid " + spawned.pid() + ")");
        ManagedChannel grpc = null;
        try {
            grpc = GrpcChannels.open(address, ControlSecret.forDirectory(ringFolder));
            TransportSession session = SessionTransport.of(spec.mode()).open(new SessionOpening(spec, identity, grpc,
                    peer, subtask, () -> spawned == null ? null : spawned.exitDescription()));
            return new BridgeSession(spawned, grpc, session, spec.workerTimeoutMillis());
        } catch (IOException | RuntimeException e) {
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

    public String name() {
        return session.name();
    }

    public WorkerChannel channel() {
        return session.channel();
    }

    /** The cells the session's steps declared, in the worker's order. */
    public List<CellDeclaration> cells() {
        return session.cells();
    }

    /** Whether the session's steps may set timers. */
    public boolean timers() {
        return session.timers();
    }

    public long timeoutMillis() {
        return timeoutMillis;
    }

    /** See {@link TransportSession#snapshotState}; empty where the transport keeps no state the bridge can see. */
    public List<KeyGroupState> snapshotState(long checkpointId) throws IOException {
        return session.snapshotState(checkpointId);
    }

    /** See {@link TransportSession#restoreState}. */
    public void restoreState(List<KeyGroupState> pieces) throws IOException {
        session.restoreState(pieces);
    }

    /** See {@link TransportSession#notifyCheckpoint}. */
    public void notifyCheckpoint(long checkpointId, boolean completed) {
        session.notifyCheckpoint(checkpointId, completed);
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
        session.channel().close();
        if (spawned == null) {
            session.closeOnWorker(1);
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
        session.channel().close();
        session.closeOnWorker(5);
        GrpcChannels.close(grpc);
        if (spawned != null) {
            spawned.release();
        }
    }
}
