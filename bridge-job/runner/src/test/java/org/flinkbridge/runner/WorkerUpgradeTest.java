package org.flinkbridge.runner;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.flinkbridge.bridge.JobCounters;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A planned upgrade without a job restart: a worker asked to stop (SIGTERM) mid-run answers the inputs it has
 * read and ends its sessions as stopped; the bridge moves them to a new worker process, of the build installed by
 * then, gives it the last barrier's state and replays the inputs since, dropping (unchecked: a new build may answer
 * differently) the outputs already emitted. Every key's counts come out 1..n once each, and no record is sent
 * twice from the source.
 */
class WorkerUpgradeTest {

    private static final int EVENTS = 30_000;
    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * A Python segment replaced by a new version while the job runs: from then on its outputs are the new build's.
     * In the Python worker, and hosted by the Rust worker (whose session processes stop as asked with it).
     */
    @ParameterizedTest
    @CsvSource({"shm, python", "grpc, python", "shm, rust", "grpc, rust"})
    void aPythonSegmentUpgradedMidRunTakesOverWithoutAJobRestart(String transport, String worker, @TempDir Path dir)
            throws Exception {
        Path segment = dir.resolve("versioned_count.py");
        Files.writeString(segment, countingSegment("v1"));
        Path pipeline = TestPipelines.perKey(dir, "{step_name: count, type: versioned_count.Count}", EVENTS, 6000,
                "worker: " + worker, "transport: " + transport);
        Path out = dir.resolve("out");
        RunningJob run = TestPipelines.runInBackground(pipeline.toString(), "--output", out.toString());
        // The worker (the Python supervisor, or the Rust worker, the oldest): its command line names the pipeline's
        // folder (its segments' path).
        ProcessHandle spawned = TestPeers.awaitSpawned(dir.toString(), EVENTS / 3, run);

        install(segment, countingSegment("v2") + "# the second build\n");
        TestPeers.signal(spawned, "TERM");
        run.get(3, TimeUnit.MINUTES);

        assertEveryCountOnceWithoutARestart(out, run);
        Map<String, TreeMap<Long, String>> builds = new TreeMap<>();
        for (String line : TestPipelines.committedLines(out)) {
            JsonNode count = JSON.readTree(line);
            builds.computeIfAbsent(count.get("key").asText(), key -> new TreeMap<>())
                    .put(count.get("count").asLong(), count.get("build").asText());
        }
        builds.forEach((key, byCount) -> {
            List<String> order = new ArrayList<>(byCount.values());
            int switched = order.indexOf("v2");
            assertTrue(switched > 0, key + ": the output did not switch from v1 to v2: " + order);
            assertTrue(order.subList(0, switched).stream().allMatch("v1"::equals)
                    && order.subList(switched, order.size()).stream().allMatch("v2"::equals),
                    key + ": builds by count are not v1 then v2: " + order);
        });
    }

    /**
     * The same build asked to stop: its sessions move to a new process, not to the standby started before. (Over
     * shm the conformance kit's stop point and the standalone cluster's upgrade test stop the Java worker.)
     */
    @ParameterizedTest
    @CsvSource({"grpc"})
    void aJavaWorkerAskedToStopHandsItsSessionsOnWithoutAJobRestart(String transport, @TempDir Path dir)
            throws Exception {
        Path pipeline = TestPipelines.perKeyCounts(dir, EVENTS, 6000, "transport: " + transport);
        Path out = dir.resolve("out");
        RunningJob run = TestPipelines.runInBackground(pipeline.toString(), "--output", out.toString());
        ProcessHandle worker = TestPeers.awaitSpawnedWorker(EVENTS / 3, run);

        TestPeers.signal(worker, "TERM");
        run.get(3, TimeUnit.MINUTES);

        assertEveryCountOnceWithoutARestart(out, run);
        assertTrue(worker.onExit().get(10, TimeUnit.SECONDS) != null && !worker.isAlive());
    }

    /** Every key's counts 1..n once each, no record sent twice, and sessions moved after a stop as asked. */
    private static void assertEveryCountOnceWithoutARestart(Path out, RunningJob run) throws Exception {
        Map<String, List<Long>> counts = TestPipelines.runningCountsOnceEach(out);
        assertEquals(EVENTS, counts.values().stream().mapToLong(List::size).sum(), "records in the output");
        run.assertSentOnceWithoutRestart(EVENTS);
        assertTrue(run.count(JobCounters.Count.WORKER_UPGRADES) >= 1, "no session moved to a new worker"
                + " after a stop as asked (recoveries from a loss: " + run.count(JobCounters.Count.WORKER_RECOVERIES)
                + ")");
    }

    /** docs/examples/upgrade/versioned_count.py as build {@code build}: a per-key count whose outputs name the build. */
    static String countingSegment(String build) throws Exception {
        Path example = Path.of(System.getProperty("flink-bridge.home"), "docs", "examples", "upgrade", "versioned_count.py");
        return Files.readString(example).replace("BUILD = \"v1\"", "BUILD = \"" + build + "\"");
    }

    /** Puts a new version in place at once, as a deployment would: no reader sees it half written. */
    private static void install(Path target, String content) throws Exception {
        Path next = target.resolveSibling(target.getFileName() + ".next");
        Files.writeString(next, content);
        Files.move(next, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }
}
