package org.flinkbridge.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
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
 * worker (Java or Python), the REST API reports the job FINISHED, and `cluster stop` leaves no process behind.
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
        assertTrue(stop.output.contains("no cluster process and no worker it spawned remains"), stop.output);
        assertEquals(List.of(), clusterProcesses(), "cluster processes left after stop");
        assertEquals(List.of(), ProcessHandle.allProcesses()
                // Every spawned worker process, Java or Python, supervisor or session, carries --parent-pid.
                .filter(p -> p.info().commandLine().orElse("").contains("worker-0.1.0-SNAPSHOT.jar")
                        || p.info().commandLine().orElse("").contains("--parent-pid"))
                .map(ProcessHandle::pid).toList(), "worker processes left after stop");
    }

    @ParameterizedTest
    @CsvSource({"grpc, java", "shm, java", "shm, python"})
    void jobSubmittedThroughFlinksCliRunsToCompletion(String transport, String worker, @TempDir Path dir)
            throws Exception {
        Path pipeline = dir.resolve("pipeline.yaml");
        Files.writeString(pipeline, """
                name: on-the-cluster-%s-%s
                sources:
                  events: {type: generator, count: 30000, keys: 20}
                steps:
                  - {step_name: add_processed, type: append_field}
                  - {step_name: batch, type: batch, config: {max_count: 100, max_wait_ms: 600000}}
                sinks:
                  files: {type: file, path: unused}
                bridge: {parallelism: 2, key: {json_field: key}}
                """.formatted(transport, worker));
        Path out = dir.resolve("out");

        Result run = launcher("flink", "run", HOME.resolve("bridge-job/job/target/bridge-job-0.1.0-SNAPSHOT.jar").toString(),
                "--pipeline", pipeline.toString(), "--transport=" + transport, "--worker=" + worker,
                "--output", out.toString());

        assertEquals(0, run.exitCode, run.output);
        JsonNode job = onlyJobNamed("on-the-cluster-" + transport + "-" + worker);
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

    /**
     * The bridge's metrics of each session, while a job runs over shm: records and bytes each way, inputs in
     * flight, each ring's occupancy, the round-trip histogram, the checkpoint drain time and the recoveries, as the
     * TaskManager's Prometheus reporter serves them and as the REST API behind the Web UI lists them.
     */
    @Test
    void theBridgesMetricsAreServedToPrometheusAndTheWebUi(@TempDir Path dir) throws Exception {
        String name = "measured";
        Path pipeline = perKeyPipeline(dir, name, 60_000, 3000, 7, RUNNING_COUNT, "");
        Result submitted = launcher("flink", "run", "-d",
                HOME.resolve("bridge-job/job/target/bridge-job-0.1.0-SNAPSHOT.jar").toString(),
                "--pipeline", pipeline.toString(), "--output", dir.resolve("out").toString());
        assertEquals(0, submitted.exitCode, submitted.output);
        String jobId = onlyJobNamed(name).get("jid").asText();
        try {
            awaitCompletedCheckpoints(jobId, 3);

            String scraped = taskManagerMetrics();
            for (String counter : List.of("bridgeRecordsSent", "bridgeBytesSent", "bridgeRecordsReceived",
                    "bridgeBytesReceived", "bridgeRoundTripMicros_count")) {
                assertTrue(sampleSum(scraped, counter) > 0, counter + " is not above 0 in:\n" + bridgeLines(scraped));
            }
            assertTrue(sampleSum(scraped, "bridgeBytesSent") >= 20 * sampleSum(scraped, "bridgeRecordsSent"),
                    "each generated record is more than 20 bytes:\n" + bridgeLines(scraped));
            for (String gauge : List.of("bridgeInputsInFlight", "bridgeRingToWorkerBytes", "bridgeRingFromWorkerBytes",
                    "bridgeCheckpointDrainMillis", "bridgeWorkerRecoveries", "bridgeRoundTripMicros{")) {
                assertTrue(scraped.contains("_operator_" + gauge), gauge + " is missing:\n" + bridgeLines(scraped));
            }

            // The Web UI's metrics come from the JobManager's fetcher, which asks the TaskManagers every 10 s.
            List<String> listed = new ArrayList<>();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (listed.stream().noneMatch(metric -> metric.contains(".bridge")) && System.nanoTime() < deadline) {
                Thread.sleep(500);
                listed.clear();
                for (JsonNode vertex : restGet("/jobs/" + jobId).path("vertices")) {
                    restGet("/jobs/" + jobId + "/vertices/" + vertex.path("id").asText() + "/metrics")
                            .forEach(metric -> listed.add(metric.path("id").asText()));
                }
            }
            assertTrue(listed.stream().anyMatch(metric -> metric.endsWith(".bridgeRoundTripMicros_p99")), listed.toString());
            assertTrue(listed.stream().anyMatch(metric -> metric.endsWith(".bridgeRingToWorkerBytes")), listed.toString());
        } finally {
            launcher("flink", "cancel", jobId);
            awaitJobState(jobId, "CANCELED");
        }
    }

    /** What the TaskManager's Prometheus reporter serves: the endpoint of the range that has task metrics. */
    private static String taskManagerMetrics() throws Exception {
        for (int port = 9249; port <= 9259; port++) {
            try {
                HttpResponse<String> response = HttpClient.newHttpClient().send(
                        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/metrics"))
                                .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
                if (response.statusCode() == 200 && response.body().contains("flink_taskmanager_")) {
                    return response.body();
                }
            } catch (IOException nothingThere) {
                // the next port of the reporter's range
            }
        }
        throw new AssertionError("no TaskManager metrics on 127.0.0.1:9249-9259");
    }

    /** The sum over the subtasks of the operator metric {@code name}'s samples. */
    private static double sampleSum(String scraped, String name) {
        return scraped.lines().filter(line -> line.startsWith("flink_taskmanager_job_task_operator_" + name + "{"))
                .mapToDouble(line -> Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1))).sum();
    }

    private static String bridgeLines(String scraped) {
        return String.join("\n", scraped.lines().filter(line -> line.contains("_bridge")).toList());
    }

    /**
     * Redeployment: the job stops with a native savepoint (canonical ones fail for DSv2 keyed operators),
     * the worker is replaced (by a different build of the Java worker, or by the Python worker, which reads the
     * Java worker's state of the built-in steps), and the job resumes from the savepoint at parallelism 1
     * instead of 2. The per-key counts continue from the worker state in the savepoint, and across both runs
     * every key's counts appear once each: nothing lost, nothing repeated.
     */
    @Test
    void stopWithSavepointReplaceTheWorkerAndResumeAtAnotherParallelism(@TempDir Path dir) throws Exception {
        stopReplaceAndResume("java", dir);
    }

    /** Resumed on the Python worker, which reads the Java worker's state, in the long run (./flink-bridge test long). */
    @Tag("long")
    @Test
    void stopWithSavepointReplaceTheWorkerByThePythonWorkerAndResumeAtAnotherParallelism(@TempDir Path dir)
            throws Exception {
        stopReplaceAndResume("python", dir);
    }

    private void stopReplaceAndResume(String resumedOn, Path dir) throws Exception {
        int events = 40_000;
        String name = "redeployed-to-" + resumedOn;
        Path pipeline = perKeyPipeline(dir, name, events, 2500, 3, RUNNING_COUNT, "");
        String jobJar = HOME.resolve("bridge-job/job/target/bridge-job-0.1.0-SNAPSHOT.jar").toString();

        Path out = dir.resolve("out");
        Result submitted = launcher("flink", "run", "-d", jobJar, "--pipeline", pipeline.toString(),
                "--output", out.toString());
        assertEquals(0, submitted.exitCode, submitted.output);
        String jobId = onlyJobNamed(name).get("jid").asText();
        assertTrue(submitted.output.contains("Successfully submitted job '" + name + "' (" + jobId + ")"),
                "flink run -d must say which job it submitted: " + submitted.output);
        awaitCompletedCheckpoints(jobId, 2);
        Result stopped = launcher("flink", "stop", "--type", "native", "--savepointPath",
                dir.resolve("savepoints").toUri().toString(), jobId);
        assertEquals(0, stopped.exitCode, stopped.output);
        String savepoint = stopped.output.lines().filter(line -> line.startsWith("Savepoint completed. Path: "))
                .map(line -> line.substring("Savepoint completed. Path: ".length()).trim()).findFirst()
                .orElseThrow(() -> new AssertionError("no savepoint path in: " + stopped.output));
        int committedAtStop = committedLines(out).size();
        assertTrue(committedAtStop > 0 && committedAtStop < events, committedAtStop + " records committed at the stop");

        // The TaskManager's log outlives cluster restarts: only what the resumed job adds to it counts.
        Path taskManagerLog = HOME.resolve(".flink-bridge/cluster/log/taskmanager.log");
        int logBefore = Files.readString(taskManagerLog).length();
        String spawned;
        Result resumed;
        if (resumedOn.equals("python")) {
            spawned = HOME.resolve("workers/python") + " --unix-socket";
            resumed = launcher("flink", "run", "-s", savepoint, jobJar, "--pipeline", pipeline.toString(),
                    "--parallelism", "1", "--worker=python", "--output", out.toString());
        } else {
            Path upgraded = otherWorkerBuild(dir.resolve("worker-upgraded.jar"));
            spawned = "-jar " + upgraded;
            resumed = launcher("flink", "run", "-s", savepoint, jobJar, "--pipeline", pipeline.toString(),
                    "--parallelism", "1", "--worker-jar", upgraded.toString(), "--output", out.toString());
        }
        assertEquals(0, resumed.exitCode, resumed.output);

        assertTrue(Files.readString(taskManagerLog).substring(logBefore).contains(spawned),
                "the resumed job did not spawn the replacement worker (" + spawned + ")");
        // Outputs emitted after the savepoint's barrier sit in an in-progress file the stopped job never
        // commits; they are in the savepoint and the resumed job emits them again. Only committed files count.
        assertCountsOnceEach(out, events);
    }

    /**
     * A planned upgrade of a running job: the Python segment (docs/examples/upgrade) is replaced by a new build in
     * place and `./flink-bridge cluster upgrade-worker` asks the TaskManager's worker to stop; its sessions move
     * to a new worker process, which runs the new build, and the job never restarts. Every key's counts come out
     * 1..n once each, the old build's first and the new one's after.
     */
    @Test
    void upgradeWorkerSwitchesARunningJobToANewBuildWithoutARestart(@TempDir Path dir) throws Exception {
        int events = 40_000;
        String name = "upgraded-in-place";
        Path segment = dir.resolve("versioned_count.py");
        String example = Files.readString(HOME.resolve("docs/examples/upgrade/versioned_count.py"));
        Files.writeString(segment, example);
        Path pipeline = perKeyPipeline(dir, name, events, 4000, 5, "{step_name: count, type: versioned_count.Count}",
                ", worker: python");
        Path out = dir.resolve("out");
        Result submitted = launcher("flink", "run", "-d",
                HOME.resolve("bridge-job/job/target/bridge-job-0.1.0-SNAPSHOT.jar").toString(),
                "--pipeline", pipeline.toString(), "--output", out.toString());
        assertEquals(0, submitted.exitCode, submitted.output);
        String jobId = onlyJobNamed(name).get("jid").asText();
        awaitCompletedCheckpoints(jobId, 2);
        Path taskManagerLog = HOME.resolve(".flink-bridge/cluster/log/taskmanager.log");
        int logBefore = Files.readString(taskManagerLog).length();

        Path next = dir.resolve("versioned_count.py.next");
        Files.writeString(next, example.replace("BUILD = \"v1\"", "BUILD = \"v2\"") + "# the second build\n");
        Files.move(next, segment, java.nio.file.StandardCopyOption.ATOMIC_MOVE,
                java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        Result upgrade = launcher("cluster", "upgrade-worker");

        assertEquals(0, upgrade.exitCode, upgrade.output);
        assertTrue(upgrade.output.contains("stopped as asked"), upgrade.output);
        awaitJobState(jobId, "FINISHED");
        assertEquals(0, restGet("/jobs/" + jobId + "/exceptions").path("exceptionHistory").path("entries").size(),
                "the job restarted");
        assertTrue(Files.readString(taskManagerLog).substring(logBefore).contains("moved to a new worker"),
                "no session moved to a new worker after the stop");
        java.util.Map<String, java.util.TreeMap<Long, String>> builds = new java.util.TreeMap<>();
        List<String> lines = committedLines(out);
        for (String line : lines) {
            JsonNode count = JSON.readTree(line);
            String build = builds.computeIfAbsent(count.get("key").asText(), key -> new java.util.TreeMap<>())
                    .put(count.get("count").asLong(), count.get("build").asText());
            assertEquals(null, build, "a count written twice: " + line);
        }
        assertEquals(events, lines.size());
        builds.forEach((key, byCount) -> {
            assertEquals(byCount.size(), byCount.lastKey(), key + ": counts have gaps: " + byCount.keySet());
            List<String> order = new ArrayList<>(byCount.values());
            int switched = order.indexOf("v2");
            assertTrue(switched > 0 && order.subList(0, switched).stream().allMatch("v1"::equals)
                    && order.subList(switched, order.size()).stream().allMatch("v2"::equals),
                    key + ": builds by count are not v1 then v2: " + order);
        });
    }

    /** `upgrade-worker --jar`: the new Java worker build goes where the running workers were started from. */
    @Test
    void upgradeWorkerInstallsANewJavaWorkerJarWithoutARestart(@TempDir Path dir) throws Exception {
        int events = 30_000;
        String name = "java-worker-upgraded";
        Path pipeline = perKeyPipeline(dir, name, events, 4000, 9, RUNNING_COUNT, "");
        Path running = dir.resolve("worker.jar");
        Files.copy(HOME.resolve("workers/java/target/worker-0.1.0-SNAPSHOT.jar"), running);
        Path out = dir.resolve("out");
        Result submitted = launcher("flink", "run", "-d",
                HOME.resolve("bridge-job/job/target/bridge-job-0.1.0-SNAPSHOT.jar").toString(),
                "--pipeline", pipeline.toString(), "--worker-jar", running.toString(), "--output", out.toString());
        assertEquals(0, submitted.exitCode, submitted.output);
        String jobId = onlyJobNamed(name).get("jid").asText();
        awaitCompletedCheckpoints(jobId, 2);

        Result upgrade = launcher("cluster", "upgrade-worker", "--jar",
                otherWorkerBuild(dir.resolve("worker-next.jar")).toString());

        assertEquals(0, upgrade.exitCode, upgrade.output);
        assertTrue(upgrade.output.contains("installed " + dir.resolve("worker-next.jar") + " at " + running),
                upgrade.output);
        try (java.nio.file.FileSystem jar = java.nio.file.FileSystems.newFileSystem(running)) {
            assertTrue(Files.exists(jar.getPath("flink-bridge-build.txt")), "the new build is not in place");
        }
        awaitJobState(jobId, "FINISHED");
        assertEquals(0, restGet("/jobs/" + jobId + "/exceptions").path("exceptionHistory").path("entries").size(),
                "the job restarted");
        assertCountsOnceEach(out, events);
    }

    private static final String RUNNING_COUNT =
            "{step_name: count_per_key, type: running_count, config: {key_json_field: key}}";

    /** {@code step} over 20 keys at parallelism 2, checkpointing every 500 ms; {@code bridge}: more settings. */
    private static Path perKeyPipeline(Path dir, String name, int events, int rate, int seed, String step,
                                       String bridge) throws IOException {
        Path pipeline = dir.resolve("pipeline.yaml");
        Files.writeString(pipeline, """
                name: %s
                sources:
                  events: {type: generator, count: %d, rate: %d, keys: 20, seed: %d}
                steps:
                  - %s
                sinks:
                  files: {type: file, path: unused}
                bridge: {parallelism: 2, key: {json_field: key}, checkpoint_interval_ms: 500%s}
                """.formatted(name, events, rate, seed, step, bridge));
        return pipeline;
    }

    /** The committed output holds {@code events} counts, every key's 1..n once each: nothing lost or repeated. */
    private static void assertCountsOnceEach(Path out, int events) throws IOException {
        java.util.Map<String, List<Long>> counts = new java.util.TreeMap<>();
        List<String> lines = committedLines(out);
        for (String line : lines) {
            JsonNode count = JSON.readTree(line);
            counts.computeIfAbsent(count.get("key").asText(), key -> new ArrayList<>()).add(count.get("count").asLong());
        }
        counts.forEach((key, seen) -> assertEquals(java.util.stream.LongStream.rangeClosed(1, seen.size()).boxed()
                .toList(), seen.stream().sorted().toList(), key + ": counts lost or repeated"));
        assertEquals(events, lines.size());
    }

    private static void awaitJobState(String jobId, String state) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        String seen = "";
        while (System.nanoTime() < deadline) {
            seen = restGet("/jobs/" + jobId).path("state").asText();
            if (seen.equals(state)) {
                return;
            }
            Thread.sleep(500);
        }
        throw new AssertionError("job " + jobId + " is " + seen + ", not " + state + ", after 120 s");
    }

    /** The lines of the committed part files under {@code dir}, leaving out in-progress (hidden) ones. */
    private static List<String> committedLines(Path dir) throws IOException {
        List<String> lines = new ArrayList<>();
        try (Stream<Path> files = Files.list(dir)) {
            for (Path file : files.filter(f -> f.getFileName().toString().startsWith("part-")).sorted().toList()) {
                lines.addAll(Files.readAllLines(file, StandardCharsets.UTF_8));
            }
        }
        return lines;
    }

    private static void awaitCompletedCheckpoints(String jobId, int count) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (System.nanoTime() < deadline) {
            JsonNode checkpoints = restGet("/jobs/" + jobId + "/checkpoints");
            if (checkpoints.path("counts").path("completed").asInt() >= count) {
                return;
            }
            Thread.sleep(200);
        }
        throw new AssertionError("job " + jobId + " did not complete " + count + " checkpoints within 60 s");
    }

    /** A different build of the worker: the same jar with one more entry, so it is another file and checksum. */
    private static Path otherWorkerBuild(Path target) throws IOException {
        Files.copy(HOME.resolve("workers/java/target/worker-0.1.0-SNAPSHOT.jar"), target);
        try (java.nio.file.FileSystem jar = java.nio.file.FileSystems.newFileSystem(target)) {
            Files.writeString(jar.getPath("flink-bridge-build.txt"), "upgraded for the redeployment test\n");
        }
        return target;
    }

    private static JsonNode restGet(String path) throws Exception {
        HttpResponse<String> response = HttpClient.newHttpClient().send(
                HttpRequest.newBuilder(URI.create("http://127.0.0.1:8081" + path))
                        .timeout(Duration.ofSeconds(10)).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(200, response.statusCode(), response.body());
        return JSON.readTree(response.body());
    }

    private static JsonNode onlyJobNamed(String name) throws Exception {
        List<JsonNode> jobs = new ArrayList<>();
        JsonNode overview = restGet("/jobs/overview");
        overview.get("jobs").forEach(job -> {
            if (job.get("name").asText().equals(name)) {
                jobs.add(job);
            }
        });
        assertEquals(1, jobs.size(), overview.toString());
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
