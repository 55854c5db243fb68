package org.flinkbridge.bridge.session;

import org.flinkbridge.transport.shm.RingWatch;

import java.io.IOException;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;

/**
 * A thread that sleeps on a session's from-worker ring and calls a wake-up when answers lie there untaken,
 * so they reach Flink while its task thread has no input to hand the bridge. After a wake-up it waits for
 * the task thread to poll before watching again, so one batch of answers makes one wake-up.
 *
 * <p>Between answers it also looks whether the worker is gone, and wakes the task thread once when it is: the task
 * thread otherwise notices a lost worker only while it waits for one (a full ring, a barrier), so on a sparse stream
 * recovery in place would start a checkpoint interval late, with the inputs since the loss waiting unanswered.
 */
final class ShmAnswerWatcher {

    private final RingWatch watch;
    private final Runnable wakeUp;
    private final BooleanSupplier workerGone;
    private final long checkNanos;
    private final Thread thread;
    /** Whether the answers of the last wake-up were polled; the watcher waits for that before watching. */
    private volatile boolean polled = true;
    private volatile boolean stopped;
    private volatile Throwable failure;
    /** Whether the watcher saw the worker gone (and woke the task thread for it). */
    private volatile boolean sawWorkerGone;

    /**
     * @param workerGone whether the worker is gone; asked from the watcher's thread
     * @param checkNanos the longest sleep before the thread looks at its stop flag and the worker again
     */
    ShmAnswerWatcher(RingWatch watch, Runnable wakeUp, BooleanSupplier workerGone, String sessionName,
                     long checkNanos) {
        this.watch = watch;
        this.wakeUp = wakeUp;
        this.workerGone = workerGone;
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
                } else if (!sawWorkerGone && !stopped && workerGone.getAsBoolean()) {
                    sawWorkerGone = true;
                    polled = false;
                    wakeUp.run();
                }
            }
        } catch (Throwable t) {
            failure = t;
        }
    }

    /**
     * The task thread polled the ring: the watcher may watch again. Reports a failure of the watcher.
     *
     * @return whether the watcher saw the worker gone
     */
    boolean polled() throws IOException {
        if (!polled) {
            polled = true;
            LockSupport.unpark(thread);
        }
        Throwable failed = failure;
        if (failed != null) {
            throw new IOException("the thread watching for the worker's answers failed: " + failed, failed);
        }
        return sawWorkerGone;
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
