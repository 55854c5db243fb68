package org.flinkbridge.chaos;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.PartitionInfo;
import org.flinkbridge.testing.KafkaBroker;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * {@code ./flink-bridge chaos [--transport=shm|grpc] [--quick]}: a bounded run of keyed records from a real
 * Kafka broker through a per-key running count in the worker (with {@code --timers}: per-key event-time windows,
 * then batches closed by timers) into the exactly-once Kafka sink, on the real
 * standalone cluster, while worker processes (several times) and then the TaskManager (at least once) are
 * killed at random moments spread over the input. The committed output is then compared with an oracle, and
 * one line reports records in and out, kills, job restarts, workers recovered in place, duplicates, losses and
 * the p99 checkpoint duration from Flink's REST API.
 * Exits 1 on any loss or duplicate, or when fewer kills than planned could be done.
 */
public final class ChaosRun {

    private static final String INPUT = "chaos-in";
    private static final String OUTPUT = "chaos-out";
    private static final String DEAD_LETTERS = "chaos-dead";
    /** The windows' steps of {@code --timers}, in the count's place. */
    static final String WINDOW_THEN_BATCH = "{step_name: per_second, type: window, config: {key_json_field: key, "
            + "size_ms: 1000, allowed_lateness_ms: 2000}}\n  - {step_name: batched, type: batch, "
            + "config: {max_count: 50, max_wait_ms: 300}}";
    /**
     * How far past the input's end the records that end it with {@code --timers} are stamped: their event time
     * takes the watermark past every window of the input, so that each fires (they are the topic's last, and
     * their own windows never fire). Kafka refuses timestamps more than an hour ahead by default.
     */
    private static final long END_OF_WINDOWS_MILLIS = 60_000;
    private static final String END_OF_WINDOWS = "{\"key\":\"end-of-windows\",\"id\":-1}";

    private final ChaosOptions options;
    private final Path home;
    private final Cluster cluster;
    private final Random random = new Random();

    private ChaosRun(ChaosOptions options, Path home) {
        this.options = options;
        this.home = home;
        this.cluster = new Cluster(home);
    }

    public static void main(String[] args) throws Exception {
        Runs.main("chaos", args, ChaosOptions::parse, (options, home) -> new ChaosRun(options, home).run());
    }

    /** @return whether the output was exactly once and every planned kill was done */
    private boolean run() throws Exception {
        Path dir = Files.createTempDirectory("flink-bridge-chaos-");
        log("starting a Kafka broker and the cluster");
        try (KafkaBroker broker = KafkaBroker.start()) {
            broker.createTopic(INPUT, 2);
            broker.createTopic(OUTPUT, 2);
            if (options.deadLetters()) {
                broker.createTopic(DEAD_LETTERS, 2);
            }
            cluster.start();
            try {
                return runJob(broker, dir);
            } finally {
                cluster.stop();
            }
        }
    }

    private boolean runJob(KafkaBroker broker, Path dir) throws Exception {
        Path pipeline = writePipeline(broker, dir);
        long recoveriesBefore = cluster.recoveriesLogged();
        String jobId = cluster.submit(pipeline, "chaos-" + options.transport(), options.transport());
        log("job " + jobId + " submitted over " + options.transport() + "; producing " + options.records()
                + " records at " + options.recordsPerSecond() + "/s while killing");
        KillPlan kills = new KillPlan(random, options.produceMillis(), options.workerKills(),
                options.taskManagerKills(), options.worker().equals("python"));
        OutputReader<?> output = new OutputReader<>(broker.bootstrapServers(), OUTPUT,
                options.timers() ? new WindowOracle() : new Oracle());
        output.start();
        int[] perKey = produce(broker, kills);
        kills.finish(cluster);
        if (options.timers()) {
            endWindows(broker);
        }
        log("input done; waiting for the output to settle");
        OutputReader.Outcome result = output.awaitSettled(options.records() - options.poisoned(),
                TimeUnit.SECONDS.toMillis(options.settleSeconds())).compare(perKey);
        output.close();
        DeadLetterTally letters = options.deadLetters() ? DeadLetterTally.of(broker.readAll(DEAD_LETTERS, true),
                options.records(), ChaosOptions.POISON_EVERY) : DeadLetterTally.NONE;
        Cluster.Restarts restarts = cluster.restarts(jobId);
        long recoveries = cluster.recoveriesLogged() - recoveriesBefore;
        String p99 = cluster.checkpointP99Millis(jobId);
        cluster.cancel(jobId);
        List<ProcessHandle> workersLeft = cluster.workersLeftBehind();
        for (ProcessHandle worker : workersLeft) {
            log("worker process " + worker.pid() + " outlived the TaskManager that spawned it; killing it: "
                    + worker.info().commandLine().orElse("?"));
            worker.destroyForcibly();
        }
        boolean killsDone = kills.workerKills() >= options.workerKills()
                && kills.taskManagerKills() >= options.taskManagerKills();
        System.out.println("chaos: transport=" + options.transport() + " worker=" + options.worker()
                + " recovery=" + options.recovery() + (options.nondeterministic() ? " steps=nondeterministic" : "")
                + (options.timers() ? " steps=timers" : "")
                + " records in=" + options.records()
                + " out=" + result.outputs() + " worker_kills=" + kills.workerKills()
                + " taskmanager_kills=" + kills.taskManagerKills() + " job_restarts=" + restarts.failovers()
                + " deploy_retries=" + restarts.retries()
                + " worker_recoveries=" + recoveries
                + " duplicates=" + result.duplicates() + " losses=" + result.losses()
                + " checkpoint_p99_ms=" + p99 + " workers_left=" + workersLeft.size()
                + (options.deadLetters() ? " " + letters : "") + result.details()
                + (killsDone ? "" : " (fewer kills than planned)"));
        return result.exactlyOnce() && letters.exactlyOnce() && killsDone && workersLeft.isEmpty();
    }

