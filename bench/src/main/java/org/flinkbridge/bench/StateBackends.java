package org.flinkbridge.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.common.typeutils.base.array.BytePrimitiveArraySerializer;
import org.apache.flink.api.connector.dsv2.DataStreamV2SinkUtils;
import org.apache.flink.api.connector.dsv2.DataStreamV2SourceUtils;
import org.apache.flink.api.connector.source.util.ratelimit.RateLimiter;
import org.apache.flink.api.connector.source.util.ratelimit.RateLimiterStrategy;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.configuration.CheckpointingOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.ExternalizedCheckpointRetention;
import org.apache.flink.configuration.RestartStrategyOptions;
import org.apache.flink.configuration.StateBackendOptions;
import org.apache.flink.configuration.StateRecoveryOptions;
import org.apache.flink.connector.datagen.source.DataGeneratorSource;
import org.apache.flink.connector.datagen.source.GeneratorFunction;
import org.apache.flink.datastream.api.ExecutionEnvironment;
import org.apache.flink.datastream.api.stream.NonKeyedPartitionStream;
import org.apache.flink.datastream.impl.ExecutionEnvironmentImpl;
import org.apache.flink.datastream.impl.stream.KeyedPartitionStreamImpl;
import org.apache.flink.datastream.impl.stream.NonKeyedPartitionStreamImpl;
import org.apache.flink.datastream.impl.utils.StreamUtils;
import org.apache.flink.runtime.checkpoint.CheckpointStatsSnapshot;
import org.apache.flink.runtime.checkpoint.CheckpointStatsStatus;
import org.apache.flink.runtime.checkpoint.CompletedCheckpointStats;
import org.apache.flink.runtime.client.JobExecutionException;
import org.apache.flink.runtime.state.StateInitializationContext;
import org.apache.flink.runtime.state.StateSnapshotContext;
import org.apache.flink.runtime.state.VoidNamespace;
import org.apache.flink.runtime.state.VoidNamespaceSerializer;
import org.apache.flink.state.forst.ForStOptions;
import org.apache.flink.state.forst.ForStStateBackend;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.apache.flink.streaming.api.graph.StreamConfig;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.api.operators.Output;
import org.apache.flink.streaming.api.transformations.OneInputTransformation;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.runtime.tasks.StreamTask;
import org.apache.flink.util.FileUtils;
import org.flinkbridge.bridge.session.SessionSpec;
import org.flinkbridge.job.io.Sources;
import org.flinkbridge.pipeline.GeneratorSourceSpec;
import org.flinkbridge.pipeline.TransportMode;
import org.flinkbridge.records.BridgeRecord;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.stream.Stream;

/**
 * The state backends' benchmark ({@code ./flink-bridge bench --backends}): Flink's embedded RocksDB and ForSt side
 * by side, on an embedded MiniCluster in this JVM, under the access pattern the bridge makes of a keyed session's
 * cells: on the task thread, through the operator's synchronous keyed backend, a key's 1 KiB value read (as a
 * {@code LOAD} reads a key's cells) and written (as a barrier writes back the worker's changes), with incremental
 * checkpoints into files in a temporary directory and each backend's working files on local disk.
 *
 * <p>Per backend, one job: first the build, every key's value read (none yet) and written once; then rounds in which
 * 1% of the keys change ({@link KeyDraw}), one round per checkpoint: the source holds each round back until the
 * checkpoint taken after the previous one completed, so each checkpoint of the steady phase holds one round. Records/s
 * of each phase count the time from a round's first record to its last, not the waits between rounds. Each record's
 * read is checked against the value the last change of its key wrote. Then a second job restores the last checkpoint,
 * reads a sample of the keys back and checks them: the time from the operator's set-up to its state being ready is
 * the restore. Each backend runs twice, in mirrored order (rocksdb, forst, forst, rocksdb). Last, the bridge's own
 * {@code running_count} (Java worker, shm), a keyed session whose counts are cells, over as many keys (at most
 * {@value #RUNNING_COUNT_KEYS}), on each backend: its records/s, or the error that ends it.
 *
 * <p>Usage: {@code StateBackends KEYS ROUNDS OUTPUT_DIR [BACKEND,...]} (backends: rocksdb, forst; both unless
 * named). Writes {@code backends.json} and {@code backends.md} there.
 */
