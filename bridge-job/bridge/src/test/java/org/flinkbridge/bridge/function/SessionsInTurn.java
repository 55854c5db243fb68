package org.flinkbridge.bridge.function;

import org.flinkbridge.bridge.session.WorkerChannel;
import org.flinkbridge.proto.control.KeyGroupState;

import java.io.IOException;
import java.util.List;

/** Sessions on the given workers one after another: each replacement opens on the next. */
class SessionsInTurn implements SessionExchange.Session {

    private final List<? extends WorkerChannel> workers;
    private int current;

    SessionsInTurn(List<? extends WorkerChannel> workers) {
        this.workers = workers;
    }

    int current() {
        return current;
    }

    @Override
    public String name() {
        return "session s" + current;
    }

    @Override
    public WorkerChannel channel() {
        return workers.get(current);
    }

    @Override
    public String workerExit() {
        return null;
    }

    @Override
    public List<KeyGroupState> snapshotState(long checkpointId) throws IOException {
        return List.of();
    }

    @Override
    public void replace(List<KeyGroupState> state, boolean stopped) {
        current++;
    }
}
