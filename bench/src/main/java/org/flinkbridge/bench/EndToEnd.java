package org.flinkbridge.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.datastream.api.ExecutionEnvironment;
import org.apache.flink.datastream.api.common.Collector;
import org.apache.flink.datastream.api.context.PartitionedContext;
import org.apache.flink.datastream.api.function.OneInputStreamProcessFunction;
import org.apache.flink.datastream.api.stream.NonKeyedPartitionStream;
import org.apache.flink.datastream.impl.ExecutionEnvironmentImpl;
import org.apache.flink.runtime.checkpoint.CheckpointStatsSnapshot;
import org.apache.flink.runtime.util.stats.StatsSummarySnapshot;
import org.flinkbridge.bridge.function.BridgeFunction;
import org.flinkbridge.bridge.function.BridgeStreams;
import org.flinkbridge.bridge.session.SessionSpec;
import org.flinkbridge.bridge.session.SpawnedWorker;
import org.flinkbridge.job.io.Sources;
import org.flinkbridge.pipeline.BridgeSettings;
import org.flinkbridge.pipeline.GeneratorSourceSpec;
import org.flinkbridge.pipeline.TransportMode;
import org.flinkbridge.records.BridgeRecord;
import org.flinkbridge.worker.SegmentInstances;
import org.flinkbridge.worker.SessionClock;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * The end-to-end job benchmark: generated JSON events through append-field into a discarding sink on an
 * embedded MiniCluster, with the step (a) inside Flink, no bridge, (b) in a worker over shm, (c) in a worker
 * over streamed gRPC, (d) in the Rust worker over shm, (e) as a Python segment in the Python worker and in the
 * Rust worker. Each variant runs twice. First as fast as it goes, checkpointing every
 * {@value #CHECKPOINT_INTERVAL_MS} ms: records/s between its first and last record, and the checkpoints'
 * end-to-end durations as Flink's statistics give them
 * (checkpoint duration under load). Then at half of that rate, where the latency each record sees from before
 * the step to after it is recorded (p50, p99, p99.9) once the first {@value #WARMUP_SECONDS} s are over (a new
 * worker process starts cold), and the records slower than the 200 µs goal are set against the
 * garbage-collection pauses of both JVMs ({@link GcPauses}), which is where the tail comes from.
 *
 * <p>With more than one round, every variant's throughput run is repeated in {@link Rounds}: each round runs
 * every variant once, the order rotated from round to round, and a variant's records/s is the median of its rounds;
 * the report gives each round's figures and, for each goal, the ratio of the medians and the range of the rounds'
 * ratios. The latency run follows a variant's last round, at half of its median.
 *
 * <p>Usage: {@code EndToEnd RECORDS LATENCY_SECONDS ROUNDS OUTPUT_DIR [VARIANT,...]}; writes {@code endtoend.json}
 * and {@code endtoend.md} there. The launcher runs it after the JMH benchmarks of {@code ./flink-bridge bench}; a
 * list of variants runs only those (the ratios between variants not run are left out).
 */
public final class EndToEnd {

    /**
     * in-process, then the Java worker over shm with failover (no journal) and with recovery in place (its
     * journal: what journaling costs, side by side), and over gRPC, then the Rust worker's own step over shm, the
     * Python worker over each transport, then the same step as a Python segment in the Python worker and hosted by
     * the Rust worker, over shm.
     */
    private static final List<String> VARIANTS = List.of("in-process", "failover-shm", "shm", "grpc", "rust-shm",
            "python-shm", "python-grpc", "python-segment-shm", "rust-python-segment-shm", "dead-letter-shm",
            "dead-letter-1pct-shm");
    /** In the dead-letter-1pct variant, one event in this many is not JSON, so append_field fails on it. */
    private static final int POISON_EVERY = 100;

    /** The goals set on one variant's records/s over another's, in the order the report gives them. */
    private static final List<Goal> GOALS = List.of(
            new Goal("shm", "failover-shm", "Journaling for recovery in place: shm with its journal runs at %s of"
                    + " failover-shm's records/s, the same job with no journal (goal: at least 90%%)%s.", true),
            new Goal("dead-letter-shm", "shm", "Dead letters: append_field with on_error: dead_letter runs at %s of"
                    + " shm's records/s with no failing record (goal: at least 95%%)%s", true),
            new Goal("dead-letter-1pct-shm", "shm", "Dead letters: with one event in " + POISON_EVERY + " not JSON,"
                    + " each a dead letter, at %s of shm's records/s (goal: at least 85%%)%s", true),
            new Goal("rust-python-segment-shm", "python-segment-shm", "The same JSON step as a Python segment"
                    + " (bench_json.AppendField): hosted by the Rust worker it runs at %s times its records/s in the"
                    + " Python worker (goal: at least 1.5)%s.", false));

    /** Events of the Python ceiling's plain loop (held in memory, so not the whole run's count). */
    private static final int PYTHON_CEILING_RECORDS = 300_000;
    private static final long CHECKPOINT_INTERVAL_MS = 500;
    private static final long WARMUP_SECONDS = 2;

    private EndToEnd() {}

    public static void main(String[] args) throws Exception {
        List<String> variants = Arguments.namesAfter(args, 4, "EndToEnd RECORDS LATENCY_SECONDS ROUNDS OUTPUT_DIR"
                + " [VARIANT,...]", "variants", VARIANTS);
        long records = Long.parseLong(args[0]);
        long latencySeconds = Long.parseLong(args[1]);
        int rounds = Integer.parseInt(args[2]);
        Path out = Path.of(args[3]);
        List<List<String>> orders = Rounds.orders(variants, rounds);
        // Both in the variants' order, whatever order a round runs them in.
        Map<String, List<Double>> byRound = new LinkedHashMap<>();
        Map<String, Map<String, Object>> results = new LinkedHashMap<>();
        for (String variant : variants) {
            byRound.put(variant, new ArrayList<>());
            results.put(variant, new LinkedHashMap<>());
        }
        Path gcLogs = Files.createTempDirectory("flink-bridge-bench-worker-gc-");
        try (BenchCluster cluster = new BenchCluster();
             WarmWorkers warm = new WarmWorkers(rounds > 1 ? workerCommands(variants, gcLogs) : List.of())) {
            // Unmeasured runs first: whichever variant ran first would otherwise run in a cold JVM (measured: the
            // same variant at 57% of its warm figure). A single run warms the JVM with a quarter of its first
            // variant; rounds warm each variant's kept worker too, with a quarter of every variant.
            for (String variant : rounds > 1 ? variants : List.of(variants.getFirst())) {
                run(cluster, variant, records / 4, 0, 0, CHECKPOINT_INTERVAL_MS, gcLogs);
            }
            for (int round = 0; round < rounds; round++) {
                for (String variant : orders.get(round)) {
                    Measured throughput = run(cluster, variant, records, 0, 0, CHECKPOINT_INTERVAL_MS, gcLogs);
                    byRound.get(variant).add(throughput.latencies().recordsPerSecond());
                    if (rounds > 1) {
                        System.err.printf(Locale.ROOT, "flink-bridge bench: round %d of %d, %s: %,.0f records/s%n",
                                round + 1, rounds, variant, throughput.latencies().recordsPerSecond());
                    }
                    // The latency run once per variant, at half of its median: after its last round, so that a
                    // single run keeps its order (each variant's throughput run, then its latency run).
                    if (round == rounds - 1) {
                        results.get(variant).putAll(variantResult(cluster, variant,
                                Rounds.median(byRound.get(variant)), throughput, latencySeconds, gcLogs));
                    }
                }
            }
        } finally {
            try (Stream<Path> logs = Files.list(gcLogs)) {
                for (Path log : logs.toList()) {
                    Files.delete(log);
                }
            }
            Files.delete(gcLogs);
        }
        if (rounds > 1) {
            addRounds(results, byRound, orders);
        }
        // The Python ceiling is set beside python-shm only: a run without it has nothing to compare it with.
        Optional<Double> pythonCeiling = Optional.empty();
        if (results.containsKey("python-shm")) {
            pythonCeiling = Optional.of(pythonCeiling());
            results.get("python-shm").put("python_loop_records_per_second", pythonCeiling.get());
            System.err.printf(Locale.ROOT, "flink-bridge bench: the same step in a plain Python loop: %,.0f records/s%n",
                    pythonCeiling.get());
        }
        new ObjectMapper().writerWithDefaultPrettyPrinter().writeValue(out.resolve("endtoend.json").toFile(), results);
        Files.writeString(out.resolve("endtoend.md"), table(records, latencySeconds, orders, byRound, results,
                pythonCeiling));
    }

    /**
     * The variant's figures: {@code peak} records/s and the checkpoints of its {@code throughput} run, then the
     * latency of a run at half of that rate, with the GC pauses and run-queue waits behind its slow records.
     */
    private static Map<String, Object> variantResult(BenchCluster cluster, String variant, double peak,
                                                     Measured throughput, long latencySeconds, Path gcLogs)
            throws Exception {
        long halfRate = Math.max(1, (long) (peak / 2));
        Measured latencyRun = run(cluster, variant, halfRate * (WARMUP_SECONDS + latencySeconds), halfRate,
                halfRate * WARMUP_SECONDS, 0, gcLogs);
        Latencies.Run latency = latencyRun.latencies();
        StatsSummarySnapshot checkpoints = throughput.checkpoints().getSummaryStats().getEndToEndDurationStats();
        List<GcPauses.Pause> flinkPauses = GcPauses.within(latencyRun.flinkPauses(), latency);
        List<GcPauses.Pause> workerPauses = GcPauses.within(latencyRun.workerPauses(), latency);
        List<GcPauses.Pause> allPauses = new ArrayList<>(flinkPauses);
        allPauses.addAll(workerPauses);
        Map<String, Object> result = new LinkedHashMap<>();
        result.put("records_per_second", peak);
        result.put("checkpoints", checkpoints.getCount());
        result.put("checkpoint_p50_ms", checkpoints.getQuantile(0.5));
        result.put("checkpoint_max_ms", checkpoints.getMaximum());
        result.put("latency_rate", halfRate);
        result.put("latency_p50_us", latency.percentileMicros(50));
        result.put("latency_p99_us", latency.percentileMicros(99));
        result.put("latency_p999_us", latency.percentileMicros(99.9));
        result.put("measured_records", latency.sortedLatencies().length);
        result.put("records_over_goal", latency.slow().size());
        result.put("flink_gc_pauses", flinkPauses.size());
        result.put("flink_gc_pause_ms", flinkPauses.stream().mapToLong(GcPauses.Pause::millis).sum());
        result.put("worker_gc_pauses", workerPauses.size());
        result.put("worker_gc_pause_ms", workerPauses.stream().mapToLong(GcPauses.Pause::millis).sum());
        result.put("over_goal_near_gc_share", GcPauses.slowShareNear(latency.slow(), allPauses));
        result.put("time_near_gc_share", GcPauses.timeShareNear(allPauses, latency));
        result.put("flink_run_queue_ms_per_s", latencyRun.flinkRunQueueMillisPerSecond());
        result.put("worker_run_queue_ms_per_s", latencyRun.workerRunQueueMillisPerSecond());
        System.err.printf(Locale.ROOT, "flink-bridge bench: end to end %s: %,.0f records/s, %d checkpoints"
                        + " (p50 %.0f ms, max %d ms); at %,d/s p50 %.0f µs, p99 %.0f µs, p99.9 %.0f µs;"
                        + " %.0f%% of the records over 200 µs were near a GC pause (%.0f%% of the time)%n",
                variant, peak, checkpoints.getCount(), checkpoints.getQuantile(0.5), checkpoints.getMaximum(),
                halfRate, latency.percentileMicros(50), latency.percentileMicros(99),
                latency.percentileMicros(99.9), 100 * (double) result.get("over_goal_near_gc_share"),
                100 * (double) result.get("time_near_gc_share"));
        return result;
    }

    /**
     * Each variant's records/s round by round and its place in each round's order, and for each goal between two
     * variants that ran, the ratio round by round, of the medians, and the least and greatest of the rounds'.
     */
    private static void addRounds(Map<String, Map<String, Object>> results, Map<String, List<Double>> byRound,
                                  List<List<String>> orders) {
        byRound.forEach((variant, recordsPerSecond) -> {
            results.get(variant).put("records_per_second_by_round", recordsPerSecond);
            results.get(variant).put("place_by_round", orders.stream().map(order -> order.indexOf(variant) + 1)
                    .toList());
        });
        for (Goal goal : goals(byRound)) {
            Rounds.Ratio ratio = goal.ratio(byRound);
            Map<String, Object> ratios = new LinkedHashMap<>();
            ratios.put("by_round", ratio.byRound());
            ratios.put("of_medians", ratio.ofMedians());
            ratios.put("min", ratio.min());
            ratios.put("max", ratio.max());
            results.get(goal.variant()).put("of_" + goal.baseline(), ratios);
        }
    }

    /** Records/s of the Python worker's append_field step in a plain Python loop: what no bridge can beat. */
    private static double pythonCeiling() throws IOException, InterruptedException {
        ProcessBuilder builder = new ProcessBuilder(BenchWorker.pythonExecutable(),
                BenchWorker.pythonScripts().resolve("python_ceiling.py").toString(),
                Integer.toString(PYTHON_CEILING_RECORDS)).redirectError(ProcessBuilder.Redirect.INHERIT);
        builder.environment().put("PYTHONPATH", BenchWorker.pythonRuntime().toString());
        Process loop = builder.start();
        String printed = new String(loop.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8).trim();
        if (loop.waitFor() != 0) {
            throw new IOException("the Python loop failed (exit " + loop.exitValue() + "): " + printed);
        }
        return Double.parseDouble(printed);
    }

    /** What one run gives: its records' timings, its checkpoints, and the GC pauses of both JVMs. */
    private record Measured(Latencies.Run latencies, CheckpointStatsSnapshot checkpoints,
                            List<GcPauses.Pause> flinkPauses, List<GcPauses.Pause> workerPauses,
                            double flinkRunQueueMillisPerSecond, double workerRunQueueMillisPerSecond) {}

    /**
     * One job: {@code count} events at {@code rate} per second (0: unthrottled) through the variant's step,
     * the latencies of the first {@code warmup} left out, checkpointing every {@code checkpointMillis} (0: never);
     * a Java worker writes its GC log in {@code gcLogs}.
     */
    private static Measured run(BenchCluster cluster, String variant, long count, long rate, long warmup,
                                long checkpointMillis, Path gcLogs) throws Exception {
        ExecutionEnvironment env = ExecutionEnvironment.getInstance();
        if (checkpointMillis > 0) {
            ((ExecutionEnvironmentImpl) env).getCheckpointCfg().setCheckpointInterval(checkpointMillis);
        }
        NonKeyedPartitionStream<BridgeRecord> events = Sources.create(env,
                new GeneratorSourceSpec("events", count, rate, 100, 42)).withParallelism(1);
        NonKeyedPartitionStream<BridgeRecord> stamped = events.process(new Latencies.Stamp()).withParallelism(1);
        boolean poisoned = variant.equals("dead-letter-1pct-shm");
        if (poisoned) {
            stamped = stamped.process(new Poison()).withParallelism(1);
        }
        List<String> workerCommand = workerCommand(variant, gcLogs);
        // The python-segment variants run the same Python segment, and differ only in what hosts it.
        SessionSpec.Step step = variant.contains("python-segment") ? BenchWorker.PYTHON_JSON_STEP
                : variant.startsWith("dead-letter-") ? BenchWorker.APPEND_FIELD_OR_DEAD_LETTER
                : BenchWorker.APPEND_FIELD;
        NonKeyedPartitionStream<BridgeRecord> stepped = variant.equals("in-process")
                ? stamped.process(new InProcessStep(BenchWorker.APPEND_FIELD)).withParallelism(1)
                : BridgeStreams.process(stamped, new BridgeFunction(BenchWorker.sessionSpec("end-to-end", step,
                        variant.endsWith("shm") ? TransportMode.SHM : TransportMode.GRPC_STREAM, workerCommand,
                        // No standby process: its start-up would land in the measurement.
                        variant.startsWith("failover-") ? SessionSpec.Recovery.failover()
                                : SessionSpec.Recovery.defaults().withoutStandby()),
                        false, false, false)).withParallelism(1);
        Latencies.measureAndDiscard(stepped);
        // The poisoned events leave as dead letters, into the side output nothing reads.
        long expected = poisoned ? count - count / POISON_EVERY : count;
        Latencies.start(expected, warmup);
        CheckpointStatsSnapshot checkpoints;
        List<GcPauses.Pause> flinkPauses;
        double[] runQueue;
        try (GcPauses.ThisJvm flinkGc = new GcPauses.ThisJvm(); RunQueueDelay delay = new RunQueueDelay()) {
            checkpoints = cluster.run(env);
            flinkPauses = flinkGc.pauses();
            runQueue = delay.millisPerSecond();
        }
        Latencies.Run run = Latencies.finish();
        if (run.records() != expected) {
            throw new IllegalStateException(variant + ": " + run.records() + " records reached the sink, not "
                    + expected);
        }
        List<GcPauses.Pause> workerPauses = GcPauses.fromLog(gcLog(variant, gcLogs));
        return new Measured(run, checkpoints, flinkPauses, workerPauses, runQueue[0], runQueue[1]);
    }

    /**
     * The command of the variant's worker. A Java worker's names the variant's own GC log, one file for all of its
     * runs (each new process starts it afresh), so each Java variant has a command, and so a spawned process, of
     * its own.
     */
    private static List<String> workerCommand(String variant, Path gcLogs) {
        return variant.startsWith("python-") ? BenchWorker.pythonCommand(false)
                : variant.equals("rust-shm") ? BenchWorker.rustCommand()
                : variant.startsWith("rust-") ? BenchWorker.rustHostingPythonCommand()
                : BenchWorker.command(List.of(GcPauses.workerLogOption(gcLog(variant, gcLogs))), List.of());
    }

    private static Path gcLog(String variant, Path gcLogs) {
        return gcLogs.resolve(variant + ".log");
    }

    /** The worker commands of the variants that have a worker (all but in-process). */
    private static List<List<String>> workerCommands(List<String> variants, Path gcLogs) {
        return variants.stream().filter(variant -> !variant.equals("in-process"))
                .map(variant -> workerCommand(variant, gcLogs)).toList();
    }

    /**
     * With rounds, each variant's worker process, held from before the warm-up to the end of the last round, so that
     * every run of the variant finds it warm: a new Java worker spends the start of every run compiling its hot
     * code on the same 2 shared cores, a cost that would be a larger and noisier share of a short round than the
     * difference the rounds measure, and no part of what a long-running job pays; with warm workers, rounds of
     * 1,000,000 records suffice, and more of them fit. One process per Java variant, not one for all, so that its
     * compiled code is that of a worker serving that job alone. A single run keeps a new process per run, as the
     * runs cited before rounds had.
     */
    private static final class WarmWorkers implements AutoCloseable {
        private final List<SpawnedWorker> held = new ArrayList<>();

        WarmWorkers(List<List<String>> commands) throws IOException {
            try {
                for (List<String> command : commands) {
                    SpawnedWorker worker = SpawnedWorker.acquire(command, BridgeSettings.DEFAULT_WORKER_TIMEOUT_MS,
                            false);
                    held.add(worker);
                    System.err.printf(Locale.ROOT, "flink-bridge bench: worker process %d kept warm for the rounds:"
                            + " %s%n", worker.pid(), String.join(" ", command));
                }
            } catch (IOException | RuntimeException e) {
                close();
                throw e;
            }
        }

        @Override
        public void close() {
            held.forEach(SpawnedWorker::release);
        }
    }

    private static String table(long records, long latencySeconds, List<List<String>> orders,
                                Map<String, List<Double>> byRound, Map<String, Map<String, Object>> results,
                                Optional<Double> pythonCeiling) {
        int rounds = orders.size();
        String warmUpAndRounds = rounds == 1
                ? "(after a quarter of a run of the first variant, not measured, to warm the JVM):\n"
                : String.format(Locale.ROOT, "(after a quarter of a run of each variant, not measured, to warm the JVM"
                        + " and each variant's worker process, kept\nthrough the rounds): %d rounds, each running every"
                        + " variant once, the order rotated from round to round, of\n", rounds);
        String medians = rounds == 1 ? "" : " Records/s is the median of the variant's rounds; the checkpoints are"
                + "\nthose of its last round, which its latency run follows.";
        StringBuilder out = new StringBuilder("""

                ## End to end

                Generated JSON events -> append_field -> a discarding sink, parallelism 1, on an embedded MiniCluster
                %s%,d records as fast as they go with a checkpoint every %d ms (records/s; checkpoint end-to-end
                duration under that load, from Flink's checkpoint statistics), then %d s at half of that rate, after
                %d s of warm-up, for the latency from before the step to after it (the bridge's round trip and
                pipelining included; for in-process, the step alone).%s

                | variant | records/s | of in-process | checkpoints | checkpoint p50 ms | checkpoint max ms | latency rate/s | p50 µs | p99 µs | p99.9 µs |
                | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
                """.formatted(warmUpAndRounds, records, CHECKPOINT_INTERVAL_MS, latencySeconds, WARMUP_SECONDS,
                medians));
        results.forEach((variant, result) -> out.append(String.format(Locale.ROOT,
                "| %s | %,.0f | %s | %d | %.0f | %d | %,d | %.0f | %.0f | %.0f |%n", variant,
                result.get("records_per_second"), ratio(results, variant, "in-process")
                        .map(r -> String.format(Locale.ROOT, "%.0f%%", 100 * r)).orElse("-"),
                result.get("checkpoints"), result.get("checkpoint_p50_ms"), result.get("checkpoint_max_ms"),
                result.get("latency_rate"), result.get("latency_p50_us"), result.get("latency_p99_us"),
                result.get("latency_p999_us"))));
        List<Goal> goals = goals(byRound);
        if (rounds > 1) {
            out.append(roundsTable(orders, byRound, goals));
        }
        for (Goal goal : goals) {
            Rounds.Ratio ratio = goal.ratio(byRound);
            String spread = rounds == 1 ? "" : String.format(Locale.ROOT, "; the ratio of the medians of %d rounds,"
                    + " each round's from %s to %s", rounds, goal.format(ratio.min()), goal.format(ratio.max()));
            out.append(String.format(Locale.ROOT, "%n" + goal.sentence() + "%n", goal.format(ratio.ofMedians()),
                    spread));
        }
        pythonCeiling.ifPresent(ceiling -> out.append(String.format(Locale.ROOT, "%nThe same append_field step in a"
                        + " plain Python loop (the Python worker's built-in step, no Flink, no transport): %,.0f"
                        + " records/s; python-shm reaches %.0f%% of it.%n", ceiling,
                100 * (double) results.get("python-shm").get("records_per_second") / ceiling)));
        out.append(String.format(Locale.ROOT, "%nWhere the records slower than 200 µs come from, in the latency runs: those in flight"
                + " during a garbage-collection pause of Flink's JVM or the worker's, or within %d ms after one."
                + " Beside them, how long the threads of each process waited for a CPU while runnable (Linux schedstat),"
                + " in ms per second of the run.%n%n"
                + "| variant | records over 200 µs | Flink GC pauses (ms) | worker GC pauses (ms) | of those records, near a pause"
                + " | of the time, near a pause | Flink run-queue wait ms/s | worker run-queue wait ms/s |%n"
                + "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |%n", GcPauses.AFTERMATH_MILLIS));
        results.forEach((variant, result) -> out.append(String.format(Locale.ROOT,
                "| %s | %,d of %,d | %d (%d) | %d (%d) | %.0f%% | %.0f%% | %.0f | %.0f |%n", variant,
                result.get("records_over_goal"), result.get("measured_records"), result.get("flink_gc_pauses"),
                result.get("flink_gc_pause_ms"), result.get("worker_gc_pauses"), result.get("worker_gc_pause_ms"),
                100 * (double) result.get("over_goal_near_gc_share"), 100 * (double) result.get("time_near_gc_share"),
                result.get("flink_run_queue_ms_per_s"), result.get("worker_run_queue_ms_per_s"))));
        return out.toString();
    }

    /**
     * Each round's records/s in the order it ran the variants and the ratio of each goal, then the medians (for a
     * goal, the ratio of the medians) and the least and greatest of the rounds.
     */
    private static String roundsTable(List<List<String>> orders, Map<String, List<Double>> byRound, List<Goal> goals) {
        List<String> header = new ArrayList<>(List.of("round", "order"));
        header.addAll(byRound.keySet());
        goals.forEach(goal -> header.add(goal.variant() + " / " + goal.baseline()));
        List<Rounds.Ratio> ratios = goals.stream().map(goal -> goal.ratio(byRound)).toList();
        StringBuilder out = new StringBuilder(String.format(Locale.ROOT, "%nEach round's records/s, in the order the"
                + " round ran the variants, and the ratios the goals below compare:%n%n"));
        out.append(Report.row(header));
        out.append(Report.row(header.stream().map(column -> column.equals("order") ? "---" : "---:").toList()));
        for (int round = 0; round < orders.size(); round++) {
            List<String> cells = new ArrayList<>(List.of(Integer.toString(round + 1),
                    String.join(", ", orders.get(round))));
            for (List<Double> recordsPerSecond : byRound.values()) {
                cells.add(String.format(Locale.ROOT, "%,.0f", recordsPerSecond.get(round)));
            }
            for (int goal = 0; goal < goals.size(); goal++) {
                cells.add(goals.get(goal).format(ratios.get(goal).byRound().get(round)));
            }
            out.append(Report.row(cells));
        }
        List<String> medians = new ArrayList<>(List.of("median", "(goals: ratio of the medians)"));
        List<String> spreads = new ArrayList<>(List.of("min-max", ""));
        for (List<Double> recordsPerSecond : byRound.values()) {
            medians.add(String.format(Locale.ROOT, "%,.0f", Rounds.median(recordsPerSecond)));
            spreads.add(String.format(Locale.ROOT, "%,.0f-%,.0f", Collections.min(recordsPerSecond),
                    Collections.max(recordsPerSecond)));
        }
        for (int goal = 0; goal < goals.size(); goal++) {
            medians.add(goals.get(goal).format(ratios.get(goal).ofMedians()));
            spreads.add(goals.get(goal).format(ratios.get(goal).min()) + "-"
                    + goals.get(goal).format(ratios.get(goal).max()));
        }
        out.append(Report.row(medians)).append(Report.row(spreads));
        return out.toString();
    }

    /**
     * A goal on one variant's records/s over another's: the report's sentence for it (its first {@code %s} the
     * ratio, its second what the rounds add) and whether the ratio reads as a percentage or as a factor.
     */
    private record Goal(String variant, String baseline, String sentence, boolean percentage) {
        /** The variant's records/s over the baseline's, from their rounds. */
        Rounds.Ratio ratio(Map<String, List<Double>> byRound) {
            return Rounds.ratio(byRound.get(variant), byRound.get(baseline));
        }

        String format(double ratio) {
            return percentage ? String.format(Locale.ROOT, "%.0f%%", 100 * ratio)
                    : String.format(Locale.ROOT, "%.2f", ratio);
        }
    }

    /** The goals both of whose variants ran. */
    private static List<Goal> goals(Map<String, List<Double>> byRound) {
        return GOALS.stream().filter(goal -> byRound.containsKey(goal.variant())
                && byRound.containsKey(goal.baseline())).toList();
    }

    /** Records/s of {@code variant} over those of {@code baseline}, when both ran. */
    private static Optional<Double> ratio(Map<String, Map<String, Object>> results, String variant, String baseline) {
        if (!results.containsKey(variant) || !results.containsKey(baseline)) {
            return Optional.empty();
        }
        return Optional.of((double) results.get(variant).get("records_per_second")
                / (double) results.get(baseline).get("records_per_second"));
    }

    /** Replaces the payload of every {@value #POISON_EVERY}th event with text that is not JSON. */
    private static final class Poison implements OneInputStreamProcessFunction<BridgeRecord, BridgeRecord> {
        private static final byte[] NOT_JSON = "not json".getBytes(java.nio.charset.StandardCharsets.UTF_8);
        private long seen;

        @Override
        public void processRecord(BridgeRecord record, Collector<BridgeRecord> output,
                                  PartitionedContext<BridgeRecord> ctx) {
            if (++seen % POISON_EVERY == 0) {
                record.payload = NOT_JSON;
            }
            output.collect(record);
        }
    }

    /** The step run inside the Flink task, through the worker SDK: the baseline with no bridge. */
    private static final class InProcessStep implements OneInputStreamProcessFunction<BridgeRecord, BridgeRecord> {
        private final SessionSpec.Step step;
        private transient org.flinkbridge.worker.sdk.Step segment;
        private transient List<org.flinkbridge.worker.sdk.Record> outputs;

        InProcessStep(SessionSpec.Step step) {
            this.step = step;
        }

        @Override
        public void open(org.apache.flink.datastream.api.context.NonPartitionedContext<BridgeRecord> ctx)
                throws Exception {
            segment = SegmentInstances.create(List.of(step.toProto()), "in-process baseline", new SessionClock());
            outputs = new ArrayList<>();
        }

        @Override
        public void processRecord(BridgeRecord record, Collector<BridgeRecord> output,
                                  PartitionedContext<BridgeRecord> ctx) throws Exception {
            outputs.clear();
            segment.process(new org.flinkbridge.worker.sdk.Record(record.payload, record.headers, record.timestamp),
                    outputs::add);
            for (org.flinkbridge.worker.sdk.Record out : outputs) {
                output.collectAndOverwriteTimestamp(new BridgeRecord(out.payload(), new java.util.HashMap<>(out.headers()),
                        out.timestamp()), out.timestamp());
            }
        }
    }
}
