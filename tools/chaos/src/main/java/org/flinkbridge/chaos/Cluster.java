package org.flinkbridge.chaos;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * The standalone cluster as the chaos run drives it: through the launcher ({@code cluster start|stop},
 * {@code flink run|cancel}), by signals to its processes, and through Flink's REST API on 127.0.0.1:8081.
 */
final class Cluster {

    private static final String REST = "http://127.0.0.1:8081";
    /** What the bridge's session exchange logs once per recovery in place (it logs nothing else this way). */
    private static final String RECOVERED_IN_PLACE = ": recovered in place in ";
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path home;
    private final HttpClient http = HttpClient.newHttpClient();

    Cluster(Path home) {
        this.home = home;
    }

    void start() throws Exception {
        launcher("cluster", "start");
    }

    void stop() throws Exception {
        launcher("cluster", "stop");
    }

    /**
     * Submits the job named {@code jobName} detached, with the job's further {@code options}, and returns its id,
     * as the REST API lists it; Flink restarts it after every failure.
     */
    String submit(Path pipeline, String jobName, String transport, String... options) throws Exception {
        List<String> args = new ArrayList<>(List.of("flink", "run", "-d",
                home.resolve("bridge-job/job/target/bridge-job-0.1.0-SNAPSHOT.jar").toString(),
                "--pipeline", pipeline.toString(), "--transport=" + transport,
                "-Drestart-strategy.type=fixed-delay", "-Drestart-strategy.fixed-delay.attempts=1000",
                "-Drestart-strategy.fixed-delay.delay=1s"));
        args.addAll(List.of(options));
        launcher(args.toArray(String[]::new));
        for (JsonNode job : rest("/jobs/overview").path("jobs")) {
            if (job.path("name").asText().equals(jobName) && !job.path("state").asText().equals("CANCELED")) {
                return job.path("jid").asText();
            }
        }
        throw new IOException("the cluster lists no job named " + jobName + " after it was submitted");
    }