public final class StateBackends {

    static final int VALUE_BYTES = 1024;
    private static final long CHECKPOINT_INTERVAL_MS = 3_000;
    private static final List<String> BACKENDS = List.of("rocksdb", "forst");
    /** Keys read back after the restore. */
    private static final int RESTORE_SAMPLE = 1_000;
    /** The state-holding operator's id, the same in the job that restores it. */
    private static final String STATE_UID = "state-access";
    /** Keys (and records) of the bridge's running_count, at most: it runs at about 10,000 records/s here. */
    private static final long RUNNING_COUNT_KEYS = 100_000;
    private static final SessionSpec.Step RUNNING_COUNT =
            new SessionSpec.Step("count", "running_count", "{\"key_json_field\":\"key\"}");

    private StateBackends() {}

    public static void main(String[] args) throws Exception {
        List<String> backends = Arguments.namesAfter(args, 3, "StateBackends KEYS ROUNDS OUTPUT_DIR [BACKEND,...]",
                "state backends", BACKENDS);
        KeyDraw draw = new KeyDraw(Long.parseLong(args[0]));
        int rounds = Integer.parseInt(args[1]);
        Path out = Path.of(args[2]);
        // Each backend twice, in mirrored order, so that neither gains from running second in a warmer JVM.
        List<String> order = Stream.concat(backends.stream(), backends.reversed().stream()).toList();
        List<Result> runs = new ArrayList<>();
        Map<String, RunningCount> runningCounts = new LinkedHashMap<>();
        Path checkpoints = Files.createTempDirectory("flink-bridge-backends");
        try (BenchCluster cluster = new BenchCluster()) {
            for (int run = 0; run < order.size(); run++) {
                String backend = order.get(run);
                runs.add(measure(cluster, backend, draw, rounds, checkpoints.resolve(backend + "-" + (run + 1))));
            }
            long countKeys = Math.min(draw.keys(), RUNNING_COUNT_KEYS);
            for (String backend : backends) {
                runningCounts.put(backend, runningCount(cluster, backend, checkpoints.resolve(backend + "-count"),
                        countKeys));
            }
        } finally {
            FileUtils.deleteDirectory(checkpoints.toFile());
        }
        new ObjectMapper().writerWithDefaultPrettyPrinter().writeValue(out.resolve("backends.json").toFile(),
                Map.of("runs", runs, "running_count", runningCounts));
        Files.writeString(out.resolve("backends.md"), table(draw, rounds, backends, runs, runningCounts));
    }

    /** One checkpoint's sizes in bytes (the whole state, and what this checkpoint wrote) and its duration. */
    record Checkpoint(long id, long fullBytes, long incrementalBytes, long durationMillis) {}

    /** The checkpoints of one phase: how many, and percentiles of their sizes and durations (nearest rank). */
    record Phase(int checkpoints, long fullP50, long fullP99, long incrementalP50, long incrementalP99,
                 long durationP50, long durationP99) {
        static Phase of(List<Checkpoint> checkpoints) {
            long[] full = sorted(checkpoints.stream().mapToLong(Checkpoint::fullBytes).toArray());
            long[] incremental = sorted(checkpoints.stream().mapToLong(Checkpoint::incrementalBytes).toArray());
            long[] duration = sorted(checkpoints.stream().mapToLong(Checkpoint::durationMillis).toArray());
            return checkpoints.isEmpty() ? new Phase(0, 0, 0, 0, 0, 0, 0) : new Phase(checkpoints.size(),
                    Latencies.percentile(full, 50), Latencies.percentile(full, 99),
                    Latencies.percentile(incremental, 50), Latencies.percentile(incremental, 99),
                    Latencies.percentile(duration, 50), Latencies.percentile(duration, 99));
        }

        private static long[] sorted(long[] values) {
            Arrays.sort(values);
            return values;
        }
    }

