package org.flinkbridge.runner;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Timers through real jobs and real workers (docs/protocol.md, "Timers"): the built-in {@code window} step sets an
 * event-time timer per key and window, which the bridge keeps in Flink's keyed state backend and fires as the
 * watermarks pass; every worker language over both transports, then a worker killed mid-run, restored by a
 * failover (timers from Flink's checkpoint) and by a recovery in place (fired timers replayed from the journal).
 *
 * <p>The generator's events are one millisecond apart from a whole second, so every full window of a second holds
 * exactly 1,000 of them, whatever their keys: each window's counts over all keys add up to that, once each.
 */
class WindowTimersTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @ParameterizedTest
    @CsvSource({"java, shm", "rust, grpc"})
    void tumblingWindowsCountEveryRecordOnce(String worker, String transport, @TempDir Path dir) throws Exception {
        tumblingWindows(worker, transport, dir);
    }

    /** The other workers and transports, in the long run (./flink-bridge test long). */
    @Tag("long")
    @ParameterizedTest
    @CsvSource({"java, grpc", "python, shm", "python, grpc", "rust, shm"})
    void tumblingWindowsCountEveryRecordOnceOnEveryWorker(String worker, String transport, @TempDir Path dir)
            throws Exception {
        tumblingWindows(worker, transport, dir);
    }

    private static void tumblingWindows(String worker, String transport, Path dir) throws Exception {
        int records = 6_000;
        Path pipeline = pipeline(dir, records, "size_ms: 1000", "worker: " + worker);

        String summary = LocalRunner.run(new String[] {pipeline.toString(), "--transport=" + transport});

        // Generated events come in time order: none is late.
        assertTrue(summary.contains("read=" + records) && summary.contains(" late_records=0"), summary);
        assertWindowTotals(dir.resolve("out"), records, 1_000, 1_000);
    }

    /**
     * The built-in {@code count} in a keyed segment runs on {@code window}'s cells and timers (docs/steps.md): its
     * windows of a second, each key's once, count every record once. (The Java and the Rust worker run it in
     * WorkerLanguagesTest.)
     */
    @Test
    void countInAKeyedSegmentCountsEveryRecordOnceByTimers(@TempDir Path dir) throws Exception {
        int records = 6_000;
        Path pipeline = pipeline(dir, records, "count", "window_ms: 1000", "worker: python");

        String summary = LocalRunner.run(new String[] {pipeline.toString(), "--transport=grpc"});

        assertTrue(summary.contains("read=" + records), summary);
        assertWindowTotals(dir.resolve("out"), records, 1_000, 1_000);
    }

    /** Sliding windows: each record is in two, and each window of two seconds holds 2,000 records. */
    @ParameterizedTest
    @CsvSource({"python"})
    void slidingWindowsCountEachRecordInEveryWindowThatHoldsIt(String worker, @TempDir Path dir) throws Exception {
        slidingWindows(worker, dir);
    }

    /** The other workers, in the long run. */
    @Tag("long")
    @ParameterizedTest
    @CsvSource({"java", "rust"})
    void slidingWindowsCountEachRecordInEveryWindowThatHoldsItOnEveryWorker(String worker, @TempDir Path dir)
            throws Exception {
        slidingWindows(worker, dir);
    }

    private static void slidingWindows(String worker, Path dir) throws Exception {
        int records = 5_000;
        Path pipeline = pipeline(dir, records, "size_ms: 2000, slide_ms: 1000", "worker: " + worker);

        LocalRunner.run(new String[] {pipeline.toString()});

        assertWindowTotals(dir.resolve("out"), records, 2_000, 1_000);
    }

    /**
     * A spawned worker killed mid-run: with failover the job restores its timers from Flink's checkpoint; in place,
     * the replacement is sent the journal's records and fired timers again. Either way every window comes out once.
     */
    @ParameterizedTest
    @CsvSource({"python, failover", "python, in_place", "java, in_place"})
    void windowsComeOutOnceWhenTheWorkerIsKilledMidRun(String worker, String recovery, @TempDir Path dir)
            throws Exception {
        int records = 40_000;
        Path pipeline = pipeline(dir, records, "size_ms: 1000", "worker: " + worker + ", worker_recovery: "
                + recovery);
        RunningJob run = TestPipelines.runInBackground(pipeline.toString());

        TestPeers.signal(TestPeers.awaitSpawned(TestPeers.faultTarget(worker), records / 3, run), "KILL");
        String summary = run.get(4, TimeUnit.MINUTES);

        assertTrue(recovery.equals("failover") ? summary.contains(" restarts=")
                : summary.contains("worker_recoveries="), summary);
        assertWindowTotals(dir.resolve("out"), records, 1_000, 1_000);
    }

    /**
     * Timers follow their keys on a rescale: a run at parallelism 2 fails when its worker is killed, and its last
     * checkpoint restored at parallelism 1 (or 3) fires every window left, each once.
     */
    @Test
    void timersRestoredAtALowerParallelismFireEachWindowOnce(@TempDir Path dir) throws Exception {
        timersRestoredAtAnotherParallelism("1", dir);
    }

    /** At a higher one, in the long run (./flink-bridge test long). */
    @Tag("long")
    @Test
    void timersRestoredAtAHigherParallelismFireEachWindowOnce(@TempDir Path dir) throws Exception {
        timersRestoredAtAnotherParallelism("3", dir);
    }

    private static void timersRestoredAtAnotherParallelism(String parallelism, Path dir)
            throws Exception {
        int records = 30_000;
        Path pipeline = pipeline(dir, records, "size_ms: 1000", "worker: python, worker_recovery: failover");
        TestPipelines.killPythonWorkerThenRestoreAt(parallelism, pipeline, dir.resolve("checkpoints"), records);

        assertWindowTotals(dir.resolve("out"), records, 1_000, 1_000);
    }

    /** Generated events keyed by their key, through a {@code window} count, to an exactly-once file sink. */
    private static Path pipeline(Path dir, int records, String window, String bridge) {
        return pipeline(dir, records, "window", window, bridge);
    }

    /** The same, through a step of {@code type} counting per key ({@code window} or {@code count}). */
    private static Path pipeline(Path dir, int records, String type, String window, String bridge) {
        return TestPipelines.write(dir, "windows", """
                name: windows
                sources: {events: {type: generator, count: %d, rate: %d, keys: 30, seed: 9}}
                steps: [{step_name: per_second, type: %s, config: {key_json_field: key, %s}}]
                sinks: {files: {type: file, path: %s}}
                bridge: {parallelism: 2, key: {json_field: key}, checkpoint_interval_ms: 300, %s}
                """.formatted(records, records / 8, type, window, dir.resolve("out"), bridge));
    }

    /**
     * Each key's window once; the windows' counts over all keys add up to what each holds of the events at
     * {@code 0 .. records - 1} ms past a whole second ({@code size} for a full one).
     */
    private static void assertWindowTotals(Path out, int records, long size, long slide) throws IOException {
        TreeMap<Long, Long> totals = new TreeMap<>();
        Set<String> seen = new HashSet<>();
        long first = Long.MAX_VALUE;
        for (String line : TestPipelines.committedLines(out)) {
            JsonNode window = JSON.readTree(line);
            long start = window.get("window_start").asLong();
            assertEquals(size, window.get("window_end").asLong() - start, line);
            assertTrue(seen.add(window.get("key").asText() + "@" + start), "a window twice: " + line);
            totals.merge(start, window.get("count").asLong(), Long::sum);
            first = Math.min(first, start);
        }
        long epoch = first + size - slide;
        TreeMap<Long, Long> expected = new TreeMap<>();
        for (long start = epoch - size + slide; start < epoch + records; start += slide) {
            long from = Math.max(start, epoch);
            long to = Math.min(start + size, epoch + records);
            expected.put(start, to - from);
        }
        assertEquals(expected, totals, "each window's records over all keys");
    }
}