    private Path writePipeline(KafkaBroker broker, Path dir) throws IOException {
        String servers = broker.bootstrapServers();
        String step = options.deadLetters() ? KafkaCountPipeline.RUNNING_COUNT_OR_DEAD_LETTER
                : KafkaCountPipeline.RUNNING_COUNT;
        if (options.timers()) {
            step = WINDOW_THEN_BATCH;
        }
        if (options.nondeterministic()) {
            // The Python worker finds segments in the pipeline's folder.
            Files.copy(home.resolve("docs/examples/chaos/noisy_count.py"), dir.resolve("noisy_count.py"));
            step = "{step_name: noisy_count, type: noisy_count.Count}";
        }
        return KafkaCountPipeline.write(dir.resolve("chaos.yaml"), "chaos-" + options.transport(), servers, INPUT,
                OUTPUT, step, options.transport(), options.checkpointIntervalMillis(), options.recovery(),
                "worker: " + options.worker(), options.deadLetters() ? DEAD_LETTERS : null);
    }

    /** Writes the input at the planned rate, killing as the plan says; returns the records written per key. */
    private int[] produce(KafkaBroker broker, KillPlan kills) throws Exception {
        try (KafkaProducer<byte[], byte[]> producer = broker.producer(Map.of("acks", "all"))) {
            return SteadyProducer.produce(producer, INPUT, options.records(), options.recordsPerSecond(),
                    options.keys(),
                    options.deadLetters() ? ChaosOptions.POISON_EVERY : 0,
                    elapsedMillis -> kills.killDue(cluster, elapsedMillis));
        }
    }

    /**
     * Ends the windows of {@code --timers}: a record on each input partition, of a key of its own, stamped past
     * the input's end, which takes the watermark (the least over the source's subtasks) past every window.
     */
    private static void endWindows(KafkaBroker broker) throws Exception {
        long stamp = System.currentTimeMillis() + END_OF_WINDOWS_MILLIS;
        try (KafkaProducer<byte[], byte[]> producer = broker.producer(Map.of("acks", "all"))) {
            for (PartitionInfo partition : producer.partitionsFor(INPUT)) {
                producer.send(new ProducerRecord<>(INPUT, partition.partition(), stamp,
                        "end-of-windows".getBytes(StandardCharsets.UTF_8),
                        END_OF_WINDOWS.getBytes(StandardCharsets.UTF_8)));
            }
            producer.flush();
        }
    }

    static void log(String line) {
        System.err.println("flink-bridge chaos: " + line);
    }

    /**
     * When to kill what: worker kills, then TaskManager kills, at random moments while the input flows. A worker
     * kill of the Python worker kills one of its session processes (its supervisor dies with the TaskManager).
     */
    private static final class KillPlan {
        private final List<Long> workerAt = new ArrayList<>();
        private final List<Long> taskManagerAt = new ArrayList<>();
        private final boolean sessionProcesses;
        private int workerKills;
        private int taskManagerKills;

        KillPlan(Random random, long produceMillis, int workers, int taskManagers, boolean sessionProcesses) {
            this.sessionProcesses = sessionProcesses;
            // Kills fall in the middle 80% of the input, so the job is running and has input left after each: one
            // to a slot of equal length, at a random moment in its middle half, so that one kill's recovery is
            // mostly over before the next; the workers' slots first, then the TaskManager's, whose restart of
            // the job would otherwise take the next worker kills' place.
            long from = produceMillis / 10;
            int slots = workers + taskManagers;
            double slot = produceMillis * 0.8 / Math.max(1, slots);
            for (int i = 0; i < slots; i++) {
                long at = from + (long) (slot * (i + 0.25 + random.nextDouble() * 0.5));
                (i < workers ? workerAt : taskManagerAt).add(at);
            }
        }

        void killDue(Cluster cluster, long elapsedMillis) throws Exception {
            while (!taskManagerAt.isEmpty() && taskManagerAt.getFirst() <= elapsedMillis) {
                taskManagerAt.removeFirst();
                if (cluster.killTaskManager()) {
                    taskManagerKills++;
                }
            }
            while (!workerAt.isEmpty() && workerAt.getFirst() <= elapsedMillis) {
                workerAt.removeFirst();
                if (cluster.killAWorker(sessionProcesses)) {
                    workerKills++;
                }
            }
        }

        /** Kills not yet done when the input ends are done now, so the plan is always carried out. */
        void finish(Cluster cluster) throws Exception {
            killDue(cluster, Long.MAX_VALUE);
        }

        int workerKills() {
            return workerKills;
        }

        int taskManagerKills() {
            return taskManagerKills;
        }
    }
}
