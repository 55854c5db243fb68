package org.flinkbridge.runner;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.flinkbridge.bridge.function.DeadLetters;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A record a step with {@code on_error: dead_letter} fails on goes to the pipeline's dead letters, naming the
 * step and the error, and the job goes on: every worker language, over both transports, through a real job.
 */
class DeadLettersTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int RECORDS = 300;

    @ParameterizedTest
    @CsvSource({"java, shm", "java, grpc", "python, shm", "python, grpc", "rust, shm", "rust, grpc"})
    void recordsThatAreNotJsonGoToTheDeadLettersAndTheOthersToTheOutput(String worker, String transport,
            @TempDir Path dir) throws Exception {
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < RECORDS; i++) {
            lines.add(i % 10 == 3 ? "not json " + i : "{\"id\":" + i + "}");
        }
        Path input = Files.write(dir.resolve("input.jsonl"), lines);
        Path deadLetters = dir.resolve("dead-letters");
        Path pipeline = TestPipelines.write(dir, "dead-letters", """
                name: poison
                sources: {lines: {type: file, path: %s}}
                steps:
                  - {step_name: add_processed, type: append_field, on_error: dead_letter}
                sinks: {files: {type: file, path: unused}}
                dead_letters: {type: file, path: %s}
                bridge: {parallelism: 2, checkpoint_interval_ms: 500}
                """.formatted(input, deadLetters));
        Path out = dir.resolve("out");

        String summary = LocalRunner.run(new String[] {pipeline.toString(), "--output", out.toString(),
                "--worker=" + worker, "--transport=" + transport});

        assertTrue(summary.contains("dead_letters=" + RECORDS / 10) && summary.contains("every input accounted for"),
                summary);
        TreeSet<Integer> written = new TreeSet<>();
        for (String line : TestPipelines.outputLines(out)) {
            JsonNode record = JSON.readTree(line);
            assertTrue(record.get("processed").asBoolean(), line);
            written.add(record.get("id").asInt());
        }
        assertEquals(RECORDS - RECORDS / 10, written.size(), "every good record once");
        TreeSet<String> failed = new TreeSet<>();
        for (String line : TestPipelines.outputLines(deadLetters)) {
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
        assertEquals(RECORDS / 10, failed.size(), "every bad record once: " + failed);
        assertTrue(failed.stream().allMatch(payload -> payload.startsWith("not json ")), failed.toString());
    }
}