    /**
     * One run of a backend: records/s of the build and the steady phase, their checkpoints (and each checkpoint), the
     * checkpoints that failed up to the steady phase's last, the operator's start on empty state and on the restored
     * last checkpoint (ms from its set-up to its state ready), and the restore job from submission to its end.
     */
    record Result(String backend, double buildRecordsPerSecond, double steadyRecordsPerSecond, Phase build,
                  Phase steady, long failedCheckpoints, List<Checkpoint> checkpoints, List<Long> steadyIncrementalBytes,
                  double emptyStartMillis, double restoreMillis, double restoreJobMillis) {}

    /** The bridge's running_count on a backend: records/s over how many keys, or why it failed. */
    record RunningCount(long keys, Double recordsPerSecond, String failure) {}

    private static Result measure(BenchCluster cluster, String backend, KeyDraw draw, int rounds, Path directory)
            throws Exception {
        ExecutionEnvironment env = environment(backend, directory);
        ((ExecutionEnvironmentImpl) env).getCheckpointCfg().setCheckpointInterval(CHECKPOINT_INTERVAL_MS);
        // Kept when the job is cancelled, for the restore.
        ((ExecutionEnvironmentImpl) env).getConfiguration().set(CheckpointingOptions.EXTERNALIZED_CHECKPOINT_RETENTION,
                ExternalizedCheckpointRetention.RETAIN_ON_CANCELLATION);
        applyChanges(env, new DataGeneratorSource<>(index -> index, draw.records(rounds), new RoundGate(draw, rounds),
                Types.LONG), new StateAccess(draw, rounds, false));
        Progress.start(draw, rounds);
        // Cancelled, not finished, once its last round is in a completed checkpoint: that checkpoint is then kept.
        CheckpointStatsSnapshot stats = cluster.runUntil(env, Progress.persisted(rounds));
        Progress.Finished run = Progress.finish();

        long buildEnd = run.gates()[0];
        long steadyEnd = run.gates()[rounds];
        List<Checkpoint> checkpoints = stats.getHistory().getCheckpoints().stream()
                .filter(CompletedCheckpointStats.class::isInstance).map(CompletedCheckpointStats.class::cast)
                .map(c -> new Checkpoint(c.getCheckpointId(), c.getStateSize(), c.getCheckpointedSize(),
                        c.getEndToEndDuration()))
                .sorted(Comparator.comparingLong(Checkpoint::id)).toList();
        List<Checkpoint> steady = checkpoints.stream().filter(c -> c.id() > buildEnd && c.id() <= steadyEnd).toList();
        // Not those the cancellation aborted.
        long failed = stats.getHistory().getCheckpoints().stream()
                .filter(c -> c.getStatus() == CheckpointStatsStatus.FAILED && c.getCheckpointId() <= steadyEnd).count();
        CompletedCheckpointStats last = stats.getHistory().getLatestCompletedCheckpoint();
        if (last == null || last.getExternalPath() == null) {
            throw new IllegalStateException(backend + ": the job ended without a retained checkpoint to restore");
        }

        long restoreStart = System.nanoTime();
        restore(cluster, backend, directory, draw, rounds, last.getExternalPath());
        double restoreJob = (System.nanoTime() - restoreStart) / 1e6;
        Result result = new Result(backend, run.recordsPerSecond(0, 0), run.recordsPerSecond(1, rounds),
                Phase.of(checkpoints.stream().filter(c -> c.id() <= buildEnd).toList()), Phase.of(steady), failed,
                checkpoints, steady.stream().map(Checkpoint::incrementalBytes).toList(), run.stateReadyMillis(),
                Progress.finish().stateReadyMillis(), restoreJob);
        System.err.printf(Locale.ROOT, "flink-bridge bench: %s: build %,.0f records/s, steady %,.0f records/s, steady"
                        + " checkpoints %d (incremental p50 %s, full p50 %s, duration p50 %d ms), restore %.0f ms%n",
                backend, result.buildRecordsPerSecond(), result.steadyRecordsPerSecond(), result.steady().checkpoints(),
                mib(result.steady().incrementalP50()), mib(result.steady().fullP50()),
                result.steady().durationP50(), result.restoreMillis());
        return result;
    }

