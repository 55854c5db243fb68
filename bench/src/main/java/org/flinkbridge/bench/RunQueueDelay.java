package org.flinkbridge.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

/**
 * How long the threads of this JVM (Flink) and of its child processes (the worker) waited on a CPU's run
 * queue while runnable, from Linux's per-thread schedstat, sampled while a run goes on: on a machine with
 * fewer cores than busy threads, a woken thread waits its turn, and a record in flight waits with it.
 */
final class RunQueueDelay implements AutoCloseable {

    private static final long SAMPLE_MILLIS = 100;

    /**
     * The first and the last run-queue wait seen of each thread, in ns, by thread id; a thread's own total
     * only grows, while a process's sum over its threads drops when one of them ends.
     */
    private final Map<Long, long[]> byThread = new HashMap<>();
    /** The threads of this JVM, as opposed to its children's. */
    private final Set<Long> ownThreads = new HashSet<>();
    private final Thread sampler;
    private volatile boolean stopped;
    private long firstMillis;
    private long lastMillis;

    RunQueueDelay() {
        sampler = Thread.ofPlatform().daemon().name("bench run-queue sampler").start(this::sample);
    }

    private void sample() {
        long self = ProcessHandle.current().pid();
        while (!stopped) {
            long now = System.currentTimeMillis();
            Stream.concat(Stream.of(ProcessHandle.current()), ProcessHandle.current().descendants())
                    .forEach(process -> readThreads(process.pid(), process.pid() == self));
            synchronized (byThread) {
                firstMillis = firstMillis == 0 ? now : firstMillis;
                lastMillis = now;
            }
            try {
                Thread.sleep(SAMPLE_MILLIS);
            } catch (InterruptedException e) {
                return;
            }
        }
    }

    /** Records the run-queue wait of each of a process's threads; a process or thread that ended is skipped. */
    private void readThreads(long pid, boolean own) {
        try (Stream<Path> threads = Files.list(Path.of("/proc", Long.toString(pid), "task"))) {
            threads.forEach(thread -> {
                try {
                    long waited = Long.parseLong(Files.readString(thread.resolve("schedstat")).trim().split("\\s+")[1]);
                    long tid = Long.parseLong(thread.getFileName().toString());
                    synchronized (byThread) {
                        byThread.computeIfAbsent(tid, id -> new long[] {waited, waited})[1] = waited;
                        if (own) {
                            ownThreads.add(tid);
                        }
                    }
                } catch (IOException | RuntimeException gone) {
                    // the thread ended between the listing and the read: its last sample stands
                }
            });
        } catch (IOException | RuntimeException gone) {
            // the process ended: its threads' last samples stand
        }
    }

    /** Milliseconds of run-queue wait per second of the sampled time: this JVM's, and its children's. */
    double[] millisPerSecond() {
        synchronized (byThread) {
            double seconds = Math.max(1, lastMillis - firstMillis) / 1000.0;
            double flink = 0;
            double children = 0;
            for (Map.Entry<Long, long[]> thread : byThread.entrySet()) {
                double waited = (thread.getValue()[1] - thread.getValue()[0]) / 1e6 / seconds;
                if (ownThreads.contains(thread.getKey())) {
                    flink += waited;
                } else {
                    children += waited;
                }
            }
            return new double[] {flink, children};
        }
    }

    @Override
    public void close() throws InterruptedException {
        stopped = true;
        sampler.interrupt();
        sampler.join();
    }
}
