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
 * The resident memory of the worker processes a benchmark's jobs spawn: the sums over every process descended from
 * this JVM (the embedded TaskManager spawns them, and the Python and Rust workers' session processes descend from
 * those), sampled every {@value #PERIOD_MILLIS} ms; the largest sums since {@link #resetPeak}. Two sums: all of
 * {@code VmRSS}, and the workers' own part of it, {@code RssAnon + RssFile}, without {@code RssShmem}: the pages of
 * the shm rings that the worker maps and the bridge maps too (each session's two rings, up to
 * {@code flink-bridge.shm.ring-capacity} each, count there once they are touched).
 */
final class WorkerMemory implements AutoCloseable {

    private static final long PERIOD_MILLIS = 200;

    private final ScheduledExecutorService sampler = Executors.newSingleThreadScheduledExecutor(runnable -> {
        Thread thread = new Thread(runnable, "worker-rss-sampler");
        thread.setDaemon(true);
        return thread;
    });
    private final AtomicLong peak = new AtomicLong();
    private final AtomicLong ownPeak = new AtomicLong();
    private final AtomicReference<RuntimeException> failure = new AtomicReference<>();

    WorkerMemory() {
        sampler.scheduleAtFixedRate(() -> {
            try {
                Resident now = resident();
                peak.accumulateAndGet(now.all(), Math::max);
                ownPeak.accumulateAndGet(now.own(), Math::max);
            } catch (RuntimeException e) {
                failure.compareAndSet(null, e);
            }
        }, 0, PERIOD_MILLIS, TimeUnit.MILLISECONDS);
    }

    /** Resident bytes: all of them ({@code VmRSS}), and the process's own ({@code RssAnon + RssFile}). */
    record Resident(long all, long own) {
        Resident plus(Resident other) {
            return new Resident(all + other.all, own + other.own);
        }
    }

    /** The sums over the descendants now. */
    static Resident resident() {
        return ProcessHandle.current().descendants().map(process -> resident(process.pid()))
                .reduce(new Resident(0, 0), Resident::plus);
    }

    /** The largest sum of {@code VmRSS} sampled since the last reset; fails with the sampler's error if it had one. */
    long peakBytes() {
        checkSampled();
        return peak.get();
    }

    /** The largest sum of the processes' own resident memory ({@code RssAnon + RssFile}) since the last reset. */
    long ownPeakBytes() {
        checkSampled();
        return ownPeak.get();
    }

    private void checkSampled() {
        RuntimeException error = failure.get();
        if (error != null) {
            throw new IllegalStateException("sampling the workers' resident memory failed", error);
        }
    }

    void resetPeak() {
        peak.set(0);
        ownPeak.set(0);
    }

    /** A process's resident bytes, from its status; none for one that has exited meanwhile. */
    private static Resident resident(long pid) {
        try {
            long all = 0;
            long own = 0;
            for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "status"))) {
                if (line.startsWith("VmRSS:")) {
                    all = kibibytes(line);
                } else if (line.startsWith("RssAnon:") || line.startsWith("RssFile:")) {
                    own += kibibytes(line);
                }
            }
            return new Resident(all * 1024, own * 1024);
        } catch (NoSuchFileException e) {
            return new Resident(0, 0);
        } catch (IOException e) {
            // A process that exits while its status is read (the state benchmark kills the workers) fails the read
            // with ESRCH rather than leaving no file.
            if (!Files.exists(Path.of("/proc", Long.toString(pid)))) {
                return new Resident(0, 0);
            }
            throw new UncheckedIOException("reading /proc/" + pid + "/status", e);
        }
    }

    /** The figure of a status line such as {@code VmRSS:     1234 kB}. */
    private static long kibibytes(String line) {
        return Long.parseLong(line.substring(line.indexOf(':') + 1).replace("kB", "").trim());
    }

    @Override
    public void close() {
        sampler.shutdownNow();
    }
}
