package org.flinkbridge.transport.shm;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * Beats every open ring of this process from one daemon thread, so a peer can tell a live side from a dead
 * one even while this side is idle or busy in application logic. A beat is one ordered store per ring.
 */
final class Heartbeats {

    /** How often each open ring's liveness word is refreshed. */
    static final long INTERVAL_MILLIS = 100;

    private static final Set<RingFile> OPEN = ConcurrentHashMap.newKeySet();
    private static final ScheduledExecutorService TIMER = Executors.newSingleThreadScheduledExecutor(runnable -> {
        Thread thread = new Thread(runnable, "flink-bridge-ring-heartbeat");
        thread.setDaemon(true);
        return thread;
    });

    static {
        TIMER.scheduleAtFixedRate(() -> OPEN.forEach(RingFile::heartbeat), INTERVAL_MILLIS, INTERVAL_MILLIS,
                TimeUnit.MILLISECONDS);
    }

    private Heartbeats() {}

    static void start(RingFile ring) {
        OPEN.add(ring);
    }

    static void stop(RingFile ring) {
        OPEN.remove(ring);
    }
}
