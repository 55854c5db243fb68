package org.flinkbridge.bridge.session;

import org.flinkbridge.transport.shm.RingWatch;

import java.io.IOException;
import java.util.concurrent.locks.LockSupport;

/**
 * A thread that sleeps on a session's from-worker ring and calls a wake-up when answers lie there untaken,
 * so they reach Flink while its task thread has no input to hand the bridge. After a wake-up it waits for
 * the task thread to poll before watching again, so one batch of answers makes one wake-up.
 */
final class ShmAnswerWatcher {

    private final RingWatch watch;
    private final Runnable wakeUp;
    private final long checkNanos;
    private final Thread thread;
    /** Whether the answers of the last wake-up were polled; the watcher waits for that before watching. */
    private volatile boolean polled = true;
    private volatile boolean stopped;
    private volatile Throwable failure;

    /** @param checkNanos the longest sleep before the thread looks at its stop flag again */
    ShmAnswerWatcher(RingWatch watch, Runnable wakeUp, String sessionName, long checkNanos) {
        this.watch = watch;
        this.wakeUp = wakeUp;
        this.checkNanos = checkNanos;
        this.thread = Thread.ofPlatform().daemon().name("flink-bridge answers: " + sessionName).unstarted(this::run);
        thread.start();
    }

    private void run() {
        try {
            while (!stopped) {
                if (!polled) {
                    LockSupport.parkNanos(this, checkNanos);
                } else if (watch.awaitUntakenFrames(checkNanos) && !stopped) {
                    polled = false;
                    wakeUp.run();
                }
            }
        } catch (Throwable t) {
            failure = t;
        }
    }

    /** The task thread polled the ring: the watcher may watch again. Reports a failure of the watcher. */
    void polled() throws IOException {
        if (!polled) {
            polled = true;
            LockSupport.unpark(thread);
        }
        Throwable failed = failure;
        if (failed != null) {
            throw new IOException("the thread watching for the worker's answers failed: " + failed, failed);
        }
    }

    /**
     * Stops the thread and waits for it even when interrupted (a cancelled task is), because the ring must
     * not be unmapped while the thread sleeps on it.
     */
    void stop() {
        stopped = true;
        boolean interrupted = false;
        while (thread.isAlive()) {
            watch.wake();
            LockSupport.unpark(thread);
            try {
                thread.join(10);
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }
}
