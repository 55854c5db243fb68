package org.flinkbridge.bench;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The resident memory of the worker processes a benchmark's jobs spawn: the sum of {@code VmRSS} of every process
 * descended from this JVM (the embedded TaskManager spawns them, and the Python and Rust workers' session processes
 * descend from those), sampled every {@value #PERIOD_MILLIS} ms; the largest sum since {@link #resetPeak}.
 */
final class WorkerMemory implements AutoCloseable {

    private static final long PERIOD_MILLIS = 200;

    private final ScheduledExecutorService sampler = Executors.newSingleThreadScheduledExecutor(runnable -> {
        Thread thread = new Thread(runnable, "worker-rss-sampler");
        thread.setDaemon(true);
        return thread;
    });
    private final AtomicLong peak = new AtomicLong();
    private final AtomicReference<RuntimeException> failure = new AtomicReference<>();

    WorkerMemory() {
        sampler.scheduleAtFixedRate(() -> {
            try {
                long now = residentBytes();
                peak.accumulateAndGet(now, Math::max);
            } catch (RuntimeException e) {
                failure.compareAndSet(null, e);
            }
        }, 0, PERIOD_MILLIS, TimeUnit.MILLISECONDS);
    }

    /** The sum of the descendants' resident memory now, in bytes. */
    static long residentBytes() {
        return ProcessHandle.current().descendants().mapToLong(process -> vmRss(process.pid())).sum();
    }

    /** The largest sum sampled since the last reset; fails with the sampler's error if it had one. */
    long peakBytes() {
        RuntimeException error = failure.get();
        if (error != null) {
            throw new IllegalStateException("sampling the workers' resident memory failed", error);
        }
        return peak.get();
    }

    void resetPeak() {
        peak.set(0);
    }

    /** A process's VmRSS in bytes; 0 for one that has exited meanwhile. */
    private static long vmRss(long pid) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "status"))) {
                if (line.startsWith("VmRSS:")) {
                    return Long.parseLong(line.substring("VmRSS:".length()).replace("kB", "").trim()) * 1024;
                }
            }
            return 0;
        } catch (NoSuchFileException e) {
            return 0;
        } catch (IOException e) {
            throw new UncheckedIOException("reading /proc/" + pid + "/status", e);
        }
    }

    @Override
    public void close() {
        sampler.shutdownNow();
    }
}
