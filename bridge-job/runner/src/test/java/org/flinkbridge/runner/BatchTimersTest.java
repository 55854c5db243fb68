package org.flinkbridge.runner;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Processing-time timers through real jobs and real workers (docs/protocol.md, "Timers"): {@code batch} in a keyed
 * session closes each key's batch on a processing-time timer {@code max_wait_ms} after it opened, which the bridge
 * fires from the task's processing time service. The records come slower than a batch fills, so batches close by
 * time while the job runs (only the last of each key by the end of input), and every record is in one batch once.
 */
class BatchTimersTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int KEYS = 10;

    @ParameterizedTest
    @CsvSource({"java, shm", "python, grpc"})
    void batchesCloseByTimeWithEveryRecordOnce(String worker, String transport, @TempDir Path dir) throws Exception {
        batchesCloseByTime(worker, transport, dir);
    }

    /** The other workers and transports, in the long run (./flink-bridge test long). */
    @Tag("long")
    @ParameterizedTest
    @CsvSource({"java, grpc", "python, shm", "rust, shm", "rust, grpc"})
    void batchesCloseByTimeWithEveryRecordOnceOnEveryWorker(String worker, String transport, @TempDir Path dir)
            throws Exception {
        batchesCloseByTime(worker, transport, dir);
    }

    private static void batchesCloseByTime(String worker, String transport, Path dir) throws Exception {
        int records = 3_000;
        Path pipeline = TestPipelines.write(dir, "batches", """
                name: batches
                sources: {events: {type: generator, count: %d, rate: 1000, keys: %d, seed: 4}}
                steps: [{step_name: batched, type: batch, config: {max_count: 100000, max_wait_ms: 200}}]
                sinks: {files: {type: file, path: %s}}
                bridge: {parallelism: 2, key: {json_field: key}, checkpoint_interval_ms: 300, worker: %s}
                """.formatted(records, KEYS, dir.resolve("out"), worker));

        LocalRunner.run(new String[] {pipeline.toString(), "--transport=" + transport});

        Set<Long> ids = new HashSet<>();
        List<String> batches = TestPipelines.committedLines(dir.resolve("out"));
        for (String line : batches) {
            for (JsonNode record : JSON.readTree(line)) {
                assertTrue(ids.add(record.get("id").asLong()), "a record in two batches: " + record);
            }
        }
        assertEquals(records, ids.size(), "records in the batches");
        // By the end of input alone there would be one batch per key: any more closed by time (3 s of input make
        // about 15 per key on an idle machine, fewer when the timers' callbacks wait behind a busy task thread).
        assertTrue(batches.size() > 2 * KEYS, batches.size() + " batches: they did not close by time");
    }
}
