package org.flinkbridge.bridge.session;

import org.flinkbridge.proto.control.CellDeclaration;
import org.flinkbridge.proto.control.KeyGroupState;

import java.io.IOException;
import java.util.List;

/** One open session as its transport keeps it: the data channel and the session's calls on the worker. */
public interface TransportSession {

    /** The session as messages name it: its id, segment, subtask and worker. */
    String name();

    WorkerChannel channel();

    /** The cells the session's steps declared, in the worker's order (none over the prototype's service). */
    default List<CellDeclaration> cells() {
        return List.of();
    }

    /** Whether the session's steps may set timers (none over the prototype's service). */
    default boolean timers() {
        return false;
    }

    /**
     * The worker's state of this session by key group, in the pieces it came in, taken once every earlier input
     * is answered.
     */
    List<KeyGroupState> snapshotState(long checkpointId) throws IOException;

    /** Hands the worker its state from a checkpoint, in the pieces it was taken in, before any record. */
    void restoreState(List<KeyGroupState> pieces) throws IOException;

    /**
     * Tells the worker a checkpoint completed or was aborted, without waiting: the notification is advice, and a
     * worker that is gone fails the session through its data plane.
     */
    void notifyCheckpoint(long checkpointId, boolean completed);

    /** Ends the session on the worker, waiting at most {@code timeoutSeconds}; a failure is logged, not thrown. */
    void closeOnWorker(long timeoutSeconds);
}
