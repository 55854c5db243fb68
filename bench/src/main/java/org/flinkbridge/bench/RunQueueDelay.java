package org.flinkbridge.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.Stream;

/**
 * How long the threads of this JVM (Flink) and of its child processes (the worker) waited on a CPU's run
 * queue while runnable, from Linux's per-thread schedstat, sampled while a run goes on: on a machine with
 * fewer cores than busy threads, a woken thread waits its turn, and a record in flight waits with it.
 */
final class RunQueueDelay implements AutoCloseable {

    private static final long SAMPLE_MILLIS = 100;

    /** The first and the last total seen of each process's run-queue wait, in ns, and when. */
    private final Map<Long, long[]> byProcess = new LinkedHashMap<>();
    private final Thread sampler;
    private volatile boolean stopped;
    private long firstMillis;
    private long lastMillis;

    RunQueueDelay() {
        sampler = Thread.ofPlatform().daemon().name("bench run-queue sampler").start(this::sample);
    }

    private void sample() {
        while (!stopped) {
            long now = System.currentTimeMillis();
            Stream.concat(Stream.of(ProcessHandle.current()), ProcessHandle.current().descendants())
                    .forEach(process -> {
                        long waited = waitedNanos(process.pid());
                        if (waited >= 0) {
                            synchronized (byProcess) {
                                byProcess.computeIfAbsent(process.pid(), pid -> new long[] {waited, waited})[1] = waited;
                            }
                        }
                    });
            synchronized (byProcess) {
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

    /** The sum over a process's threads of their run-queue wait, or -1 when it cannot be read (it ended). */
    private static long waitedNanos(long pid) {
        try (Stream<Path> threads = Files.list(Path.of("/proc", Long.toString(pid), "task"))) {
            return threads.mapToLong(thread -> {
                try {
                    return Long.parseLong(Files.readString(thread.resolve("schedstat")).trim().split("\\s+")[1]);
                } catch (IOException | RuntimeException gone) {
                    return 0; // the thread ended between the listing and the read
                }
            }).sum();
        } catch (IOException | RuntimeException gone) {
            return -1;
        }
    }

    /** Milliseconds of run-queue wait per second of the sampled time: this JVM's, and its children's. */
    double[] millisPerSecond() {
        synchronized (byProcess) {
            double seconds = Math.max(1, lastMillis - firstMillis) / 1000.0;
            double flink = 0;
            double children = 0;
            for (Map.Entry<Long, long[]> process : byProcess.entrySet()) {
                double waited = (process.getValue()[1] - process.getValue()[0]) / 1e6 / seconds;
                if (process.getKey() == ProcessHandle.current().pid()) {
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
