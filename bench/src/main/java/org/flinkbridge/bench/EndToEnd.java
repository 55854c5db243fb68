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
import org.flinkbridge.job.io.Sources;
import org.flinkbridge.pipeline.GeneratorSourceSpec;
import org.flinkbridge.pipeline.TransportMode;
import org.flinkbridge.records.BridgeRecord;
import org.flinkbridge.worker.SegmentInstances;
import org.flinkbridge.worker.SessionClock;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

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
 * <p>Usage: {@code EndToEnd RECORDS LATENCY_SECONDS OUTPUT_DIR [VARIANT,...]}; writes {@code endtoend.json} and
 * {@code endtoend.md} there. The launcher runs it after the JMH benchmarks of {@code ./flink-bridge bench}; a list
 * of variants runs only those (the ratios between variants not run are left out).
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

    /** Events of the Python ceiling's plain loop (held in memory, so not the whole run's count). */
    private static final int PYTHON_CEILING_RECORDS = 300_000;
    private static final long CHECKPOINT_INTERVAL_MS = 500;
    private static final long WARMUP_SECONDS = 2;

    private EndToEnd() {}

    public static void main(String[] args) throws Exception {
        List<String> variants = Arguments.namesAfter(args, 3, "EndToEnd RECORDS LATENCY_SECONDS OUTPUT_DIR"
                + " [VARIANT,...]", "variants", VARIANTS);
        long records = Long.parseLong(args[0]);
        long latencySeconds = Long.parseLong(args[1]);
        Path out = Path.of(args[2]);
        Map<String, Map<String, Object>> results = new LinkedHashMap<>();
        try (BenchCluster cluster = new BenchCluster()) {
            // A run of the first variant first, not measured: whichever runs first would otherwise run in a cold
            // JVM (measured: the same variant at 57% of its warm figure).
            run(cluster, variants.getFirst(), records / 4, 0, 0, CHECKPOINT_INTERVAL_MS);
            for (String variant : variants) {
                Measured throughput = run(cluster, variant, records, 0, 0, CHECKPOINT_INTERVAL_MS);
                double peak = throughput.latencies().recordsPerSecond();
                long halfRate = Math.max(1, (long) (peak / 2));
                Measured latencyRun = run(cluster, variant, halfRate * (WARMUP_SECONDS + latencySeconds), halfRate,
                        halfRate * WARMUP_SECONDS, 0);
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
                results.put(variant, result);
                System.err.printf(Locale.ROOT, "flink-bridge bench: end to end %s: %,.0f records/s, %d checkpoints"
                                + " (p50 %.0f ms, max %d ms); at %,d/s p50 %.0f µs, p99 %.0f µs, p99.9 %.0f µs;"
                                + " %.0f%% of the records over 200 µs were near a GC pause (%.0f%% of the time)%n",
                        variant, peak, checkpoints.getCount(), checkpoints.getQuantile(0.5), checkpoints.getMaximum(),
                        halfRate, latency.percentileMicros(50), latency.percentileMicros(99),
                        latency.percentileMicros(99.9), 100 * (double) result.get("over_goal_near_gc_share"),
                        100 * (double) result.get("time_near_gc_share"));
            }
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
        Files.writeString(out.resolve("endtoend.md"), table(records, latencySeconds, results, pythonCeiling));
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
     * the latencies of the first {@code warmup} left out, checkpointing every {@code checkpointMillis} (0: never).
     */
    private static Measured run(BenchCluster cluster, String variant, long count, long rate, long warmup,
                                long checkpointMillis) throws Exception {
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
        Path workerGcLog = Files.createTempFile("flink-bridge-bench-worker-gc-", ".log");
        List<String> workerCommand = variant.startsWith("python-") ? BenchWorker.pythonCommand(false)
                : variant.equals("rust-shm") ? BenchWorker.rustCommand()
                : variant.startsWith("rust-") ? BenchWorker.rustHostingPythonCommand()
                : BenchWorker.command(List.of(GcPauses.workerLogOption(workerGcLog)), List.of());
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
        List<GcPauses.Pause> workerPauses = GcPauses.fromLog(workerGcLog);
        Files.deleteIfExists(workerGcLog);
        return new Measured(run, checkpoints, flinkPauses, workerPauses, runQueue[0], runQueue[1]);
    }

    private static String table(long records, long latencySeconds, Map<String, Map<String, Object>> results,
                                Optional<Double> pythonCeiling) {
        StringBuilder out = new StringBuilder("""

                ## End to end

                Generated JSON events -> append_field -> a discarding sink, parallelism 1, on an embedded MiniCluster
                (after a quarter of a run of the first variant, not measured, to warm the JVM):
                %,d records as fast as they go with a checkpoint every %d ms (records/s; checkpoint end-to-end
                duration under that load, from Flink's checkpoint statistics), then %d s at half of that rate, after
                %d s of warm-up, for the latency from before the step to after it (the bridge's round trip and
                pipelining included; for in-process, the step alone).

                | variant | records/s | of in-process | checkpoints | checkpoint p50 ms | checkpoint max ms | latency rate/s | p50 µs | p99 µs | p99.9 µs |
                | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
                """.formatted(records, CHECKPOINT_INTERVAL_MS, latencySeconds, WARMUP_SECONDS));
        results.forEach((variant, result) -> out.append(String.format(Locale.ROOT,
                "| %s | %,.0f | %s | %d | %.0f | %d | %,d | %.0f | %.0f | %.0f |%n", variant,
                result.get("records_per_second"), ratio(results, variant, "in-process")
                        .map(r -> String.format(Locale.ROOT, "%.0f%%", 100 * r)).orElse("-"),
                result.get("checkpoints"), result.get("checkpoint_p50_ms"), result.get("checkpoint_max_ms"),
                result.get("latency_rate"), result.get("latency_p50_us"), result.get("latency_p99_us"),
                result.get("latency_p999_us"))));
        ratio(results, "shm", "failover-shm").ifPresent(r -> out.append(String.format(Locale.ROOT,
                "%nJournaling for recovery in place: shm with its journal runs at %.0f%% of failover-shm's records/s,"
                        + " the same job with no journal (goal: at least 90%%).%n", 100 * r)));
        ratio(results, "dead-letter-shm", "shm").ifPresent(r -> out.append(String.format(Locale.ROOT,
                "%nDead letters: append_field with on_error: dead_letter runs at %.0f%% of shm's records/s with no"
                        + " failing record (goal: at least 95%%)%n", 100 * r)));
        ratio(results, "dead-letter-1pct-shm", "shm").ifPresent(r -> out.append(String.format(Locale.ROOT,
                "%nDead letters: with one event in %d not JSON, each a dead letter, at %.0f%% of shm's records/s"
                        + " (goal: at least 85%%)%n", POISON_EVERY, 100 * r)));
        pythonCeiling.ifPresent(ceiling -> out.append(String.format(Locale.ROOT, "%nThe same append_field step in a"
                        + " plain Python loop (the Python worker's built-in step, no Flink, no transport): %,.0f"
                        + " records/s; python-shm reaches %.0f%% of it.%n", ceiling,
                100 * (double) results.get("python-shm").get("records_per_second") / ceiling)));
        ratio(results, "rust-python-segment-shm", "python-segment-shm").ifPresent(r -> out.append(String.format(
                Locale.ROOT, "%nThe same JSON step as a Python segment (bench_json.AppendField): hosted by the Rust"
                        + " worker it runs at %.2f times its records/s in the Python worker (goal: at least 1.5).%n",
                r)));
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

    /** Records/s of {@code variant} over those of {@code baseline}, when both ran. */
    private static Optional<Double> ratio(Map<String, Map<String, Object>> results, String variant, String baseline) {
        if (!results.containsKey(variant) || !results.containsKey(baseline)) {
            return Optional.empty();
        }
        return Optional.of((double) results.get(variant).get("records_per_second")
                / (double) results.get(baseline).get("records_per_second"));
    }

    /** The step run inside the Flink task, through the worker SDK: the baseline with no bridge. */
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
