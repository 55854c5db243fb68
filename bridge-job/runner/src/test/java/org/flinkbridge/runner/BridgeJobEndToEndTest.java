package org.flinkbridge.runner;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The whole path on an embedded MiniCluster: generated JSON events through a real worker process (spawned
 * by the job) over real gRPC, append-field then batching, into files, in both gRPC modes.
 */
class BridgeJobEndToEndTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int EVENTS = 20_000;

    static String examplePipeline(int events) {
        return """
                name: e2e
                sources:
                  events:
                    type: generator
                    count: %d
                    keys: 50
                steps:
                  - step_name: add_processed
                    type: append_field
                    config: {field: processed, value: true}
                  - step_name: batch
                    type: batch
                    config: {max_count: 100, max_wait_ms: 60000}
                sinks:
                  files:
                    type: file
                    path: unused
                bridge:
                  transport: grpc
                  parallelism: 2
                  key: {json_field: key}
                """.formatted(events);
    }

    @Test
    void streamedGrpcDeliversEveryEventOnceInBatches(@TempDir Path dir) throws Exception {
        Path pipeline = TestPipelines.write(dir, "e2e", examplePipeline(EVENTS));
        Path out = dir.resolve("out");

        String summary = LocalRunner.run(new String[] {pipeline.toString(), "--output", out.toString()});

        assertEvents(TestPipelines.outputLines(out), EVENTS);
        assertTrue(summary.contains("read=" + EVENTS + " sent=" + EVENTS), summary);
        assertTrue(summary.contains("every input accounted for"), summary);
    }

    @Test
    void compatModeGivesTheSameEvents(@TempDir Path dir) throws Exception {
        Path pipeline = TestPipelines.write(dir, "e2e", examplePipeline(2_000));
        Path out = dir.resolve("out");

        String summary = LocalRunner.run(new String[] {
                pipeline.toString(), "--grpc-mode=compat", "--output", out.toString()});

        assertEvents(TestPipelines.outputLines(out), 2_000);
        assertTrue(summary.contains("over grpc (compat)"), summary);
    }

    @Test
    void sidecarWorkerStartedOnItsOwn(@TempDir Path dir) throws Exception {
        Process worker = TestPeers.startWorker();
        try {
            String address = TestPeers.workerAddress(worker);
            Path pipeline = TestPipelines.write(dir, "e2e", examplePipeline(5_000));
            Path out = dir.resolve("out");

            String summary = LocalRunner.run(new String[] {pipeline.toString(), "--worker-address", address,
                    "--output", out.toString()});

            assertEvents(TestPipelines.outputLines(out), 5_000);
            assertTrue(summary.contains("every input accounted for"), summary);
            assertTrue(worker.isAlive(), "a sidecar worker outlives the job");
        } finally {
            worker.destroyForcibly().waitFor();
        }
    }

    /** Every event 0..n-1 exactly once, marked processed, in batches of at most 100 with a right batch_size. */
    static void assertEvents(List<String> lines, int events) throws Exception {
        Set<Long> ids = new HashSet<>();
        int total = 0;
        for (String line : lines) {
            JsonNode batch = JSON.readTree(line);
            assertTrue(batch.isArray() && batch.size() >= 1 && batch.size() <= 100, line);
            for (JsonNode event : batch) {
                assertTrue(event.get("processed").asBoolean(), event.toString());
                assertTrue(ids.add(event.get("id").asLong()), "duplicate " + event);
                total++;
            }
        }
        assertEquals(events, total);
        assertEquals(events, ids.size());
        assertTrue(ids.stream().allMatch(id -> id >= 0 && id < events));
    }
}
