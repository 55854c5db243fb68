package org.flinkbridge.runner;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
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

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A pipeline as a graph, through a real job: a route by a JSON field, a branch that broadcasts, a branch with
 * steps of its own joined with another, and a sink per branch; each record reaches exactly the sinks its path
 * leads to, once.
 */
class PipelineGraphTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int RECORDS = 2_000;
    private static final String[] KINDS = {"click", "view", "tap", "scroll", null};

    @ParameterizedTest
    @CsvSource({"java, shm", "java, grpc", "python, shm", "python, grpc", "rust, shm", "rust, grpc"})
    void eachRecordReachesTheSinksOfItsPathOnce(String worker, String transport, @TempDir Path dir) throws Exception {
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < RECORDS; i++) {
            String kind = KINDS[i % KINDS.length];
            lines.add(kind == null ? "{\"id\":" + i + "}" : "{\"id\":" + i + ",\"kind\":\"" + kind + "\"}");
        }
        Path input = Files.write(dir.resolve("input.jsonl"), lines);
        Path pipeline = TestPipelines.write(dir, "graph", """
                name: graph
                sources: {lines: {type: file, path: %1$s}}
                steps:
                  - {step_name: mark, type: append_field, config: {field: seen, value: true}}
                  - step_name: by_kind
                    route:
                      by: {json_field: kind}
                      branches: {click: clicks, tap: clicks, view: views}
                      default: other
                branches:
                  clicks:
                    steps: [{step_name: tag_click, type: append_field, config: {field: branch, value: clicks}}]
                    to: all
                  views:
                    steps: [{step_name: fan, broadcast: [audit, all]}]
                  audit:
                    sinks: {audit: {type: file, path: %2$s/audit}}
                  other:
                    sinks: {other: {type: file, path: %2$s/other}}
                  all:
                    steps: [{step_name: tag_all, type: append_field, config: {field: joined, value: true}}]
                    sinks: {all: {type: file, path: %2$s/all}}
                bridge: {parallelism: 2, checkpoint_interval_ms: 500}
                """.formatted(input, dir));

        String summary = LocalRunner.run(new String[] {pipeline.toString(), "--worker=" + worker,
                "--transport=" + transport});

        int per = RECORDS / KINDS.length;
        assertTrue(summary.contains("read=" + RECORDS) && summary.contains("broadcasts write an input once per branch")
                && summary.contains(dir.resolve("audit").toString()), summary);
        List<JsonNode> all = records(dir.resolve("all"));
        assertEquals(ids(i -> i % 5 <= 2), idsOnce(all), "all: clicks, taps and views once each");
        for (JsonNode record : all) {
            assertTrue(record.get("seen").asBoolean() && record.get("joined").asBoolean(), record.toString());
            boolean click = !record.get("kind").asText().equals("view");
            assertEquals(click, record.has("branch"), "only clicks and taps pass tag_click: " + record);
        }
        List<JsonNode> audit = records(dir.resolve("audit"));
        assertEquals(ids(i -> i % 5 == 1), idsOnce(audit), "audit: the views");
        assertTrue(audit.stream().noneMatch(record -> record.has("joined")), "audit is not after tag_all");
        List<JsonNode> other = records(dir.resolve("other"));
        assertEquals(ids(i -> i % 5 >= 3), idsOnce(other), "other: other kinds and no kind");
        assertEquals(3 * per, all.size());
        assertEquals(per, audit.size());
        assertEquals(2 * per, other.size());
    }

    /**
     * docs/examples/sentry, as written: a sentry_streams application's shapes (a router fed by a routing function,
     * a broadcast, a sink per branch) with its steps in Python.
     */
    @Test
    void theSentryStreamsShapesExampleRuns(@TempDir Path dir) throws Exception {
        Path example = Path.of(System.getProperty("flink-bridge.home"), "docs", "examples", "sentry", "pipeline.yaml");

        String summary = LocalRunner.run(new String[] {example.toString(), "--output", dir.toString()});

        assertTrue(summary.contains("read=10000"), summary);
        List<JsonNode> hello = records(dir.resolve("hello_sink"));
        List<JsonNode> audit = records(dir.resolve("audit_sink"));
        List<JsonNode> goodbye = records(dir.resolve("goodbye_sink"));
        assertEquals(idsOnce(hello), idsOnce(audit), "the broadcast gives both sinks the same records");
        TreeSet<Integer> every = new TreeSet<>(idsOnce(hello));
        for (int id : idsOnce(goodbye)) {
            assertTrue(every.add(id), "in both branches: " + id);
        }
        assertEquals(10_000, every.size(), "every event in one branch");
        for (JsonNode record : hello) {
            assertEquals("hello", record.get("greeting").asText(), record.toString());
            assertEquals(0, Integer.parseInt(record.get("key").asText().substring(4)) % 2, record.toString());
        }
        for (JsonNode record : goodbye) {
            assertEquals("goodbye", record.get("greeting").asText(), record.toString());
            assertEquals(1, Integer.parseInt(record.get("key").asText().substring(4)) % 2, record.toString());
        }
    }

    private static List<JsonNode> records(Path sink) throws IOException {
        List<JsonNode> records = new ArrayList<>();
        for (String line : TestPipelines.outputLines(sink)) {
            records.add(JSON.readTree(line));
        }
        return records;
    }

    private static TreeSet<Integer> idsOnce(List<JsonNode> records) {
        TreeSet<Integer> ids = new TreeSet<>();
        records.forEach(record -> assertTrue(ids.add(record.get("id").asInt()), "twice: " + record));
        return ids;
    }

    private static TreeSet<Integer> ids(java.util.function.IntPredicate wanted) {
        TreeSet<Integer> ids = new TreeSet<>();
        for (int i = 0; i < RECORDS; i++) {
            if (wanted.test(i)) {
                ids.add(i);
            }
        }
        return ids;
    }
}
