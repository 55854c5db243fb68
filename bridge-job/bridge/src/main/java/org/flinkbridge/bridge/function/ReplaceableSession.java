package org.flinkbridge.bridge.function;

import org.flinkbridge.bridge.session.BridgeSession;
import org.flinkbridge.bridge.session.SessionSpec;
import org.flinkbridge.bridge.session.WorkerChannel;
import org.flinkbridge.proto.control.CellDeclaration;
import org.flinkbridge.proto.control.KeyGroupState;
import org.flinkbridge.proto.control.SessionIdentity;
import org.flinkbridge.protocol.WorkerLostException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A bridge function's session, which recovery in place replaces with a new one when its worker is lost: a
 * spawned worker is started again (the lost one killed if it still runs), a sidecar is waited for at its
 * address, each for up to the pipeline's {@code worker_restart_timeout_ms}; the first session is waited for
 * the same way.
 */
final class ReplaceableSession implements SessionExchange.Session, AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(ReplaceableSession.class);
    private static final long RETRY_MILLIS = 200;

    private final SessionSpec spec;
    private final SessionIdentity identity;
    /** Volatile: the metrics reporter's thread reads the rings' occupancy through it. */
    private volatile BridgeSession current;
    /** The current session's name, or the lost one's while none replaces it yet. */
    private String name;
    private Runnable wakeUp;
    /** The cells the first session declared, and whether it sets timers; every replacement must declare the same. */
    private List<CellDeclaration> cells;
    private boolean timers;

    /**
     * Opens the session, its worker given the state a restored checkpoint holds before any record. With recovery
     * in place a worker lost meanwhile (killed while it starts, say) is waited for as {@link #replace} does.
     */
    ReplaceableSession(SessionSpec spec, SessionIdentity identity, List<KeyGroupState> restored) throws IOException {
        this.spec = spec;
        this.identity = identity;
        open(restored, "segment " + spec.segmentId() + " '" + spec.segmentName() + "' subtask "
                + identity.getSubtaskIndex() + "/" + identity.getParallelism());
    }

    /** Asks the session's channel, and every later session's, to wake the task when answers wait. */
    void onAnswersWaiting(Runnable wakeUp) {
        this.wakeUp = wakeUp;
        current.channel().onAnswersWaiting(wakeUp);
    }

    void notifyCheckpoint(long checkpointId, boolean completed) {
        if (current != null) {
            current.notifyCheckpoint(checkpointId, completed);
        }
    }

    /** Bytes queued for the worker in the current session's ring (0 over gRPC, or while none is open). */
    long toWorkerRingBytes() {
        BridgeSession session = current;
        return session == null ? 0 : session.channel().toWorkerRingBytes();
    }

    /** Bytes queued for the bridge in the current session's ring (0 over gRPC, or while none is open). */
    long fromWorkerRingBytes() {
        BridgeSession session = current;
        return session == null ? 0 : session.channel().fromWorkerRingBytes();
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public WorkerChannel channel() {
        return current.channel();
    }

    @Override
    public String workerExit() {
        return current == null ? null : current.workerExitDescription();
    }

    @Override
    public List<KeyGroupState> snapshotState(long checkpointId) throws IOException {
        return current.snapshotState(checkpointId);
    }

    @Override
    public void replace(List<KeyGroupState> state, boolean stopped) throws IOException {
        current.abandon(stopped);
        current = null;
        open(state, name);
    }

    /**
     * Opens a session and restores {@code state}; a worker lost on the way is tried again for up to the restart
     * timeout with recovery in place, and fails at once with failover.
     */
    private void open(List<KeyGroupState> state, String what) throws IOException {
        long timeoutMillis = spec.recovery().restartTimeoutMillis();
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
        while (true) {
            try {
                current = BridgeSession.open(spec, identity);
                name = current.name();
                requireSameDeclarations(current.cells(), current.timers());
                current.restoreState(state);
                if (wakeUp != null) {
                    current.channel().onAnswersWaiting(wakeUp);
                }
                return;
            } catch (WorkerLostException e) {
                if (current != null) {
                    current.abandon(false);
                    current = null;
                }
                if (!spec.recovery().inPlace()) {
                    throw e;
                }
                if (System.nanoTime() >= deadline) {
                    throw new IOException(what + ": no worker within " + timeoutMillis
                            + " ms (worker_restart_timeout_ms); the last try: " + e.getMessage(), e);
                }
                LOG.warn("{}: no worker to open a session on yet, trying again: {}", what, e.getMessage());
            }
            try {
                Thread.sleep(RETRY_MILLIS);
            } catch (InterruptedException interrupted) {
                Thread.currentThread().interrupt();
                throw new InterruptedIOException(what + ": interrupted while waiting for a worker");
            }
        }
    }

    /** The cells the session's steps declared, in the worker's order. */
    List<CellDeclaration> cells() {
        return cells;
    }

    /** Whether the session's steps may set timers. */
    boolean timers() {
        return timers;
    }

    /**
     * A replacement must keep the cells and the timers of the session it replaces: the bridge's keyed state is
     * declared once, and a worker whose steps declare others cannot take over their keys.
     */
    private void requireSameDeclarations(List<CellDeclaration> declared, boolean setsTimers) throws IOException {
        if (cells == null) {
            cells = declared;
            timers = setsTimers;
        } else if (timers != setsTimers) {
            current.abandon(false);
            current = null;
            throw new IOException(name + ": its steps " + (setsTimers ? "set" : "set no") + " timers, unlike those"
                    + " of the session it replaces (a changed step needs a restart of the job from a savepoint)");
        } else if (!cells.equals(declared)) {
            current.abandon(false);
            current = null;
            throw new IOException(name + ": its steps declare other cells than the session it replaces: "
                    + describe(declared) + " instead of " + describe(cells) + " (a changed step needs a restart of "
                    + "the job from a savepoint)");
        }
    }

    private static String describe(List<CellDeclaration> cells) {
        return cells.stream().map(cell -> cell.getStep() + "/" + cell.getName() + " " + cell.getKind() + " ttl "
                + cell.getTtlMs() + " ms").toList().toString();
    }

    @Override
    public void close() {
        if (current != null) {
            current.close();
        }
    }
}
