package org.flinkbridge.bridge.function;

import org.flinkbridge.bridge.session.WorkerChannel;
import org.flinkbridge.proto.control.KeyGroupState;

import java.util.List;

/** A session of one worker channel, with no state of its own and never replaced (no recovery in place). */
record FixedSession(WorkerChannel channel) implements SessionExchange.Session {
    @Override
    public String name() {
        return "session s";
    }

    @Override
    public String workerExit() {
        return null;
    }

    @Override
    public List<KeyGroupState> snapshotState(long checkpointId) {
        return List.of();
    }

    @Override
    public void replace(List<KeyGroupState> state, boolean stopped) {
        throw new AssertionError("a session without recovery in place is never replaced");
    }
}
