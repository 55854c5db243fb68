package org.flinkbridge.runner;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.flinkbridge.bridge.function.DeadLetters;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A record a step with {@code on_error: dead_letter} fails on goes to the pipeline's dead letters, naming the
 * step and the error, and the job goes on: every worker language, over both transports, through a real job; and
 * once each across a worker killed mid-run and recovered in place.
 */
class DeadLettersTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int RECORDS = 300;

    @ParameterizedTest
    @CsvSource({"java, shm", "java, grpc", "python, shm", "python, grpc", "rust, shm", "rust, grpc"})
    void recordsThatAreNotJsonGoToTheDeadLettersAndTheOthersToTheOutput(String worker, String transport,
            @TempDir Path dir) throws Exception {
        Path pipeline = poisonedPipeline(dir, RECORDS);

        String summary = LocalRunner.run(new String[] {pipeline.toString(), "--output", dir.resolve("out").toString(),
                "--worker=" + worker, "--transport=" + transport});

        assertTrue(summary.contains("dead_letters=" + RECORDS / 10) && summary.contains("every input accounted for"),
                summary);
        assertEachOnce(RECORDS, TestPipelines.outputLines(dir.resolve("out")),
                TestPipelines.outputLines(dir.resolve("dead-letters")));
    }

    /**
     * A worker killed mid-run is recovered in place: the inputs since the last barrier are replayed, the failed
     * ones fail again and are checked and dropped, and every record and dead letter is committed once.
     */
    @Test
    void aWorkerKilledMidRunIsRecoveredInPlaceAndEachDeadLetterIsWrittenOnce(@TempDir Path dir) throws Exception {
        int records = 400_000;
        Path pipeline = poisonedPipeline(dir, records);
        RunningJob run = TestPipelines.runInBackground(pipeline.toString(), "--output",
                dir.resolve("out").toString());

        TestPeers.signal(TestPeers.awaitSpawnedWorker(records / 4, run), "KILL");
        String summary = run.get(180, TimeUnit.SECONDS);

        assertTrue(summary.contains("worker_recoveries=") && summary.contains("dead_letters=" + records / 10),
                summary);
        run.assertSentOnceWithoutRestart(records);
        assertEachOnce(records, TestPipelines.committedLines(dir.resolve("out")),
                TestPipelines.committedLines(dir.resolve("dead-letters")));
    }

    /** Lines 0 to {@code records} - 1, one in ten not JSON, through append_field with dead letters to a file. */
    private static Path poisonedPipeline(Path dir, int records) throws IOException {
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < records; i++) {
            lines.add(i % 10 == 3 ? "not json " + i : "{\"id\":" + i + "}");
        }
        Path input = Files.write(dir.resolve("input.jsonl"), lines);
        return TestPipelines.write(dir, "dead-letters", """
                name: poison
                sources: {lines: {type: file, path: %s}}
                steps:
                  - {step_name: add_processed, type: append_field, on_error: dead_letter}
                sinks: {files: {type: file, path: unused}}
                dead_letters: {type: file, path: %s}
                bridge: {parallelism: 2, checkpoint_interval_ms: 500}
                """.formatted(input, dir.resolve("dead-letters")));
    }

    /** Every good line once in {@code outputs}, every bad one once in {@code deadLetters}, named as it failed. */
    private static void assertEachOnce(int records, List<String> outputs, List<String> deadLetters)
            throws IOException {
        TreeSet<Integer> written = new TreeSet<>();
        for (String line : outputs) {
            JsonNode record = JSON.readTree(line);
            assertTrue(record.get("processed").asBoolean(), line);
            written.add(record.get("id").asInt());
        }
        assertEquals(records - records / 10, outputs.size(), "outputs");
        assertEquals(records - records / 10, written.size(), "every good record once");
        TreeSet<String> failed = new TreeSet<>();
        for (String line : deadLetters) {
            JsonNode letter = JSON.readTree(line);
            JsonNode headers = letter.get("headers");
            assertEquals("poison", headers.get(DeadLetters.PIPELINE).asText(), line);
            assertEquals("add_processed", headers.get(DeadLetters.STEP).asText(), line);
            assertTrue(headers.get(DeadLetters.SEGMENT).asText().endsWith("main"), line);
            assertTrue(!headers.get(DeadLetters.ERROR_CLASS).asText().isEmpty()
                    && !headers.get(DeadLetters.ERROR_MESSAGE).asText().isEmpty(), line);
            assertTrue(headers.get(DeadLetters.TIME).asLong() > 0, line);
            failed.add(letter.get("payload").asText());
        }
        assertEquals(records / 10, deadLetters.size(), "dead letters");
        assertEquals(records / 10, failed.size(), "every bad record once");
        assertTrue(failed.stream().allMatch(payload -> payload.startsWith("not json ")), failed.toString());
    }
}