    /**
     * Waits until every task of the job runs and a first checkpoint completed (its sources and sinks are ready), or
     * fails after {@code timeoutSeconds}.
     */
    void awaitRunning(String jobId, long timeoutSeconds) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(timeoutSeconds);
        while (System.nanoTime() < deadline) {
            JsonNode job = rest("/jobs/" + jobId);
            boolean allRunning = job.path("state").asText().equals("RUNNING");
            for (JsonNode vertex : job.path("vertices")) {
                allRunning &= vertex.path("status").asText().equals("RUNNING");
            }
            if (allRunning && rest("/jobs/" + jobId + "/checkpoints").path("counts").path("completed").asLong() > 0) {
                return;
            }
            Thread.sleep(500);
        }
        throw new IOException("job " + jobId + " did not run with a completed checkpoint within " + timeoutSeconds + " s");
    }

    void cancel(String jobId) throws Exception {
        launcher("flink", "cancel", jobId);
    }

    /**
     * SIGKILLs one worker process the TaskManager spawned (or, with {@code sessionProcess}, one process a
     * spawned Python worker runs a session in), waiting up to 60 s for one to run (after a restart the job
     * spawns a new one); returns whether one was killed.
     */
    boolean killAWorker(boolean sessionProcess) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (System.nanoTime() < deadline) {
            List<ProcessHandle> workers = taskManager().stream().flatMap(ProcessHandle::children)
                    .filter(p -> spawnerPid(p).isPresent())
                    .flatMap(worker -> sessionProcess ? worker.children() : java.util.stream.Stream.of(worker))
                    .toList();
            if (!workers.isEmpty()) {
                // The oldest: the worker serving the job, not a standby started after it.
                ProcessHandle victim = workers.stream()
                        .min(Comparator.comparing(p -> p.info().startInstant().orElse(Instant.MAX))).orElseThrow();
                ChaosRun.log("killing worker process " + victim.pid());
                victim.destroyForcibly();
                victim.onExit().get(10, TimeUnit.SECONDS);
                return true;
            }
            Thread.sleep(200);
        }
        ChaosRun.log("no worker process ran within 60 s; that kill is skipped");
        return false;
    }

    /** SIGKILLs the TaskManager, then starts a new one as an operator's supervisor would; the job moves to it. */
    boolean killTaskManager() throws Exception {
        Optional<ProcessHandle> taskManager = taskManager();
        if (taskManager.isEmpty()) {
            ChaosRun.log("no TaskManager runs; that kill is skipped");
            return false;
        }
        ChaosRun.log("killing the TaskManager, process " + taskManager.get().pid());
        taskManager.get().destroyForcibly();
        taskManager.get().onExit().get(10, TimeUnit.SECONDS);
        start();
        return true;
    }

    /**
     * The spawned workers whose spawner (a TaskManager) is gone, once those that end by themselves have had
     * 10 s to do so: a spawned worker must never outlive its TaskManager.
     */
    List<ProcessHandle> workersLeftBehind() throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        List<ProcessHandle> left;
        do {
            left = ProcessHandle.allProcesses().filter(Cluster::outlivedItsSpawner).toList();
            if (left.isEmpty()) {
                break;
            }
            Thread.sleep(200);
        } while (System.nanoTime() < deadline);
        return left;
    }

    private static boolean outlivedItsSpawner(ProcessHandle process) {
        Optional<Long> spawner = spawnerPid(process);
        return spawner.isPresent() && process.isAlive()
                && !spawner.equals(process.parent().map(ProcessHandle::pid));
    }

    /** The pid a spawned worker was given as its spawner's ({@code --parent-pid PID}); empty for any other process. */
    private static Optional<Long> spawnerPid(ProcessHandle process) {
        List<String> args = List.of(process.info().arguments().orElse(new String[0]));
        int at = args.indexOf("--parent-pid");
        return at >= 0 && at + 1 < args.size() && args.get(at + 1).matches("\\d+")
                ? Optional.of(Long.parseLong(args.get(at + 1))) : Optional.empty();
    }

    /** The running TaskManager process, from the pid file the launcher keeps. */
    private Optional<ProcessHandle> taskManager() throws IOException {
        Path pidFile = home.resolve(".flink-bridge/cluster/taskmanager.pid");
        return Files.exists(pidFile)
                ? ProcessHandle.of(Long.parseLong(Files.readString(pidFile).trim())).filter(ProcessHandle::isAlive)
                : Optional.empty();
    }

    /**
     * The recoveries in place the TaskManager's log has recorded so far, across its restarts (the log is
     * appended to): each is one line of the bridge's session exchange.
     */
    long recoveriesLogged() throws IOException {
        Path log = home.resolve(".flink-bridge/cluster/log/taskmanager.log");
        if (!Files.exists(log)) {
            return 0;
        }
        try (var lines = Files.lines(log, StandardCharsets.ISO_8859_1)) {
            return lines.filter(line -> line.contains(RECOVERED_IN_PLACE)).count();
        }
    }

    /** A failure the job restarted from: when, the exception's class and the first line of its message. */
    record Failure(long timestampMillis, String exception, String message) {}

    /**
     * The job's restarts, as its exception history lists them: the failovers (failures that began one) and the
     * retries of a failover that could not deploy yet (no slot while a killed TaskManager is away).
     */
    record Restarts(long failovers, long retries) {}

    Restarts restarts(String jobId) throws Exception {
        List<Failure> failures = failures(jobId);
        long retries = Failovers.retries(failures).size();
        return new Restarts(failures.size() - retries, retries);
    }

    List<Failure> failures(String jobId) throws Exception {
        List<Failure> failures = new ArrayList<>();
        for (JsonNode entry : rest("/jobs/" + jobId + "/exceptions?maxExceptions=1000").path("exceptionHistory")
                .path("entries")) {
            String trace = entry.path("stacktrace").asText();
            // The first line says what failed; the last "Caused by" says why (a restore that fails, say).
            String rootCause = trace.lines().filter(line -> line.startsWith("Caused by: ")).reduce((a, b) -> b)
                    .map(line -> " Root cause: " + line.substring("Caused by: ".length())).orElse("");
            failures.add(new Failure(entry.path("timestamp").asLong(), entry.path("exceptionName").asText(),
                    trace.lines().findFirst().orElse("") + rootCause));
        }
        return failures;
    }

    /** The p99 of the completed checkpoints' end-to-end durations, as Flink's checkpoint statistics give it. */
    String checkpointP99Millis(String jobId) throws Exception {
        JsonNode p99 = rest("/jobs/" + jobId + "/checkpoints").path("summary").path("end_to_end_duration")
                .path("p99");
        return p99.isNumber() ? Long.toString(Math.round(p99.asDouble())) : "n/a";
    }

    private JsonNode rest(String path) throws Exception {
        HttpResponse<String> response = http.send(HttpRequest.newBuilder(URI.create(REST + path))
                .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
        if (response.statusCode() != 200) {
            throw new IOException("GET " + path + " answered " + response.statusCode() + ": " + response.body());
        }
        return JSON.readTree(response.body());
    }

    /** Runs {@code ./flink-bridge ARGS...}; fails with its output unless it exits 0. */
    private String launcher(String... args) throws Exception {
        List<String> command = new ArrayList<>();
        command.add(home.resolve("flink-bridge").toString());
        command.addAll(List.of(args));
        return Commands.run(home, Map.of(), Duration.ofMinutes(5), command);
    }
}