    /** An environment on {@code backend}, its checkpoints incremental, in files under {@code directory}. */
    private static ExecutionEnvironment environment(String backend, Path directory) throws Exception {
        ExecutionEnvironment env = ExecutionEnvironment.getInstance();
        Configuration config = ((ExecutionEnvironmentImpl) env).getConfiguration();
        config.set(StateBackendOptions.STATE_BACKEND, backend);
        config.set(CheckpointingOptions.INCREMENTAL_CHECKPOINTS, true);
        config.set(CheckpointingOptions.CHECKPOINT_STORAGE, "filesystem");
        config.set(CheckpointingOptions.CHECKPOINTS_DIRECTORY, directory.toUri().toString());
        // ForSt's files on the TaskManager's local disk, as RocksDB's are (its default shares the checkpoints' place).
        config.set(ForStOptions.PRIMARY_DIRECTORY, ForStStateBackend.LOCAL_DIR_AS_PRIMARY_SHORTCUT);
        // A failure ends the run, naming its cause (with checkpoints on, Flink would restart the job forever).
        config.set(RestartStrategyOptions.RESTART_STRATEGY, "none");
        return env;
    }

    /** The changes of {@code source} through {@code access}, keyed by the key each changes, into a discarding sink. */
    private static void applyChanges(ExecutionEnvironment env, DataGeneratorSource<Long> source, StateAccess access) {
        NonKeyedPartitionStream<Long> changes = env.fromSource(DataStreamV2SourceUtils.wrapSource(source), "changes")
                .withParallelism(1);
        KeyedPartitionStreamImpl<String, Long> keyed =
                (KeyedPartitionStreamImpl<String, Long>) changes.keyBy(new KeyOf(access.draw));
        OneInputTransformation<Long, Long> transformation = StreamUtils.getOneInputKeyedTransformation(
                "state access", keyed, Types.LONG, access, keyed.getKeySelector(), keyed.getKeyType());
        transformation.setUid(STATE_UID);
        transformation.setParallelism(1);
        keyed.getEnvironment().addOperator(transformation);
        new NonKeyedPartitionStreamImpl<>(keyed.getEnvironment(), transformation)
                .toSink(DataStreamV2SinkUtils.wrapSink(new DiscardingSink<Long>())).withParallelism(1);
    }

    /** A job restoring {@code checkpoint} that reads back and checks a sample of the keys. */
    private static void restore(BenchCluster cluster, String backend, Path directory, KeyDraw draw, int rounds,
                                String checkpoint) throws Exception {
        ExecutionEnvironment env = environment(backend, directory);
        Configuration config = ((ExecutionEnvironmentImpl) env).getConfiguration();
        config.set(StateRecoveryOptions.SAVEPOINT_PATH, checkpoint);
        // The first job's source is not in this one.
        config.set(StateRecoveryOptions.SAVEPOINT_IGNORE_UNCLAIMED_STATE, true);
        long sample = Math.min(RESTORE_SAMPLE, draw.keys());
        GeneratorFunction<Long, Long> lastChanges =
                i -> draw.lastChange(i * draw.keys() / sample, rounds);
        applyChanges(env, new DataGeneratorSource<>(lastChanges, sample, Types.LONG),
                new StateAccess(draw, rounds, true));
        Progress.start(draw, 0);
        cluster.run(env);
    }

