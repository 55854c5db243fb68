package org.flinkbridge.runner;

import org.apache.flink.runtime.checkpoint.Checkpoints;
import org.apache.flink.runtime.checkpoint.OperatorState;
import org.flinkbridge.bridge.BridgeOptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.BufferedWriter;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Worker state far larger than one frame or gRPC message goes into Flink's checkpoints and comes back (the
 * hardening issue, point 7): a running count over 520 keys of 512 KiB each holds about 520 MiB of cells in one
 * keyed session (each key, and its count's map key), far past the session's cells budget, so barriers evict keys
 * too, and the bridge keeps every cell in Flink's keyed state backend (RocksDB, incremental). Once a completed
 * checkpoint holds at least 256 MiB of state (its full size by Flink's own metadata, shared files included), the
 * worker is killed; the job restores from it, the restored job's next checkpoint holds as much again, and every
 * count comes out exactly once.
 */
class LargeStateTest {

    private static final int LARGE_KEYS = 520;
    private static final int KEY_BYTES = 512 * 1024;
    /**
     * Ticks at 500 a second keep the job running for 50 s: time to read the large keys, take a checkpoint of
     * them (every 10 s, so that taking ever larger checkpoints does not crowd out the reading), kill, restore,
     * and take one more.
     */
    private static final long TICKS = 25_000;
    private static final long LARGE_STATE = 256L << 20;

    /**
     * Each worker, in the long run (./flink-bridge test long): about a minute each. The default run keeps the barrier's
     * bounded evict list to ResidentKeysTest and keyed state's restore to CellsTest.
     */
    @Tag("long")
    @ParameterizedTest
    @CsvSource({"shm, java", "shm, python", "shm, rust"})
    void stateOfSeveralHundredMebibytesSurvivesAKillOfEveryWorker(String transport, String worker, @TempDir Path dir)
            throws Exception {
        survivesAWorkerKill(transport, worker, dir);
    }

    private static void survivesAWorkerKill(String transport, String worker, Path dir) throws Exception {
        Path input = writeLargeKeys(dir.resolve("large-keys.jsonl"));
        Path pipeline = TestPipelines.write(dir, "large", """
                name: large-state
                sources:
                  large: {type: file, path: %s}
                  ticks: {type: generator, count: %d, rate: 500, keys: 10, seed: 3}
                steps:
                  - {step_name: count_per_key, type: running_count, config: {key_json_field: key}}
                sinks:
                  files: {type: file, path: unused}
                bridge:
                  transport: %s
                  parallelism: 1
                  key: {json_field: key}
                  checkpoint_interval_ms: 10000
                  worker: %s
                  worker_recovery: failover
                """.formatted(input, TICKS, transport, worker));
        Path checkpoints = dir.resolve("checkpoints");
        Path out = dir.resolve("out");
        CheckpointSizes sizes = new CheckpointSizes(checkpoints);
        CompletableFuture<String> run = TestPipelines.runInBackground(pipeline.toString(), "--output", out.toString(),
                "-Dexecution.checkpointing.storage=filesystem",
                "-Dexecution.checkpointing.dir=" + checkpoints.toUri(),
                "-D" + BridgeOptions.WORKER_JVM_OPTIONS.key() + "=-Xmx3g -XX:+UseSerialGC",
                "-Drestart-strategy.type=fixed-delay", "-Drestart-strategy.fixed-delay.attempts=2",
                "-Drestart-strategy.fixed-delay.delay=200ms");
        String marker = TestPeers.faultTarget(worker);
        ProcessHandle killed = null;
        try {
            sizes.awaitOneOfAtLeast(LARGE_STATE, run);
            killed = TestPeers.spawned(marker).orElseThrow(() -> new AssertionError("no worker to kill; the job "
                    + state(run) + "; completed checkpoints: " + sizes.all()));
            sizes.ignoreThoseBegunBeforeTheKill();
            new ProcessBuilder("kill", "-KILL", Long.toString(killed.pid())).start().waitFor();
            sizes.startCountingAfterAReplacementOf(killed, marker, run);
            run.get(4, TimeUnit.MINUTES);
        } finally {
            sizes.stop();
            run.cancel(true);
        }

        assertTrue(sizes.largestAfterRestart() >= LARGE_STATE, "after the restore the job's checkpoints hold "
                + sizes.largestAfterRestart() + " bytes: its state did not come back (completed checkpoints: "
                + sizes.all() + ")");
        Map<String, List<Long>> counts = TestPipelines.runningCountsOnceEach(out);
        long large = counts.keySet().stream().filter(key -> key.length() > KEY_BYTES).count();
        assertEquals(LARGE_KEYS, large, "large keys in the output");
        long total = counts.values().stream().mapToLong(List::size).sum();
        assertEquals(LARGE_KEYS + TICKS, total, "records in the output");
    }

    private static String state(CompletableFuture<String> run) {
        return run.isDone() ? "ended: " + run.handle((summary, e) -> e == null ? summary : e.toString()).join()
                : "runs";
    }

    /**
     * One JSON line per large key: {@code {"key":"large-N-..."}}, each key just over 512 KiB of random letters
     * and digits, which the checkpoints' compression cannot shrink.
     */
    private static Path writeLargeKeys(Path file) throws IOException {
        String alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        SplittableRandom random = new SplittableRandom(11);
        char[] key = new char[KEY_BYTES];
        try (BufferedWriter out = Files.newBufferedWriter(file, StandardCharsets.UTF_8)) {
            for (int i = 0; i < LARGE_KEYS; i++) {
                for (int c = 0; c < key.length; c++) {
                    key[c] = alphabet.charAt(random.nextInt(alphabet.length()));
                }
                out.write("{\"key\":\"large-" + i + "-");
                out.write(key);
                out.write("\"}\n");
            }
        }
        return file;
    }

    /**
     * Watches the file checkpoint storage: the bytes of each completed checkpoint ({@code chk-N} with its
     * {@code _metadata}), and which of them completed after the killed worker was replaced.
     */
    private static final class CheckpointSizes {

        private final Path root;
        private final Map<String, Long> completed = new ConcurrentHashMap<>();
        private final Map<String, Long> afterRestart = new ConcurrentHashMap<>();
        private final Set<String> begunBeforeTheKill = ConcurrentHashMap.newKeySet();
        private volatile boolean counting;
        private volatile boolean stopped;
        private final Thread watcher;

        CheckpointSizes(Path root) {
            this.root = root;
            watcher = new Thread(this::watch, "checkpoint-sizes");
            watcher.setDaemon(true);
            watcher.start();
        }

        private void watch() {
            while (!stopped) {
                try (Stream<Path> found = Files.exists(root) ? Files.walk(root, 2) : Stream.empty()) {
                    for (Path checkpoint : found.filter(CheckpointSizes::isCheckpoint).toList()) {
                        String name = name(checkpoint);
                        if (!completed.containsKey(name) && Files.exists(checkpoint.resolve("_metadata"))) {
                            long bytes = bytes(checkpoint);
                            completed.put(name, bytes);
                            if (counting && !begunBeforeTheKill.contains(name)) {
                                afterRestart.put(name, bytes);
                            }
                        }
                    }
                    Thread.sleep(50);
                } catch (IOException | UncheckedIOException e) {
                    // a checkpoint Flink removed, or a _metadata not yet whole, while it was read: the next pass
                    // sees the current ones
                } catch (InterruptedException e) {
                    return;
                }
            }
        }

        private static boolean isCheckpoint(Path path) {
            return path.getFileName().toString().startsWith("chk-");
        }

        private static String name(Path checkpoint) {
            return checkpoint.getParent().getFileName() + "/" + checkpoint.getFileName();
        }

        /** A checkpoint already begun may still complete after the kill, with the state from before it. */
        void ignoreThoseBegunBeforeTheKill() throws IOException {
            try (Stream<Path> found = Files.walk(root, 2)) {
                found.filter(CheckpointSizes::isCheckpoint).map(CheckpointSizes::name).forEach(begunBeforeTheKill::add);
            }
        }

        /** The checkpoint's full state size as its {@code _metadata} records it, incremental files included. */
        private static long bytes(Path checkpoint) throws IOException {
            Path file = checkpoint.resolve("_metadata");
            try (DataInputStream metadata = new DataInputStream(Files.newInputStream(file))) {
                return Checkpoints.loadCheckpointMetadata(metadata, LargeStateTest.class.getClassLoader(),
                        checkpoint.toString()).getOperatorStates().stream().mapToLong(OperatorState::getStateSize).sum();
            } catch (NoSuchFileException gone) {
                return 0;
            }
        }

        void awaitOneOfAtLeast(long bytes, CompletableFuture<String> run) throws Exception {
            long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(2);
            while (completed.values().stream().noneMatch(size -> size >= bytes)) {
                if (run.isDone()) {
                    throw new AssertionError("the job ended before a checkpoint of " + bytes + " bytes: " + state(run)
                            + "; completed checkpoints: " + completed);
                }
                if (System.nanoTime() > deadline) {
                    throw new AssertionError("no checkpoint of " + bytes + " bytes within 2 minutes: " + completed);
                }
                Thread.sleep(50);
            }
        }

        /** From when a process other than {@code killed} serves the job again, checkpoints count as restored. */
        void startCountingAfterAReplacementOf(ProcessHandle killed, String marker, CompletableFuture<String> run)
                throws Exception {
            long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(2);
            while (TestPeers.spawned(marker).filter(p -> p.pid() != killed.pid() && p.isAlive()).isEmpty()) {
                if (run.isDone() || System.nanoTime() > deadline) {
                    throw new AssertionError("no worker replaced the killed one (pid " + killed.pid() + "); the job "
                            + state(run) + "; completed checkpoints: " + all());
                }
                Thread.sleep(20);
            }
            counting = true;
        }

        long largestAfterRestart() {
            return afterRestart.values().stream().mapToLong(Long::longValue).max().orElse(0);
        }

        Map<String, Long> all() {
            return new TreeMap<>(completed);
        }

        void stop() throws InterruptedException {
            stopped = true;
            watcher.interrupt();
            watcher.join();
        }
    }
}
