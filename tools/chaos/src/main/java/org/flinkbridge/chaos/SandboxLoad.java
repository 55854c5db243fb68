package org.flinkbridge.chaos;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * {@code ./flink-bridge sandbox load}: a steady stream of keyed records into the sandbox's Kafka, through a per-key
 * running count in the workers (each TaskManager's sidecar container) into the exactly-once Kafka sink, while the
 * worker containers are restarted, one is replaced by the other image version (an upgrade), a TaskManager's JVM is
 * killed (its container comes back by the compose restart policy) and a ring tmpfs is filled near its limit. The
 * records come from the sandbox's load generator, and its oracle reads the committed output (read_committed) and
 * checks it, each a container of its own ({@link LoadTraffic}); one line sums the run up, and a Markdown report with
 * a PNG of throughput and latency over time, the faults marked, goes to out/sandbox/UTC-TIME/ with the oracle's
 * own report (OUTPUT-TOPIC.oracle.json).
 * Exits 1 on any loss or duplicate, or when a planned fault could not be done.
 */
public final class SandboxLoad {

    private static final String INPUT = "sandbox-in";
    private static final String OUTPUT = "sandbox-out";
    private static final String KAFKA = "127.0.0.1:9092";
    private static final int KEYS = 100;
    private static final long BUCKET_MILLIS = 5_000;
    /** How long the output may take to settle once the input is written. */
    private static final Duration SETTLE = Duration.ofMinutes(5);
    /** How much longer than planned writing the input may take (a slow Kafka, the TaskManager kill's load). */
    private static final Duration INPUT_GRACE = Duration.ofMinutes(5);
    private static final Duration SATURATION_INPUT_LIMIT = Duration.ofMinutes(30);
    /** The load test's compose services (profile "load"). */
    private static final String GENERATOR = "load-generator";
    private static final String ORACLE = "oracle";
    /** The address each TaskManager's jobs find their own sidecar by: the socket in the tmpfs they share. */
    private static final String WORKER_ADDRESS = "unix:" + Sandbox.RINGS + "/worker.sock";
    /** What the bridge logs once per recovery in place and once per session moved to a new worker. */
    private static final List<String> RECOVERY_LINES = List.of(": recovered in place in ", ": moved to a new worker in ");

    /** A fault done (or attempted) at a moment of the run. */
    record Fault(long atSecond, String what, String outcome, boolean done) {}

    private final SandboxOptions options;
    private final Path home;
    private final Sandbox sandbox;
    private final Cluster cluster;
    private final List<Fault> faults = Collections.synchronizedList(new ArrayList<>());

    private SandboxLoad(SandboxOptions options, Path home) {
        this.options = options;
        this.home = home;
        this.sandbox = new Sandbox(home, options.worker());
        this.cluster = new Cluster(home);
    }

    public static void main(String[] args) throws Exception {
        Runs.main("sandbox load", args, SandboxOptions::parse, (options, home) -> new SandboxLoad(options, home).run());
    }

    private boolean run() throws Exception {
        log("bringing the sandbox up afresh with the " + options.worker() + " worker");
        sandbox.up();
        try {
            return options.saturate() ? runSaturated() : runJob();
        } finally {
            log("taking the sandbox down");
            sandbox.down();
        }
    }

    private boolean runJob() throws Exception {
        Path results = resultsDir();
        createTopics(INPUT, OUTPUT);
        String jobId = submit(options.transport(), INPUT, OUTPUT);
        long produceMillis = options.records() * 1000 / options.recordsPerSecond();
        log("job " + jobId + " submitted over " + options.transport() + "; producing " + options.records()
                + " records at " + options.recordsPerSecond() + "/s for " + options.minutes() + " min while faults happen");
        long startMillis = System.currentTimeMillis();
        Map<String, String> load = loadSettings(INPUT, OUTPUT, options.records(), options.recordsPerSecond(),
                startMillis);
        sandbox.startLoadService(ORACLE, load);
        sandbox.startLoadService(GENERATOR, load);
        ScheduledExecutorService faultThread = Executors.newSingleThreadScheduledExecutor();
        scheduleFaults(faultThread, produceMillis, startMillis);
        awaitGenerator(Duration.ofMillis(produceMillis).plus(INPUT_GRACE));
        faultThread.shutdown();
        if (!faultThread.awaitTermination(5, TimeUnit.MINUTES)) {
            throw new IOException("the faults did not finish within 5 minutes of the input's end");
        }
        log("input done; waiting for the output to settle");
        LoadTraffic.Report oracle = awaitOracle(OUTPUT, results);
        Oracle.Result result = oracle.result();
        Map<String, Map<Integer, Double>> metrics = BridgeMetrics.scrape();
        List<Cluster.Failure> failures = cluster.failures(jobId);
        Set<Cluster.Failure> retries = Failovers.retries(failures);
        long restarts = failures.stream().filter(failure -> !retries.contains(failure)).count();
        String checkpointP99 = cluster.checkpointP99Millis(jobId);
        long recoveries = 0;
        for (String taskManager : List.of("taskmanager-1", "taskmanager-2")) {
            for (String line : RECOVERY_LINES) {
                recoveries += sandbox.logLines(taskManager, line);
            }
        }
        cluster.cancel(jobId);
        List<Timeline.Bucket> buckets = oracle.buckets();
        long activeSeconds = buckets.stream().filter(b -> b.outputs() > 0).count() * BUCKET_MILLIS / 1000;
        long throughput = activeSeconds == 0 ? 0 : result.outputs() / activeSeconds;
        boolean faultsDone = faults.stream().allMatch(Fault::done);
        String summary = "sandbox: transport=" + options.transport() + " worker=" + options.worker()
                + " minutes=" + options.minutes() + " records_in=" + options.records()
                + " records_out=" + result.outputs() + " duplicates=" + result.duplicates()
                + " losses=" + result.losses() + " job_restarts=" + restarts + " worker_recoveries=" + recoveries
                + " throughput_rps=" + throughput + " latency_p50_ms=" + oracle.latencyP50Millis()
                + " latency_p99_ms=" + oracle.latencyP99Millis() + " checkpoint_p99_ms=" + checkpointP99
                + (faultsDone ? "" : " (a planned fault failed)");
        Path report = LoadReport.write(results, summary, options, BUCKET_MILLIS / 1000, buckets,
                List.copyOf(faults), failures, retries, startMillis, metrics);
        System.out.println(summary);
        log("report: " + report);
        return result.exactlyOnce() && faultsDone;
    }

    /**
     * Saturation, with nothing else happening: the input is written into Kafka first, then the job drains it, over
     * shm and then over gRPC in the same sandbox; the throughput of each is its records over the time from the first
     * committed output to the last.
     */
    private boolean runSaturated() throws Exception {
        Path results = resultsDir();
        StringBuilder summary = new StringBuilder("sandbox saturation: worker=" + options.worker() + " records="
                + options.saturationRecords());
        Map<String, Long> throughputs = new LinkedHashMap<>();
        Map<String, List<Timeline.Bucket>> drains = new LinkedHashMap<>();
        boolean exactlyOnce = true;
        for (String transport : List.of("shm", "grpc")) {
            String input = "saturate-in-" + transport;
            String output = "saturate-out-" + transport;
            createTopics(input, output);
            log("writing " + options.saturationRecords() + " records for the " + transport + " run");
            Map<String, String> load = loadSettings(input, output, options.saturationRecords(), 0,
                    System.currentTimeMillis());
            sandbox.startLoadService(GENERATOR, load);
            awaitGenerator(SATURATION_INPUT_LIMIT);
            sandbox.startLoadService(ORACLE, load);
            String jobId = submit(transport, input, output);
            log("job " + jobId + " drains the input over " + transport);
            LoadTraffic.Report oracle = awaitOracle(output, results);
            cluster.cancel(jobId);
            Oracle.Result result = oracle.result();
            long millis = Math.max(1, oracle.lastReadMillis() - oracle.firstReadMillis());
            throughputs.put(transport, result.outputs() * 1000 / millis);
            drains.put(transport, oracle.buckets().stream().dropWhile(b -> b.outputs() == 0).toList());
            exactlyOnce &= result.exactlyOnce();
            summary.append(' ').append(transport).append("_rps=").append(throughputs.get(transport))
                    .append(' ').append(transport).append("_duplicates=").append(result.duplicates())
                    .append(' ').append(transport).append("_losses=").append(result.losses());
        }
        summary.append(String.format(" shm_to_grpc=%.2f", throughputs.get("shm") / (double) throughputs.get("grpc")));
        // The whole drain includes the job's ramp-up (JIT, Kafka fetches): its best 5 s show the steady pace.
        Map<String, Long> peaks = new LinkedHashMap<>();
        drains.forEach((transport, drain) -> peaks.put(transport,
                Math.round(drain.stream().mapToDouble(Timeline.Bucket::recordsPerSecond).max().orElse(0))));
        peaks.forEach((transport, peak) -> summary.append(' ').append(transport).append("_peak_rps=").append(peak));
        summary.append(String.format(" peak_shm_to_grpc=%.2f", peaks.get("shm") / (double) Math.max(1, peaks.get("grpc"))));
        Files.writeString(results.resolve("saturation.md"), "# Sandbox at saturation: " + options.worker()
                + " worker, shm and gRPC side by side\n\n`./flink-bridge sandbox load --saturate --worker "
                + options.worker() + " --records " + options.saturationRecords() + "`: " + options.saturationRecords()
                + " records written into Kafka first, then drained by the per-key count over each transport in turn,"
                + " in the same sandbox.\n\n```\n" + summary
                + "\n```\n" + drainTable(drains));
        System.out.println(summary);
        log("report: " + results.resolve("saturation.md"));
        return exactlyOnce;
    }

    /** Committed records/s of each transport's drain, bucket by bucket from its first committed output. */
    private static String drainTable(Map<String, List<Timeline.Bucket>> drains) {
        StringBuilder table = new StringBuilder("\n## Committed output over time\n\nRecords read back with"
                + " read_committed per second, per bucket of " + BUCKET_MILLIS / 1000 + " s from each drain's first"
                + " committed output.\n\n| from (s) |");
        drains.keySet().forEach(transport -> table.append(' ').append(transport).append(" records/s |"));
        table.append("\n| --- |").append(" --- |".repeat(drains.size())).append('\n');
        int rows = drains.values().stream().mapToInt(List::size).max().orElse(0);
        for (int row = 0; row < rows; row++) {
            table.append("| ").append(row * BUCKET_MILLIS / 1000).append(" |");
            for (List<Timeline.Bucket> drain : drains.values()) {
                table.append(' ').append(row < drain.size() ? Math.round(drain.get(row).recordsPerSecond()) : "")
                        .append(" |");
            }
            table.append('\n');
        }
        return table.toString();
    }

    /** The LOAD_* settings of the load generator and the oracle (deploy/sandbox/docker-compose.yml). */
    private static Map<String, String> loadSettings(String input, String output, long records, int recordsPerSecond,
                                                    long startMillis) {
        return Map.of("LOAD_INPUT", input, "LOAD_OUTPUT", output, "LOAD_RECORDS", Long.toString(records),
                "LOAD_RATE", Integer.toString(recordsPerSecond), "LOAD_KEYS", Integer.toString(KEYS),
                "LOAD_START_MILLIS", Long.toString(startMillis), "LOAD_BUCKET_MILLIS", Long.toString(BUCKET_MILLIS),
                "LOAD_SETTLE_SECONDS", Long.toString(SETTLE.toSeconds()));
    }

    private void awaitGenerator(Duration limit) throws Exception {
        int status = sandbox.awaitExit(GENERATOR, limit);
        if (status != 0) {
            throw new IOException("the load generator failed (exit status " + status + "); its log:\n"
                    + sandbox.log(GENERATOR));
        }
    }

    /** Waits for the oracle of {@code output} and takes its report into {@code results}. */
    private LoadTraffic.Report awaitOracle(String output, Path results) throws Exception {
        // A loss or a duplicate has an exit status of its own, and the report says which; others are the oracle's.
        int status = sandbox.awaitExit(ORACLE, SETTLE.plus(INPUT_GRACE));
        if (status != 0 && status != LoadTraffic.LOSS_OR_DUPLICATE) {
            throw new IOException("the oracle failed (exit status " + status + "); its log:\n" + sandbox.log(ORACLE));
        }
        Files.createDirectories(results);
        try {
            return LoadTraffic.readReport(sandbox.copyLoadFile(ORACLE, output + LoadTraffic.REPORT, results));
        } catch (IOException e) {
            throw new IOException("the oracle (exit status " + status + ") left no report; its log:\n"
                    + sandbox.log(ORACLE), e);
        }
    }

    /** Submits the per-key count from {@code input} to {@code output} and waits until it runs. */
    private String submit(String transport, String input, String output) throws Exception {
        Path dir = Files.createTempDirectory("flink-bridge-sandbox-");
        Path pipeline = writePipeline(dir, transport, input, output);
        String jobId = cluster.submit(pipeline, "sandbox-" + transport, transport,
                "-Dflink-bridge.shm.directory=" + Sandbox.RINGS,
                "-Dexecution.checkpointing.dir=" + Sandbox.CHECKPOINTS);
        cluster.awaitRunning(jobId, 180);
        return jobId;
    }

    private Path resultsDir() {
        return home.resolve("out/sandbox").resolve(DateTimeFormatter.ofPattern("yyyyMMdd'T'HHmmss'Z'")
                .withZone(ZoneOffset.UTC).format(Instant.now()));
    }

    /**
     * The faults, spread over the input: three worker restarts (the last while the ring tmpfs of its TaskManager is
     * filled to one session's room), one upgrade to the image of version v2, one TaskManager kill.
     */
    private void scheduleFaults(ScheduledExecutorService thread, long produceMillis, long startMillis) {
        schedule(thread, produceMillis * 15 / 100, startMillis, "docker restart worker-1", () -> {
            sandbox.restartWorker(1);
            return "restarted";
        });
        schedule(thread, produceMillis * 30 / 100, startMillis, "docker restart worker-2", () -> {
            sandbox.restartWorker(2);
            return "restarted";
        });
        schedule(thread, produceMillis * 42 / 100, startMillis, "upgrade worker-1 to image v2", () -> {
            sandbox.upgradeWorker(1, "v2");
            return "replaced by a container of flink-bridge/worker-" + options.worker() + ":v2";
        });
        schedule(thread, produceMillis * 55 / 100, startMillis, "fill the ring tmpfs of taskmanager-2", () ->
                "filled: " + sandbox.fillRings(2));
        schedule(thread, produceMillis * 60 / 100, startMillis, "docker restart worker-2 (tmpfs near full)", () -> {
            sandbox.restartWorker(2);
            return "restarted";
        });
        schedule(thread, produceMillis * 66 / 100, startMillis, "empty the ring tmpfs of taskmanager-2", () -> {
            sandbox.emptyRings(2);
            return "emptied";
        });
        schedule(thread, produceMillis * 78 / 100, startMillis, "kill the TaskManager JVM of taskmanager-1", () -> {
            sandbox.killTaskManager(1);
            return "killed; the restart policy starts it again";
        });
    }

    private interface FaultAction {
        String run() throws Exception;
    }

    private void schedule(ScheduledExecutorService thread, long atMillis, long startMillis, String what,
                          FaultAction action) {
        thread.schedule(() -> {
            long atSecond = (System.currentTimeMillis() - startMillis) / 1000;
            log(what);
            try {
                faults.add(new Fault(atSecond, what, action.run(), true));
            } catch (Exception e) {
                log(what + " failed: " + e.getMessage());
                faults.add(new Fault(atSecond, what, "failed: " + e.getMessage(), false));
            }
        }, atMillis, TimeUnit.MILLISECONDS);
    }

    private static void createTopics(String input, String output) throws Exception {
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, KAFKA))) {
            admin.createTopics(List.of(new NewTopic(input, 2, (short) 1), new NewTopic(output, 2, (short) 1)))
                    .all().get(60, TimeUnit.SECONDS);
        }
    }

    private static Path writePipeline(Path dir, String transport, String input, String output) throws IOException {
        return KafkaCountPipeline.write(dir.resolve("sandbox.yaml"), "sandbox-" + transport, KAFKA, input, output,
                KafkaCountPipeline.RUNNING_COUNT, transport, 1000, "in_place",
                "worker_address: \"" + WORKER_ADDRESS + "\"");
    }

    static void log(String line) {
        System.err.println("flink-bridge sandbox load: " + line);
    }
}