    /**
     * The bridge's running_count over {@code keys} keys, a record each: records/s at its output, or why it failed
     * (part of the result: whether the bridge's keyed session runs on this backend at all).
     */
    private static RunningCount runningCount(BenchCluster cluster, String backend, Path directory, long keys)
            throws Exception {
        ExecutionEnvironment env = environment(backend, directory);
        ((ExecutionEnvironmentImpl) env).getCheckpointCfg().setCheckpointInterval(CHECKPOINT_INTERVAL_MS);
        NonKeyedPartitionStream<BridgeRecord> events = Sources.create(env,
                new GeneratorSourceSpec("events", keys, 0, (int) keys, 42)).withParallelism(1);
        SessionSpec spec = BenchWorker.sessionSpec("running-count", RUNNING_COUNT, TransportMode.SHM,
                BenchWorker.command(List.of()), SessionSpec.Recovery.failover());
        BenchCluster.keyedSegment(events, spec).process(new Tally(null, true)).withParallelism(1)
                .toSink(DataStreamV2SinkUtils.wrapSink(new DiscardingSink<BridgeRecord>())).withParallelism(1);
        Tally.reset();
        try {
            cluster.run(env);
        } catch (JobExecutionException e) {
            System.err.println("flink-bridge bench: the bridge's running_count on " + backend + " failed:");
            e.printStackTrace();
            System.err.println("flink-bridge bench: running_count on " + backend + " failed: " + rootCause(e));
            return new RunningCount(keys, null, rootCause(e));
        }
        Tally.Counts counts = Tally.counts();
        if (counts.records() != keys) {
            throw new IllegalStateException("running_count on " + backend + ": " + counts.records() + " of " + keys
                    + " records came out");
        }
        double rate = keys * 1e9 / counts.spanNanos();
        System.err.printf(Locale.ROOT, "flink-bridge bench: running_count on %s: %,.0f records/s%n", backend, rate);
        return new RunningCount(keys, rate, null);
    }

    private static String rootCause(Throwable failure) {
        Throwable cause = failure;
        while (cause.getCause() != null) {
            cause = cause.getCause();
        }
        return cause.toString();
    }

    /**
     * The value the change of {@code key} in {@code round} writes: the round, the key, then bytes that depend on both
     * and compress little.
     */
    static byte[] value(long key, int round) {
        byte[] value = new byte[VALUE_BYTES];
        new SplittableRandom(key * 1_000_003 + round).nextBytes(value);
        ByteBuffer.wrap(value).putLong(round).putLong(key);
        return value;
    }

    /**
     * Fails unless {@code stored} is a value the change of {@code key} in {@code round} wrote, by its round and key
     * ({@code round} -1: no value yet).
     */
    static void check(byte[] stored, long key, int round) {
        boolean expected = round < 0 ? stored == null : stored != null && stored.length == VALUE_BYTES
                && ByteBuffer.wrap(stored).getLong(0) == round && ByteBuffer.wrap(stored).getLong(8) == key;
        if (expected) {
            return;
        }
        String found = stored == null ? "no value" : stored.length != VALUE_BYTES ? stored.length + " bytes"
                : "the value of round " + ByteBuffer.wrap(stored).getLong(0) + " and key "
                        + ByteBuffer.wrap(stored).getLong(8);
        throw new IllegalStateException("key " + key + ": read " + found + " where " + (round < 0 ? "none was"
                : "round " + round + " wrote its value") + " (the state backend lost or mixed up a write)");
    }

    private static String mib(long bytes) {
        return String.format(Locale.ROOT, "%.1f MiB", bytes / 1048576.0);
    }

