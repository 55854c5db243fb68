package org.flinkbridge.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The real thing: `./flink-bridge cluster start` runs a JobManager and a TaskManager from the Maven Central
 * jars, the job jar goes in through Flink's own CLI (`./flink-bridge flink run`), the TaskManager spawns the
 * worker, the REST API reports the job FINISHED, and `cluster stop` leaves no process behind.
 */
class StandaloneClusterTest {

    private static final Path HOME = Path.of(System.getProperty("user.dir"));
    private static final String CLUSTER_MARKER = "-Dflink-bridge.cluster=";
    private static final ObjectMapper JSON = new ObjectMapper();

    @BeforeAll
    static void startCluster() throws Exception {
        Result start = launcher("cluster", "start");
        assertEquals(0, start.exitCode, start.output);
        assertTrue(start.output.contains("Web UI: http://127.0.0.1:8081"), start.output);
    }

    @AfterAll
    static void stopCluster() throws Exception {
        Result stop = launcher("cluster", "stop");
        assertEquals(0, stop.exitCode, stop.output);
        assertEquals(List.of(), clusterProcesses(), "cluster processes left after stop");
        assertEquals(List.of(), ProcessHandle.allProcesses()
                .filter(p -> p.info().commandLine().orElse("").contains("worker-0.1.0-SNAPSHOT.jar"))
                .map(ProcessHandle::pid).toList(), "worker processes left after stop");
    }

    @ParameterizedTest
    @ValueSource(strings = {"grpc", "shm"})
    void jobSubmittedThroughFlinksCliRunsToCompletion(String transport, @TempDir Path dir) throws Exception {
        Path pipeline = dir.resolve("pipeline.yaml");
        Files.writeString(pipeline, """
                name: on-the-cluster-%s
                sources:
                  events: {type: generator, count: 30000, keys: 20}
                steps:
                  - {step_name: add_processed, type: append_field}
                  - {step_name: batch, type: batch, config: {max_count: 100, max_wait_ms: 600000}}
                sinks:
                  files: {type: file, path: unused}
                bridge: {parallelism: 2, key: {json_field: key}}
                """.formatted(transport));
        Path out = dir.resolve("out");

        Result run = launcher("flink", "run", HOME.resolve("bridge-job/target/bridge-job-0.1.0-SNAPSHOT.jar").toString(),
                "--pipeline", pipeline.toString(), "--transport=" + transport, "--output", out.toString());

        assertEquals(0, run.exitCode, run.output);
        JsonNode job = onlyJobNamed("on-the-cluster-" + transport);
        assertEquals("FINISHED", job.get("state").asText(), job.toString());
        long events = 0;
        for (String line : outputLines(out)) {
            JsonNode batch = JSON.readTree(line);
            for (JsonNode event : batch) {
                assertTrue(event.get("processed").asBoolean(), event.toString());
                events++;
            }
        }
        assertEquals(30_000, events);
    }

    private static JsonNode onlyJobNamed(String name) throws Exception {
        HttpResponse<String> response = HttpClient.newHttpClient().send(
                HttpRequest.newBuilder(URI.create("http://127.0.0.1:8081/jobs/overview"))
                        .timeout(Duration.ofSeconds(10)).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(200, response.statusCode(), response.body());
        List<JsonNode> jobs = new ArrayList<>();
        JSON.readTree(response.body()).get("jobs").forEach(job -> {
            if (job.get("name").asText().equals(name)) {
                jobs.add(job);
            }
        });
        assertEquals(1, jobs.size(), response.body());
        return jobs.getFirst();
    }

    private static List<String> outputLines(Path dir) throws IOException {
        List<String> lines = new ArrayList<>();
        try (Stream<Path> files = Files.list(dir)) {
            for (Path file : files.sorted().toList()) {
                assertTrue(file.getFileName().toString().startsWith("part-"), "unfinished output " + file);
                lines.addAll(Files.readAllLines(file, StandardCharsets.UTF_8));
            }
        }
        return lines;
    }

    private static List<Long> clusterProcesses() {
        return ProcessHandle.allProcesses()
                .filter(p -> p.info().commandLine().orElse("").contains(CLUSTER_MARKER + HOME))
                .map(ProcessHandle::pid)
                .toList();
    }

    private record Result(int exitCode, String output) {}

    private static Result launcher(String... args) throws Exception {
        List<String> command = new ArrayList<>();
        command.add(HOME.resolve("flink-bridge").toString());
        command.addAll(List.of(args));
        Process process = new ProcessBuilder(command).directory(HOME.toFile()).redirectErrorStream(true).start();
        String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!process.waitFor(5, TimeUnit.MINUTES)) {
            process.destroyForcibly();
            throw new AssertionError("./flink-bridge " + String.join(" ", args) + " did not end:\n" + output);
        }
        return new Result(process.exitValue(), output);
    }
}
