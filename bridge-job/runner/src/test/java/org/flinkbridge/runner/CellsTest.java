package org.flinkbridge.runner;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Cells through real jobs and real workers (docs/protocol.md, "Cells"): a step counting per key in a value cell and
 * keeping the ids it saw in a map cell, every worker language over both transports; then the cells surviving a
 * worker killed mid-run, restored from Flink's keyed state by a failover and reloaded by a recovery in place, with
 * every count written exactly once.
 */
class CellsTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    /** The step in Python, for the Python worker and the Rust worker that hosts Python steps. */
    private static final String PYTHON_STEP = """
            import json

            from flink_bridge.sdk import Message, map_cell, value_cell


            class CellCount:
                def __init__(self):
                    self.count = value_cell("count")
                    self.ids = map_cell("ids")

                def process(self, message):
                    event = json.loads(message.payload)
                    count = int(self.count.get() or b"0") + 1
                    self.count.set(str(count).encode())
                    self.ids.put(str(event["id"]).encode(), b"")
                    out = {"key": event["key"], "count": count, "ids": len(list(self.ids.items()))}
                    return [Message(json.dumps(out, separators=(",", ":")).encode(), {}, message.timestamp)]
            """;

    /**
     * A budget of one byte makes every barrier evict each key no record touched since the one before, so keys are
     * loaded again and again, from what the barriers wrote back.
     */
    @ParameterizedTest
    @CsvSource({"java, shm, 128mb", "rust, grpc, 128mb", "python, grpc, 1b"})
    void aStepCountsPerKeyInItsCells(String worker, String transport, String budget, @TempDir Path dir)
            throws Exception {
        countsPerKey(worker, transport, budget, dir);
    }

    /** The other workers, transports and budgets, in the long run (./flink-bridge test long). */
    @Tag("long")
    @ParameterizedTest
    @CsvSource({"java, grpc, 128mb", "python, shm, 128mb", "python, grpc, 128mb", "rust, shm, 128mb", "rust, shm, 1b",
            "java, shm, 1b"})
    void aStepCountsPerKeyInItsCellsOnEveryWorker(String worker, String transport, String budget, @TempDir Path dir)
            throws Exception {
        countsPerKey(worker, transport, budget, dir);
    }

    private static void countsPerKey(String worker, String transport, String budget, Path dir) throws Exception {
        int records = 3_000;
        Path pipeline = pipeline(dir, records, worker.equals("java") ? CellCountStep.class.getName()
                : "cells_count.CellCount", "");
        Path segments = Files.createDirectories(dir.resolve("segments"));
        Files.writeString(segments.resolve("cells_count.py"), PYTHON_STEP);
        ProcessBuilder.Redirect log = ProcessBuilder.Redirect.INHERIT;
        Process sidecar = switch (worker) {
            case "rust" -> TestPeers.startRustWorker(segments, log);
            case "python" -> TestPeers.startPythonWorker(segments, log);
            default -> TestPeers.startWorker(CellCountStep.class, log);
        };
        try {
            String summary = TestPipelines.runInBackground(pipeline.toString(), "--worker-address",
                    TestPeers.workerAddress(sidecar), "--transport=" + transport,
                    "-Dflink-bridge.worker.cells-budget=" + budget).get(3, TimeUnit.MINUTES);
            assertTrue(summary.contains("written=" + records), summary);
        } finally {
            sidecar.descendants().forEach(ProcessHandle::destroyForcibly);
            sidecar.destroyForcibly().waitFor();
        }
        assertCountsOnce(dir.resolve("out"), records);
    }

    /**
     * A spawned Python worker killed mid-run: with failover the job restores from its checkpoint, the cells from
     * Flink's keyed state; in place, the replacement loads them again for the replayed records.
     */
    @ParameterizedTest
    @CsvSource({"failover", "in_place"})
    void cellsSurviveAWorkerKilledMidRun(String recovery, @TempDir Path dir) throws Exception {
        int records = 60_000;
        Files.writeString(dir.resolve("cells_count.py"), PYTHON_STEP);
        Path pipeline = pipeline(dir, records, "cells_count.CellCount", ", worker: python, worker_recovery: "
                + recovery);
        RunningJob run = TestPipelines.runInBackground(pipeline.toString());

        TestPeers.signal(TestPeers.awaitSpawned(TestPeers.faultTarget("python"), records / 3, run), "KILL");
        String summary = run.get(4, TimeUnit.MINUTES);

        // A failover restarts the job (its counts are those since); a recovery in place keeps it running.
        assertTrue(recovery.equals("failover") ? summary.contains(" restarts=")
                : summary.contains("read=" + records) && summary.contains("worker_recoveries="), summary);
        assertCountsOnce(dir.resolve("out"), records);
    }

    @Test
    void aStepWithCellsOnAStreamThatIsNotKeyedIsRefusedNamingTheCell(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("cells_count.py"), PYTHON_STEP);
        Path pipeline = TestPipelines.write(dir, "unkeyed", """
                name: unkeyed
                sources: {events: {type: generator, count: 10, keys: 2, seed: 1}}
                steps: [{step_name: count, type: cells_count.CellCount}]
                sinks: {files: {type: file, path: %s}}
                bridge: {worker: python, checkpoint_interval_ms: 0}
                """.formatted(dir.resolve("out")));

        Exception failure = assertThrows(Exception.class, () -> LocalRunner.run(new String[] {pipeline.toString()}));

        assertTrue(TestPipelines.stackTrace(failure).contains("cells live under the record's key"),
                TestPipelines.stackTrace(failure));
    }

    /** Two stages, each keyed by its own key: a count per user, then, of what that gives, a count per project. */
    private static final String TWO_STAGES = """
            import json

            from flink_bridge.sdk import Message, value_cell


            def _counted(cell):
                count = int(cell.get() or b"0") + 1
                cell.set(str(count).encode())
                return count


            def _out(fields, message):
                return [Message(json.dumps(fields, separators=(",", ":")).encode(), {}, message.timestamp)]


            class PerUser:
                def __init__(self):
                    self.count = value_cell("count")

                def process(self, message):
                    user = json.loads(message.payload)["key"]
                    project = "project-%d" % (int(user.split("-")[1]) % 3)
                    return _out({"user": user, "project": project, "user_count": _counted(self.count)}, message)


            class PerProject:
                def __init__(self):
                    self.count = value_cell("count")

                def process(self, message):
                    project = json.loads(message.payload)["project"]
                    return _out({"key": project, "count": _counted(self.count)}, message)
            """;

    /** A segment keyed by its own key after another: every project's count once. */
    @Test
    void aSegmentKeyedByItsOwnKeyCountsWhatTheFirstGives(@TempDir Path dir) throws Exception {
        keyedByItsOwnKey("shm", dir);
    }

    /** The same over gRPC, in the long run (./flink-bridge test long). */
    @Tag("long")
    @Test
    void aSegmentKeyedByItsOwnKeyCountsWhatTheFirstGivesOverGrpc(@TempDir Path dir) throws Exception {
        keyedByItsOwnKey("grpc", dir);
    }

    private static void keyedByItsOwnKey(String transport, Path dir) throws Exception {
        int records = 4_000;
        Path pipeline = twoStages(dir, records, transport);

        String summary = LocalRunner.run(new String[] {pipeline.toString()});

        assertTrue(summary.contains("written=" + records), summary);
        assertProjectsCountedOnce(dir.resolve("out"), records);
    }

    /**
     * The two stages' cells restored at another parallelism: a run at parallelism 2 fails when its worker is killed,
     * and its last checkpoint restored at parallelism 1 (or 3) finishes every count exactly once; over shm, and over
     * gRPC.
     */
    @ParameterizedTest
    @CsvSource({"1, shm", "3, grpc"})
    void twoKeyedStagesRestoredAtAnotherParallelismCountEachRecordOnce(String parallelism, String transport,
                                                                       @TempDir Path dir) throws Exception {
        int records = 30_000;
        Path pipeline = twoStages(dir, records, transport);
        TestPipelines.killPythonWorkerThenRestoreAt(parallelism, pipeline, dir.resolve("checkpoints"), records);

        assertProjectsCountedOnce(dir.resolve("out"), records);
    }

    private static Path twoStages(Path dir, int records, String transport) throws IOException {
        Files.writeString(dir.resolve("two_stages.py"), TWO_STAGES);
        return TestPipelines.write(dir, "stages", """
                name: stages
                sources: {events: {type: generator, count: %d, rate: %d, keys: 40, seed: 5}}
                steps:
                  - {step_name: per_user, type: two_stages.PerUser, segment: users}
                  - {step_name: per_project, type: two_stages.PerProject, segment: projects}
                sinks: {files: {type: file, path: %s}}
                segments:
                  users: {key: {json_field: key}}
                  projects: {key: {json_field: project}}
                bridge: {parallelism: 2, checkpoint_interval_ms: 300, worker: python, worker_recovery: failover,
                         transport: %s}
                """.formatted(records, records / 10, dir.resolve("out"), transport));
    }

    private static void assertProjectsCountedOnce(Path out, int records) throws IOException {
        Map<String, List<Long>> counts = TestPipelines.runningCountsOnceEach(out);
        assertEquals(List.of("project-0", "project-1", "project-2"), List.copyOf(counts.keySet()));
        assertEquals(records, counts.values().stream().mapToInt(List::size).sum(), "every record counted once");
    }

    /** Generated events keyed by their key, through {@code step}, to an exactly-once file sink. */
    private static Path pipeline(Path dir, int records, String step, String bridge) {
        return TestPipelines.write(dir, "cells", """
                name: cells
                sources: {events: {type: generator, count: %d, rate: %d, keys: 40, seed: 5}}
                steps: [{step_name: count, type: %s}]
                sinks: {files: {type: file, path: %s}}
                bridge: {parallelism: 2, key: {json_field: key}, checkpoint_interval_ms: 300%s}
                """.formatted(records, records / 10, step, dir.resolve("out"), bridge));
    }

    /** Per key the counts 1..n, each once, and each record's count equal to the ids its key's map cell holds. */
    private static void assertCountsOnce(Path out, int records) throws IOException {
        Map<String, List<Long>> counts = TestPipelines.runningCountsOnceEach(out);
        assertEquals(records, counts.values().stream().mapToInt(List::size).sum(), "every record counted once");
        for (String line : TestPipelines.committedLines(out)) {
            JsonNode count = JSON.readTree(line);
            assertEquals(count.get("count").asLong(), count.get("ids").asLong(), line);
        }
    }
}