    private static String table(KeyDraw draw, int rounds, List<String> backends, List<Result> runs,
                                Map<String, RunningCount> runningCounts) {
        StringBuilder out = new StringBuilder(String.format(Locale.ROOT, """

                ## State backends: RocksDB and ForSt

                %,d keys with a %,d B value each, on an embedded MiniCluster (parallelism 1, the MiniCluster's managed
                memory for the backend), each record reading and writing its key's value on the task thread through the
                operator's synchronous keyed backend, as the bridge reads a key's cells to load it into the worker and
                writes the worker's changes back at a barrier. Build: every key once. Steady: %d rounds of %,d keys
                (1%%), one round per checkpoint (the source holds each round back until the checkpoint after the
                previous one completed). A checkpoint every %,d ms, incremental, into files in a local temporary
                directory; each backend's working files on local disk (ForSt: state.backend.forst.primary-dir:
                local-dir). Each backend runs twice, in the order %s. Records/s of a phase: from its rounds' first
                record to their last, without the waits between rounds. Checkpoints: Flink's own statistics (full: the
                whole state; incremental: what the checkpoint wrote), the build's up to the first after its last record,
                the steady phase's from there to the one holding the last round (p99 of a few checkpoints is their
                largest). Restore: a second job restores the last checkpoint and reads %,d keys back, each checked; the
                operator's start from its set-up to its state ready, on empty state (the first job) and on the restored
                checkpoint, and the restore job from submission to its end.

                | run | backend | build records/s | steady records/s | start on empty state ms | restore ms | restore job ms | steady checkpoints' incremental sizes |
                | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |
                """, draw.keys(), VALUE_BYTES, rounds, draw.perRound(), CHECKPOINT_INTERVAL_MS,
                String.join(", ", runs.stream().map(Result::backend).toList()), Math.min(RESTORE_SAMPLE, draw.keys())));
        for (int run = 0; run < runs.size(); run++) {
            Result r = runs.get(run);
            out.append(String.format(Locale.ROOT, "| %d | %s | %,.0f | %,.0f | %,.0f | %,.0f | %,.0f | %s |%n", run + 1,
                    r.backend(), r.buildRecordsPerSecond(), r.steadyRecordsPerSecond(), r.emptyStartMillis(),
                    r.restoreMillis(), r.restoreJobMillis(),
                    String.join(", ", r.steadyIncrementalBytes().stream().map(StateBackends::mib).toList())));
        }
        out.append("""

                | run | backend | phase | checkpoints | failed | full p50 | full p99 | incremental p50 | incremental p99 | duration p50 ms | duration p99 ms |
                | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
                """);
        for (int run = 0; run < runs.size(); run++) {
            Result r = runs.get(run);
            for (Map.Entry<String, Phase> phase : List.of(Map.entry("build", r.build()),
                    Map.entry("steady", r.steady()))) {
                Phase p = phase.getValue();
                out.append(String.format(Locale.ROOT, "| %d | %s | %s | %d | %s | %s | %s | %s | %s | %d | %d |%n",
                        run + 1, r.backend(), phase.getKey(), p.checkpoints(),
                        phase.getKey().equals("build") ? "-" : String.valueOf(r.failedCheckpoints()), mib(p.fullP50()),
                        mib(p.fullP99()), mib(p.incrementalP50()), mib(p.incrementalP99()), p.durationP50(),
                        p.durationP99()));
            }
        }
        out.append("""

                Means of each backend's runs, and ForSt against RocksDB:

                | backend | build records/s | steady records/s | steady checkpoint duration p50 ms | restore ms |
                | --- | ---: | ---: | ---: | ---: |
                """);
        Map<String, double[]> means = new LinkedHashMap<>();
        for (String backend : backends) {
            List<Result> of = runs.stream().filter(r -> r.backend().equals(backend)).toList();
            double[] mean = {
                    of.stream().mapToDouble(Result::buildRecordsPerSecond).average().orElse(Double.NaN),
                    of.stream().mapToDouble(Result::steadyRecordsPerSecond).average().orElse(Double.NaN),
                    of.stream().mapToDouble(r -> r.steady().durationP50()).average().orElse(Double.NaN),
                    of.stream().mapToDouble(Result::restoreMillis).average().orElse(Double.NaN)};
            means.put(backend, mean);
            out.append(String.format(Locale.ROOT, "| %s | %,.0f | %,.0f | %,.0f | %,.0f |%n", backend, mean[0],
                    mean[1], mean[2], mean[3]));
        }
        if (means.containsKey("rocksdb") && means.containsKey("forst")) {
            double[] rocksdb = means.get("rocksdb");
            double[] forst = means.get("forst");
            out.append(String.format(Locale.ROOT, "| forst / rocksdb | %.2f | %.2f | %.2f | %.2f |%n",
                    forst[0] / rocksdb[0], forst[1] / rocksdb[1], forst[2] / rocksdb[2], forst[3] / rocksdb[3]));
        }
        out.append("""

                The bridge's own running_count (Java worker, shm, its counts in cells, so in the backend), checkpointing
                as above, one record for each key:

                | backend | keys | records/s |
                | --- | ---: | --- |
                """);
        runningCounts.forEach((backend, count) -> out.append(String.format(Locale.ROOT, "| %s | %,d | %s |%n",
                backend, count.keys(), count.recordsPerSecond() != null
                        ? String.format(Locale.ROOT, "%,.0f", count.recordsPerSecond())
                        : "fails: " + count.failure().replace("|", "\\|"))));
        return out.toString();
    }

