package org.flinkbridge.worker;

import java.time.Duration;

/**
 * Ends a spawned worker once the process that spawned it (a TaskManager, or the local runner) is gone,
 * whenever that happens, start-up included.
 *
 * <p>The spawner passes its own pid. The worker compares it with its current parent at once and then every
 * {@link #CHECK_INTERVAL}: when a parent dies, the kernel hands its children to init (or a subreaper), so
 * the parent seen differs from the pid given even if the spawner died before this JVM was up, and even if
 * its pid has been reused since. {@code prctl(PR_SET_PDEATHSIG)} is not used: it fires when the spawning
 * <em>thread</em> ends, and a Flink task thread that spawned the shared worker ends with its task while
 * other sessions still use the worker.
 */
final class ParentWatch {

    static final Duration CHECK_INTERVAL = Duration.ofMillis(200);
    /** The exit code of a worker whose spawner is gone. */
    static final int EXIT_PARENT_GONE = 3;
    /** How long the shutdown hooks (closing sessions) may take before the process halts regardless. */
    private static final Duration SHUTDOWN_GRACE = Duration.ofSeconds(5);

    private ParentWatch() {}

    /** Exits now if {@code spawnerPid} is no longer this process's parent, else watches on a daemon thread. */
    static void exitWhenGone(long spawnerPid) {
        exitUnlessParent(spawnerPid);
        Thread watch = new Thread(() -> {
            while (true) {
                try {
                    Thread.sleep(CHECK_INTERVAL);
                } catch (InterruptedException e) {
                    return;
                }
                exitUnlessParent(spawnerPid);
            }
        }, "parent-watch");
        watch.setDaemon(true);
        watch.start();
    }

    private static void exitUnlessParent(long spawnerPid) {
        long parent = ProcessHandle.current().parent().map(ProcessHandle::pid).orElse(0L);
        if (parent != spawnerPid) {
            System.err.println("flink-bridge worker: the process that spawned it (" + spawnerPid
                    + ") is gone (parent is now " + parent + "); exiting");
            Thread halt = new Thread(() -> {
                try {
                    Thread.sleep(SHUTDOWN_GRACE);
                } catch (InterruptedException ignored) {
                    // halting now is what the sleep was waiting for
                }
                Runtime.getRuntime().halt(EXIT_PARENT_GONE);
            }, "parent-gone-halt");
            halt.setDaemon(true);
            halt.start();
            System.exit(EXIT_PARENT_GONE);
        }
    }
}