    /** The key a change is to, as the bridge's keys are: a string. */
    private record KeyOf(KeyDraw draw) implements KeySelector<Long, String> {
        @Override
        public String getKey(Long index) {
            return "key-" + draw.key(index);
        }
    }

    /**
     * Holds each round after the build back until the checkpoint taken after the previous round completed, and the end
     * of input for good: the benchmark cancels the job. Flink asks it before each record (call N before record N) and
     * once more before the end of input; the task thread is not blocked meanwhile.
     */
    private record RoundGate(KeyDraw draw, int rounds) implements RateLimiterStrategy {
        @Override
        public RateLimiter createRateLimiter(int parallelism) {
            long end = draw.records(rounds);
            return new RateLimiter() {
                private long calls;

                @Override
                public CompletionStage<Void> acquire(int permits) {
                    long next = calls++;
                    if (next == end) {
                        return new CompletableFuture<>();
                    }
                    int round = draw.round(next);
                    if (round == 0 || next != draw.firstRecord(round)) {
                        return CompletableFuture.completedFuture(null);
                    }
                    // Run the source's continuation on another thread than the operator's, which completes the gate.
                    return Progress.persisted(round - 1).thenRunAsync(() -> {});
                }
            };
        }
    }

    /**
     * Reads each record's key's value, checks it, and (unless {@code readOnly}) writes the record's, as the bridge's
     * cells are read at a load and written at a barrier: on the task thread, the key set on the synchronous backend.
     * Not Flink's asynchronous state processing (which is why this is not a DataStream V2 process function): the
     * synchronous backend is what the bridge reads and writes cells through.
     */
    private static final class StateAccess extends AbstractStreamOperator<Long>
            implements OneInputStreamOperator<Long, Long> {
        private final KeyDraw draw;
        private final int rounds;
        private final boolean readOnly;
        private transient ValueState<byte[]> values;

        StateAccess(KeyDraw draw, int rounds, boolean readOnly) {
            this.draw = draw;
            this.rounds = rounds;
            this.readOnly = readOnly;
        }

        /** Flink sets the operator up before it builds (and restores) the keyed backend. */
        @Override
        protected void setup(StreamTask<?, ?> containingTask, StreamConfig config, Output<StreamRecord<Long>> output) {
            Progress.setUp();
            super.setup(containingTask, config, output);
        }

        @Override
        public void initializeState(StateInitializationContext context) throws Exception {
            super.initializeState(context);
            Progress.stateReady();
            values = getKeyedStateBackend().getPartitionedState(VoidNamespace.INSTANCE,
                    VoidNamespaceSerializer.INSTANCE, new ValueStateDescriptor<>("value",
                            BytePrimitiveArraySerializer.INSTANCE));
        }

        @Override
        public void processElement(StreamRecord<Long> element) throws Exception {
            long index = element.getValue();
            int round = draw.round(index);
            long key = draw.key(index);
            if (readOnly) {
                check(values.value(), key, round);
                return;
            }
            long start = System.nanoTime();
            check(values.value(), key, round == 0 ? -1 : draw.lastRound(key, round - 1));
            values.update(value(key, round));
            Progress.processed(round, start);
        }

        @Override
        public void snapshotState(StateSnapshotContext context) throws Exception {
            super.snapshotState(context);
            Progress.snapshotted(context.getCheckpointId());
        }

        @Override
        public void notifyCheckpointComplete(long checkpointId) throws Exception {
            super.notifyCheckpointComplete(checkpointId);
            Progress.completed(checkpointId);
        }
    }

    /**
     * The run in progress, shared by the source's gate and the operator (the MiniCluster runs in this JVM): each
     * round's first and last record, the first checkpoint taken after its last record (its gate) and whether that
     * completed, and when the operator was set up and had its state.
     */
    private static final class Progress {
        private static KeyDraw draw;
        private static long[] processed;
        private static long[] firstNanos;
        private static long[] lastNanos;
        private static long[] gates;
        private static List<CompletableFuture<Void>> persisted;
        private static long setUpNanos;
        private static long stateReadyNanos;

        /** What a run left: its rounds' spans, their gates, and the operator's start. */
        record Finished(long[] records, long[] firstNanos, long[] lastNanos, long[] gates, double stateReadyMillis) {
            /** Records/s of rounds {@code from} to {@code to}, over the sum of their spans. */
            double recordsPerSecond(int from, int to) {
                long count = 0;
                long nanos = 0;
                for (int round = from; round <= to; round++) {
                    count += records[round];
                    nanos += lastNanos[round] - firstNanos[round];
                }
                return nanos == 0 ? Double.NaN : count * 1e9 / nanos;
            }
        }

        static synchronized void start(KeyDraw rounds, int count) {
            draw = rounds;
            processed = new long[count + 1];
            firstNanos = new long[count + 1];
            lastNanos = new long[count + 1];
            gates = new long[count + 1];
            Arrays.fill(gates, -1);
            persisted = Stream.generate(CompletableFuture<Void>::new).limit(count + 1).toList();
            setUpNanos = 0;
            stateReadyNanos = 0;
        }

        static synchronized Finished finish() {
            return new Finished(processed, firstNanos, lastNanos, gates, (stateReadyNanos - setUpNanos) / 1e6);
        }

        static synchronized void setUp() {
            setUpNanos = System.nanoTime();
        }

        static synchronized void stateReady() {
            stateReadyNanos = System.nanoTime();
        }

        static synchronized CompletableFuture<Void> persisted(int round) {
            return persisted.get(round);
        }

        /** A record of {@code round} was processed, starting at {@code startNanos}. */
        static synchronized void processed(int round, long startNanos) {
            if (processed[round]++ == 0) {
                firstNanos[round] = startNanos;
            }
            lastNanos[round] = System.nanoTime();
        }

        /** The operator's part of checkpoint {@code id} was taken: it gates each round complete before it. */
        static synchronized void snapshotted(long id) {
            for (int round = 0; round < gates.length; round++) {
                if (gates[round] < 0 && processed[round] == draw.recordsIn(round)) {
                    gates[round] = id;
                }
            }
        }

        static synchronized void completed(long id) {
            for (int round = 0; round < gates.length; round++) {
                if (gates[round] >= 0 && gates[round] <= id) {
                    persisted.get(round).complete(null);
                }
            }
        }
    }
}
