package org.flinkbridge.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.api.common.JobID;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.connector.dsv2.DataStreamV2SinkUtils;
import org.apache.flink.api.connector.dsv2.DataStreamV2SourceUtils;
import org.apache.flink.connector.datagen.source.DataGeneratorSource;
import org.apache.flink.configuration.CheckpointingOptions;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.ExternalizedCheckpointRetention;
import org.apache.flink.configuration.MemorySize;
import org.apache.flink.configuration.RestOptions;
import org.apache.flink.configuration.RestartStrategyOptions;
import org.apache.flink.configuration.StateRecoveryOptions;
import org.apache.flink.configuration.TaskManagerOptions;
import org.apache.flink.configuration.WebOptions;
import org.apache.flink.datastream.api.ExecutionEnvironment;
import org.apache.flink.datastream.api.common.Collector;
import org.apache.flink.datastream.api.context.PartitionedContext;
import org.apache.flink.datastream.api.function.OneInputStreamProcessFunction;
import org.apache.flink.datastream.api.stream.NonKeyedPartitionStream;
import org.apache.flink.datastream.impl.ExecutionEnvironmentImpl;
import org.apache.flink.runtime.checkpoint.AbstractCheckpointStats;
import org.apache.flink.runtime.checkpoint.CheckpointStatsSnapshot;
import org.apache.flink.runtime.checkpoint.CompletedCheckpointStats;
import org.apache.flink.state.rocksdb.EmbeddedRocksDBStateBackend;
import org.apache.flink.state.rocksdb.RocksDBConfigurableOptions;
import org.apache.flink.state.rocksdb.RocksDBOptions;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.flinkbridge.bridge.BridgeOptions;
import org.flinkbridge.bridge.session.SessionSpec;
import org.flinkbridge.job.PipelineJob;
import org.flinkbridge.pipeline.TransportMode;
import org.flinkbridge.records.BridgeRecord;

import java.lang.management.ManagementFactory;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.LongStream;
import java.util.stream.Stream;

/**
 * The state benchmark ({@code ./flink-bridge bench --state}): keyed state kept by a step in a worker over shm, on an
 * embedded MiniCluster with RocksDB and incremental checkpoints into files, a checkpoint every interval, at
 * {@value #SUBTASKS} subtasks. Three workloads, each at every key count and on every worker named:
 *
 * <ul>
 *   <li>{@code running_count}: the built-in step, its counts in a map cell;
 *   <li>{@code 1 KiB cells}: {@link StateBlobStep} (Java) or {@code bench_state.CellBlob} (Python, and hosted by the
 *   Rust worker), 1 KiB per key in a value cell;
 *   <li>{@code 1 KiB whole-instance}: the same 1 KiB per key kept by the step itself and taken whole at each
 *   checkpoint (today's whole-instance state, raw keyed state per key group), where it fits the bridge's
 *   {@link BridgeOptions#MAX_SNAPSHOT_SIZE}.
 * </ul>
 *
 * <p>Each run goes through {@link StateLoad}'s phases: build (every key once), steady (1% of the keys per checkpoint
 * interval), hot (as fast as it goes over 1% of the keys, resident). It reports records/s per phase; each steady
 * checkpoint's full and incremental size and duration from Flink's checkpoint statistics; what each subtask reads of
 * the last checkpoint on a restore at 1, {@value #SUBTASKS} and {@code 2 x} {@value #SUBTASKS} subtasks, both
 * computed from the checkpoint's metadata ({@link RestoreReads}) and measured: the job is cancelled, keeping its
 * checkpoints, and the last one restored into a job at each of those parallelisms on a second cluster, whose subtasks
 * report the bytes of the state handles they restored ({@link InitializationSpans}); the workers' peak resident
 * memory from the checkpoint that evicts the build's keys, all of it and their own without the shm rings' pages
 * ({@link WorkerMemory}), against the sessions' cells budget; the heap in use after a full collection (the
 * TaskManager runs in this JVM); and, on cells, recovery in place: in a last phase of 1% of the keys, once its first
 * half is answered (in the bridge's journal), every worker process is killed with SIGKILL ({@link WorkerKill}) and the
 * second half let go at once; the bridge's own {@code bridgeLastRecoveryMillis} per subtask ({@link RecoveryMetrics})
 * and the times from the kill to the first answer after it, to the phase's last answer and to the next checkpoint
 * ({@link RecoveryInPlace}), each answer of the phase checked to arrive once with its key's count (exactly once across
 * the kill).
 *
 * <p>Usage: {@code StateBench KEYS,... ROUNDS INTERVAL_MS ZIPF_EXPONENT OUTPUT_DIR [WORKER,...
 * [ROCKSDB_OPTION=VALUE,...]]}: the RocksDB options are Flink's {@code state.backend.rocksdb.*}
 * ({@link RocksDBOptions}, {@link RocksDBConfigurableOptions}), set on the cluster over Flink's defaults
 * ({@link #rocksDbOptions}). Writes
 * {@code state.md}, {@code state.json} and {@code state.png} there; exits with status 1 when a run or its recovery in
 * place failed (its row says why), with status 2 when the arguments are wrong.
 */
public final class StateBench {

    static final int SUBTASKS = 2;
    private static final List<String> WORKERS = List.of("java", "python", "rust");
    /** The worker's cells budget is this share of the total state of 1 KiB per key (the issue: 1 GiB for 8 GiB). */
    private static final int STATE_PER_BUDGET = 8;
    private static final long MIN_BUDGET_BYTES = 8L << 20;
    /** What the goal allows the workers beyond their budget and the keys one interval changes. */
    private static final long RSS_SLACK_BYTES = 200L << 20;
    /** A key's bytes beside its value, as the bridge weighs it (flink-bridge.worker.cells-budget): key and 128. */
    private static final long KEY_OVERHEAD_BYTES = 128 + 12;
    private static final long CHECKPOINT_WAIT_MILLIS = 300_000;
    /**
     * Checkpoints kept on disk: the one the benchmark reads and restores is the last but one or two when the job is
     * cancelled, and each kept one holds on to the files compaction replaced since (every one kept: 27 GB for 1 GiB).
     */
    private static final int RETAINED_CHECKPOINTS = 5;
    /** The parallelisms the last checkpoint is restored at: 1, the run's own, and twice that. */
    private static final List<Integer> RESTORE_PARALLELISMS = List.of(1, SUBTASKS, 2 * SUBTASKS);
    /**
     * A slot's managed memory on the project's standalone cluster ({@code ./flink-bridge cluster}: a TaskManager of
     * 2048 MiB with 2 slots, Flink's default managed fraction of 0.4).
     */
    private static final MemorySize MANAGED_MEMORY_PER_SLOT = MemorySize.ofMebiBytes(317);
    /** The keyed segment's operator, by the same id in the run's job and in the jobs that restore its checkpoint. */
    private static final String STATE_UID = "state";
    private static final long RESTORE_WAIT_MILLIS = 300_000;
    /**
     * The restoring jobs' checkpoint interval: Flink reports a job's initialization only where it checkpoints, and
     * these are cancelled before their first checkpoint.
     */
    private static final long RESTORE_CHECKPOINT_INTERVAL_MS = 3_600_000;
    private static final double MIB = 1024.0 * 1024.0;
    /** The Java worker's heap for whole-instance state (the others run with the spawned worker's default). */
    static final String INSTANCE_WORKER_HEAP = "-Xmx3g";

    /** The workloads compared. */
    enum Workload {
        RUNNING_COUNT("running_count (cells)"),
        CELLS("1 KiB per key, cells"),
        INSTANCE("1 KiB per key, whole-instance (today's)");

        final String description;

        Workload(String description) {
            this.description = description;
        }

        SessionSpec.Step step(String worker) {
            return switch (this) {
                case RUNNING_COUNT -> new SessionSpec.Step("count", "running_count", "{\"key_json_field\":\"key\"}");
                case CELLS -> worker.equals("java")
                        ? new SessionSpec.Step("blob", StateBlobStep.TYPE, "{\"keep\":\"cells\"}")
                        : new SessionSpec.Step("blob", "bench_state.CellBlob", "{}");
                case INSTANCE -> worker.equals("java")
                        ? new SessionSpec.Step("blob", StateBlobStep.TYPE, "{\"keep\":\"instance\"}")
                        : new SessionSpec.Step("blob", "bench_state.InstanceBlob", "{}");
            };
        }
    }

    /**
     * One run's figures (sizes in bytes, durations in ms); {@code outcome} is "ok", or why it did not run or failed,
     * and then the figures are 0.
     */
    record Result(String workload, String worker, long keys, String outcome, double buildPerSecond,
                  double steadyPerSecond, double pacedPerSecond, double hotPerSecond, int steadyCheckpoints,
                  long fullBytes, long uploadedP50, long uploadedP99, long uploadedMean, long durationP50,
                  long durationP99,
                  long changedKeysPerRound, Map<Integer, long[]> restoreComputed,
                  Map<Integer, InitializationSpans.Restored> restoreMeasured, long workerPeakRss,
                  long workerOwnPeakRss, long budgetBytes, long heapBytes, long heapBeforeBytes,
                  RecoveryInPlace recovery) {

        boolean ran() {
            return outcome.equals("ok");
        }

        static Result notRun(Workload workload, String worker, long keys, String why) {
            return new Result(workload.description, worker, keys, why, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, Map.of(),
                    Map.of(), 0, 0, 0, 0, 0, RecoveryInPlace.notMeasured(workload == Workload.INSTANCE
                            ? INSTANCE_RECOVERY : "not measured: the run did not complete"));
        }
    }

    /** The recovery column of a whole-instance run. */
    static final String INSTANCE_RECOVERY = "not measured: whole-instance (a new session is given the whole snapshot)";
    /** How long the recovery phase's records, and the checkpoint after the kill, may take. */
    private static final long RECOVERY_WAIT_MILLIS = 120_000;

    private StateBench() {}

    public static void main(String[] args) throws Exception {
        List<String> workers = Arguments.namesAfter(args, 5, 1, "StateBench KEYS,... ROUNDS INTERVAL_MS ZIPF_EXPONENT"
                + " OUTPUT_DIR [WORKER,... [ROCKSDB_OPTION=VALUE,...]]", "workers", WORKERS);
        Map<String, String> rocksDb = Map.of();
        if (args.length > 6) {
            try {
                rocksDb = rocksDbOptions(args[6]);
            } catch (IllegalArgumentException e) {
                System.err.println("flink-bridge bench: " + e.getMessage());
                System.exit(2);
            }
        }
        long[] keyCounts = Arrays.stream(args[0].split(",")).mapToLong(Long::parseLong).toArray();
        int rounds = Integer.parseInt(args[1]);
        long intervalMillis = Long.parseLong(args[2]);
        double zipf = Double.parseDouble(args[3]);
        Path out = Path.of(args[4]);
        Path checkpoints = Files.createTempDirectory("flink-bridge-state-bench");
        List<Result> results;
        try {
            results = runAll(keyCounts, rounds, intervalMillis, zipf, workers, rocksDb, checkpoints);
        } finally {
            Folders.deleteTree(checkpoints);
        }
        ObjectMapper json = new ObjectMapper();
        Map<String, Object> document = new LinkedHashMap<>();
        document.put("subtasks", SUBTASKS);
        document.put("rounds", rounds);
        document.put("interval_ms", intervalMillis);
        document.put("zipf_exponent", zipf);
        document.put("rocksdb_options", rocksDb);
        document.put("results", results);
        json.writerWithDefaultPrettyPrinter().writeValue(out.resolve("state.json").toFile(), document);
        Files.writeString(out.resolve("state.md"),
                StateReport.markdown(results, rounds, intervalMillis, zipf, rocksDb));
        StateReport.chart(out.resolve("state.png"), results);
        if (results.stream().anyMatch(result -> result.outcome().startsWith("failed")
                || result.recovery().outcome().startsWith("failed"))) {
            System.exit(1);
        }
    }

    /**
     * Every run, after an unmeasured one of each workload, on one cluster checkpointing into {@code checkpoints},
     * its RocksDB configured by {@code rocksDb} over Flink's defaults; the restores on a second one, configured alike,
     * with a slot for each subtask of the largest (so that the first keeps its slots, and the managed memory each slot
     * gets, as they were).
     */
    private static List<Result> runAll(long[] keyCounts, int rounds, long intervalMillis, double zipf,
                                       List<String> workers, Map<String, String> rocksDb, Path checkpoints)
            throws Exception {
        List<Result> results = new ArrayList<>();
        Configuration restoreConfiguration =
                clusterConfiguration(checkpoints, rocksDb, Collections.max(RESTORE_PARALLELISMS));
        InitializationSpans.configure(restoreConfiguration);
        Configuration configuration = clusterConfiguration(checkpoints, rocksDb, SUBTASKS);
        RecoveryMetrics.configure(configuration);
        try (BenchCluster cluster = new BenchCluster(SUBTASKS, configuration);
             BenchCluster restoreCluster = new BenchCluster(Collections.max(RESTORE_PARALLELISMS),
                     restoreConfiguration);
             WorkerMemory memory = new WorkerMemory()) {
            // Not measured: each workload once on a quarter of the fewest keys, four steady rounds, so that the
            // measured runs (the whole-instance ones last) meet a JVM as warm as each other's. The workers start
            // afresh with each job in any case.
            StateLoad warmUp = new StateLoad(Math.max(1, Arrays.stream(keyCounts).min().orElseThrow() / 4), 4,
                    intervalMillis, zipf, 7);
            for (Workload workload : Workload.values()) {
                Result unmeasured = runOrExplain(cluster, restoreCluster, memory, workload, workers.getFirst(),
                        warmUp);
                if (!unmeasured.ran()) {
                    throw new IllegalStateException("the unmeasured warm-up run of " + workload.description + " on "
                            + workers.getFirst() + " did not run: " + unmeasured.outcome());
                }
            }
            for (long keys : keyCounts) {
                StateLoad load = new StateLoad(keys, rounds, intervalMillis, zipf, 42);
                for (Workload workload : Workload.values()) {
                    for (String worker : workers) {
                        results.add(runOrExplain(cluster, restoreCluster, memory, workload, worker, load));
                    }
                }
            }
        }
        return results;
    }

    /**
     * A cluster of {@code slots} slots with a pipeline job's state options ({@link PipelineJob#defaultStateOptions}:
     * RocksDB) over {@code rocksDb}'s, the managed memory per slot of the project's standalone cluster, and
     * checkpoints into {@code checkpoints}, the last {@value #RETAINED_CHECKPOINTS} kept with every checkpoint's
     * statistics.
     */
    private static Configuration clusterConfiguration(Path checkpoints, Map<String, String> rocksDb, int slots) {
        Configuration config = new Configuration();
        // RocksDB's block cache and write buffers come out of it: a MiniCluster's default (128 MiB for all slots) left
        // 28 MB of cache per slot, too little to keep the filters of 8,000,000 keys (results/20261207T234210Z).
        config.set(TaskManagerOptions.MANAGED_MEMORY_SIZE, MANAGED_MEMORY_PER_SLOT.multiply(slots));
        rocksDb.forEach(config::setString);
        // As a pipeline's job has them: compressed snapshots, RocksDB with incremental checkpoints and bloom filters.
        PipelineJob.defaultStateOptions(config);
        config.set(CheckpointingOptions.CHECKPOINT_STORAGE, "filesystem");
        config.set(CheckpointingOptions.CHECKPOINTS_DIRECTORY, checkpoints.toUri().toString());
        config.set(CheckpointingOptions.MAX_RETAINED_CHECKPOINTS, RETAINED_CHECKPOINTS);
        config.set(WebOptions.CHECKPOINTS_HISTORY_SIZE, 1_000);
        // A failed run is reported as such, not retried.
        config.set(RestartStrategyOptions.RESTART_STRATEGY, "none");
        // Its web endpoint on any free port: the restores' cluster runs beside it in this JVM.
        config.set(RestOptions.BIND_PORT, "0");
        return config;
    }

    /**
     * The RocksDB options of a comma-separated {@code KEY=VALUE} list, in its order: each key one of Flink's
     * {@link RocksDBOptions} or {@link RocksDBConfigurableOptions}, each value one the backend takes (it is configured
     * with it, which parses and checks it as on a cluster).
     *
     * @throws IllegalArgumentException naming the entry that is not {@code KEY=VALUE}, the key that is no RocksDB
     *     option, or the option whose value the backend refuses, and why
     */
    static Map<String, String> rocksDbOptions(String list) {
        Map<String, String> options = Arguments.settings(list);
        Set<String> known = rocksDbOptionKeys();
        for (Map.Entry<String, String> option : options.entrySet()) {
            if (!known.contains(option.getKey())) {
                throw new IllegalArgumentException("unknown RocksDB option " + option.getKey() + "; the options are "
                        + known.stream().sorted().collect(Collectors.joining(", ")));
            }
            Configuration config = new Configuration();
            config.setString(option.getKey(), option.getValue());
            try {
                new EmbeddedRocksDBStateBackend().configure(config, StateBench.class.getClassLoader());
            } catch (RuntimeException e) {
                throw new IllegalArgumentException("RocksDB option " + option.getKey() + "=" + option.getValue()
                        + " refused: " + rootMessage(e), e);
            }
        }
        return options;
    }

    /** The keys of Flink's RocksDB options, read off their classes as Flink's documentation generator reads them. */
    private static Set<String> rocksDbOptionKeys() {
        return Stream.of(RocksDBOptions.class, RocksDBConfigurableOptions.class)
                .flatMap(options -> Arrays.stream(options.getFields()))
                .filter(field -> Modifier.isStatic(field.getModifiers()) && field.getType() == ConfigOption.class)
                .map(StateBench::optionKey)
                .collect(Collectors.toSet());
    }

    private static String optionKey(Field field) {
        try {
            return ((ConfigOption<?>) field.get(null)).key();
        } catch (IllegalAccessException e) {
            throw new IllegalStateException(e);
        }
    }

    private static Result runOrExplain(BenchCluster cluster, BenchCluster restoreCluster, WorkerMemory memory,
                                       Workload workload, String worker, StateLoad load) {
        long instanceBytes = load.keys() * (StateBlobStep.VALUE_BYTES + 16) / SUBTASKS;
        long maxSnapshot = BridgeOptions.MAX_SNAPSHOT_SIZE.defaultValue().getBytes();
        if (workload == Workload.INSTANCE && instanceBytes > maxSnapshot) {
            String why = String.format(Locale.ROOT, "not run: about %.0f MiB of whole-instance state per session, over"
                    + " the %.0f MiB the bridge takes (%s)", instanceBytes / MIB, maxSnapshot / MIB,
                    BridgeOptions.MAX_SNAPSHOT_SIZE.key());
            System.err.println("flink-bridge bench: state " + workload.description + ", " + worker + ", " + load.keys()
                    + " keys: " + why);
            return Result.notRun(workload, worker, load.keys(), why);
        }
        try {
            return run(cluster, restoreCluster, memory, workload, worker, load);
        } catch (Exception e) {
            System.err.println("flink-bridge bench: state " + workload.description + ", " + worker + ", " + load.keys()
                    + " keys failed:");
            e.printStackTrace();
            return Result.notRun(workload, worker, load.keys(), "failed: " + rootMessage(e));
        } finally {
            StateLoad.release();
        }
    }

    private static Result run(BenchCluster cluster, BenchCluster restoreCluster, WorkerMemory memory,
                              Workload workload, String worker, StateLoad load) throws Exception {
        long budget = Math.max(MIN_BUDGET_BYTES, load.keys() * StateBlobStep.VALUE_BYTES / STATE_PER_BUDGET);
        ExecutionEnvironment env = ExecutionEnvironment.getInstance();
        ((ExecutionEnvironmentImpl) env).getCheckpointCfg().setCheckpointInterval(load.intervalMillis());
        // The job is cancelled at its end, keeping its checkpoints for the restores (a job's own option).
        ((ExecutionEnvironmentImpl) env).getConfiguration().set(CheckpointingOptions.EXTERNALIZED_CHECKPOINT_RETENTION,
                ExternalizedCheckpointRetention.RETAIN_ON_CANCELLATION);
        NonKeyedPartitionStream<BridgeRecord> events =
                env.fromSource(DataStreamV2SourceUtils.wrapSource(load.source()), "state load").withParallelism(1);
        List<String> command = switch (worker) {
            case "python" -> BenchWorker.pythonCommand(false);
            case "rust" -> BenchWorker.rustHostingPythonCommand();
            // The whole state on the worker's heap, and each session's snapshot of it beside: more than the 1 GiB
            // a spawned Java worker gets by default once the state nears 400 MiB.
            default -> BenchWorker.command(workload == Workload.INSTANCE ? List.of(INSTANCE_WORKER_HEAP) : List.of(),
                    List.of());
        };
        SessionSpec spec = BenchWorker.sessionSpec("state-" + workload.name().toLowerCase(Locale.ROOT),
                workload.step(worker), TransportMode.SHM, command, SessionSpec.Recovery.defaults().withoutStandby())
                .withCellsBudget(budget / SUBTASKS);
        BenchCluster.keyedSegment(events, spec, SUBTASKS).withUid(STATE_UID).process(new Arrivals()).withParallelism(1)
                .toSink(DataStreamV2SinkUtils.wrapSink(new DiscardingSink<BridgeRecord>())).withParallelism(1);
        Arrivals.reset(load);
        StateLoad.resetRelease();
        System.gc();
        long heapBefore = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
        JobID job = cluster.submit(env);
        CompletableFuture<Void> end = cluster.end(job);
        String what = "state " + workload.description + ", " + worker + ", " + load.keys() + " keys";
        Arrivals.awaitPhase(Arrivals.BUILD, end, what);
        // The workers' memory from the checkpoint that evicts what the build left: until then they hold, besides the
        // budget, every key the build's last interval loaded (a barrier evicts only keys untouched since the one
        // before it), where the goal counts one steady interval's keys.
        awaitCheckpointAfter(cluster, job, Arrivals.endMillis(Arrivals.BUILD) + load.intervalMillis(), end, what);
        memory.resetPeak();
        Arrivals.awaitPhase(Arrivals.HOT, end, what);
        long lastCheckpointMillis = System.currentTimeMillis();
        CompletedCheckpointStats last = awaitCheckpointAfter(cluster, job, lastCheckpointMillis, end, what);
        long peakRss = memory.peakBytes();
        long ownPeakRss = memory.ownPeakBytes();
        System.gc();
        long heap = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
        RestoreReads.KeyedState state = RestoreReads.read(last.getExternalPath());
        Map<Integer, long[]> restore = new LinkedHashMap<>();
        for (int parallelism : RESTORE_PARALLELISMS) {
            restore.put(parallelism, RestoreReads.perSubtask(state.pieces(), state.maxParallelism(), parallelism));
        }
        List<CompletedCheckpointStats> steady = steadyCheckpoints(cluster.checkpoints(job), load);
        // The recovery phase, once everything else of the job is measured (the restores use the checkpoint above,
        // which the few checkpoints of this phase leave retained): on cells, its workers killed in the middle.
        RecoveryInPlace recovery;
        try {
            recovery = recoveryPhase(cluster, job, load, workload != Workload.INSTANCE, end, what);
        } catch (Exception e) {
            System.err.println("flink-bridge bench: " + what + ": recovery in place failed:");
            e.printStackTrace();
            recovery = RecoveryInPlace.notMeasured("failed: " + rootMessage(e));
        }
        // Cancelled, not let end: a job that finishes removes its checkpoints.
        try {
            cluster.cancelWhen(job, CompletableFuture.completedFuture(null));
        } catch (Exception e) {
            if (recovery.measured() || recovery.outcome().equals(INSTANCE_RECOVERY)) {
                throw e;
            }
            // The job failed in the recovery, said above; its checkpoints stay (retained on failure too).
        }
        Map<Integer, InitializationSpans.Restored> restored;
        try {
            restored = restoreMeasured(restoreCluster, spec, last.getExternalPath());
        } finally {
            // The job's directory: this checkpoint's, its others' and the files they share.
            Folders.deleteTree(RestoreReads.directory(last.getExternalPath()).getParent());
        }
        if (steady.isEmpty()) {
            throw new IllegalStateException(what + ": no checkpoint completed within the steady phase");
        }
        long[] uploaded = steady.stream().mapToLong(CompletedCheckpointStats::getCheckpointedSize).sorted().toArray();
        long[] durations = steady.stream().mapToLong(CompletedCheckpointStats::getEndToEndDuration).sorted()
                .toArray();
        long changed = (long) LongStream.range(0, load.rounds()).map(round -> load.distinctKeysOfRound((int) round))
                .average().orElse(0);
        Result result = new Result(workload.description, worker, load.keys(), "ok",
                Arrivals.perSecond(Arrivals.BUILD), Arrivals.perSecond(Arrivals.STEADY),
                load.perRound() * 1000.0 / load.intervalMillis(), Arrivals.perSecond(Arrivals.HOT), steady.size(),
                steady.getLast().getStateSize(), Latencies.percentile(uploaded, 50),
                Latencies.percentile(uploaded, 99), (long) LongStream.of(uploaded).average().orElse(0),
                Latencies.percentile(durations, 50),
                Latencies.percentile(durations, 99), changed, restore, restored, peakRss, ownPeakRss,
                workload == Workload.INSTANCE ? 0 : budget, heap, heapBefore, recovery);
        // Each steady checkpoint's upload in turn: where RocksDB's compactions fall among them.
        String uploads = steady.stream()
                .map(checkpoint -> String.format(Locale.ROOT, "%.2f", checkpoint.getCheckpointedSize() / MIB))
                .collect(Collectors.joining(", "));
        System.err.printf(Locale.ROOT, "flink-bridge bench: %s: build %,.0f/s, steady %,.0f/s, hot %,.0f/s; %d steady"
                        + " checkpoints, full %.1f MiB, uploaded p50 %.2f MiB (each: %s), duration p50 %d ms p99 %d"
                        + " ms; workers' peak RSS %.0f MiB, their own %.0f MiB; heap %.0f MiB (%.0f before the job);"
                        + " restored MiB per subtask, most (all): %s; recovery in place ms: %s%n", what,
                result.buildPerSecond(), result.steadyPerSecond(), result.hotPerSecond(), result.steadyCheckpoints(),
                result.fullBytes() / MIB, result.uploadedP50() / MIB, uploads, result.durationP50(),
                result.durationP99(), peakRss / MIB, ownPeakRss / MIB, heap / MIB, heapBefore / MIB,
                StateReport.restoredMiB(restored), recovery.summary().replace("**", ""));
        return result;
    }

    /**
     * The load's recovery phase: its first half let go and answered (it is then in the bridge's journal, the inputs
     * since the last barrier), then, with {@code kill}, every worker process of the job killed with SIGKILL and the
     * second half let go at once, as input keeps coming while a worker is lost. Waits for every answer of the phase,
     * each checked (once, with its key's count), and for a checkpoint triggered after the kill; gives the bridge's
     * recovery metrics of each subtask and the times from the kill. Without {@code kill} the phase runs through, its
     * answers checked the same, and nothing is measured.
     */
    private static RecoveryInPlace recoveryPhase(BenchCluster cluster, JobID job, StateLoad load, boolean kill,
                                                 CompletableFuture<Void> end, String what) throws Exception {
        StateLoad.startRecovery();
        Arrivals.awaitRecovery(load.resumeIndex() - load.recoveryStart(), end, what);
        List<Long> killed = List.of();
        long killNanos = System.nanoTime();
        long killMillis = System.currentTimeMillis();
        if (kill) {
            killed = WorkerKill.killAll();
        }
        StateLoad.resume();
        Arrivals.awaitRecovery(load.recoveryRecords(), end, what);
        CompletedCheckpointStats next = awaitCheckpointAfter(cluster, job, killMillis, end, what);
        String problem = Arrivals.recoveryProblem();
        if (problem == null && Arrivals.arrived() != load.records()) {
            problem = Arrivals.arrived() + " answers arrived for the load's " + load.records() + " inputs";
        }
        if (!kill) {
            if (problem != null) {
                throw new IllegalStateException(what + ": the recovery phase without a kill: " + problem);
            }
            return RecoveryInPlace.notMeasured(INSTANCE_RECOVERY);
        }
        Map<Integer, RecoveryMetrics.Subtask> subtasks = RecoveryMetrics.of(job);
        return new RecoveryInPlace(RecoveryInPlace.judge(killed, subtasks, SUBTASKS, problem), killed, subtasks,
                TimeUnit.NANOSECONDS.toMillis(Arrivals.resumedNanos() - killNanos),
                TimeUnit.NANOSECONDS.toMillis(Arrivals.recoveryEndNanos() - killNanos),
                next.getTriggerTimestamp() + next.getEndToEndDuration() - killMillis);
    }

    /**
     * Restores the checkpoint at {@code externalPath} into a job of {@code spec}'s keyed segment at each of
     * {@link #RESTORE_PARALLELISMS} on {@code restoreCluster}, one after another, each cancelled once all its subtasks
     * have initialized (their sessions opened, the workers started); gives what Flink reports they restored.
     */
    private static Map<Integer, InitializationSpans.Restored> restoreMeasured(BenchCluster restoreCluster,
                                                                              SessionSpec spec, String externalPath)
            throws Exception {
        Map<Integer, InitializationSpans.Restored> restored = new LinkedHashMap<>();
        for (int parallelism : RESTORE_PARALLELISMS) {
            ExecutionEnvironment env = ExecutionEnvironment.getInstance();
            ((ExecutionEnvironmentImpl) env).getCheckpointCfg().setCheckpointInterval(RESTORE_CHECKPOINT_INTERVAL_MS);
            Configuration config = ((ExecutionEnvironmentImpl) env).getConfiguration();
            config.set(StateRecoveryOptions.SAVEPOINT_PATH, externalPath);
            // The run's source is not in this job (its own has another id).
            config.set(StateRecoveryOptions.SAVEPOINT_IGNORE_UNCLAIMED_STATE, true);
            NonKeyedPartitionStream<BridgeRecord> none = env.fromSource(
                    DataStreamV2SourceUtils.wrapSource(idleSource()), "no input").withUid("no input")
                    .withParallelism(1);
            BenchCluster.keyedSegment(none, spec, parallelism).withUid(STATE_UID)
                    .toSink(DataStreamV2SinkUtils.wrapSink(new DiscardingSink<BridgeRecord>())).withParallelism(1);
            JobID job = restoreCluster.submit(env);
            CompletableFuture<Map<String, Object>> span = InitializationSpans.of(job)
                    .orTimeout(RESTORE_WAIT_MILLIS, TimeUnit.MILLISECONDS);
            restoreCluster.cancelWhen(job, span);
            restored.put(parallelism, InitializationSpans.restored(span.join()));
        }
        return restored;
    }

    /** A source that neither sends a record nor ends: its rate limiter never grants the first. */
    private static DataGeneratorSource<BridgeRecord> idleSource() {
        return new DataGeneratorSource<>(index -> {
            throw new IllegalStateException("the idle source sends no record");
        }, 1, parallelism -> permits -> new CompletableFuture<Void>(), TypeInformation.of(BridgeRecord.class));
    }

    /** The bytes a key changed in a steady round takes in the worker, as the bridge weighs it. */
    static long changedKeyBytes(String workload) {
        return workload.equals(Workload.RUNNING_COUNT.description) ? 8 + KEY_OVERHEAD_BYTES
                : StateBlobStep.VALUE_BYTES + KEY_OVERHEAD_BYTES;
    }

    /**
     * What the goal allows the workers' own resident memory ({@link WorkerMemory#ownPeakBytes}, without the shm
     * rings' pages, which the bridge maps too): their budget, the keys one interval changes, and 200 MiB.
     */
    static long rssAllowance(Result result) {
        return result.budgetBytes() + result.changedKeysPerRound() * changedKeyBytes(result.workload())
                + RSS_SLACK_BYTES;
    }

    /**
     * The checkpoints of the steady phase: triggered at least an interval after the last build record (the first
     * one after the build writes back what the build left) and completed before the last steady record.
     */
    private static List<CompletedCheckpointStats> steadyCheckpoints(CheckpointStatsSnapshot stats, StateLoad load) {
        long from = Arrivals.endMillis(Arrivals.BUILD) + load.intervalMillis();
        long to = Arrivals.endMillis(Arrivals.STEADY);
        return completed(stats).stream()
                .filter(checkpoint -> checkpoint.getTriggerTimestamp() >= from
                        && checkpoint.getTriggerTimestamp() + checkpoint.getEndToEndDuration() <= to)
                .toList();
    }

    private static List<CompletedCheckpointStats> completed(CheckpointStatsSnapshot stats) {
        List<CompletedCheckpointStats> completed = new ArrayList<>();
        for (AbstractCheckpointStats checkpoint : stats.getHistory().getCheckpoints()) {
            if (checkpoint instanceof CompletedCheckpointStats done) {
                completed.add(done);
            }
        }
        completed.sort(Comparator.comparingLong(CompletedCheckpointStats::getCheckpointId));
        return completed;
    }

    /** Waits for a checkpoint triggered after {@code afterMillis} to complete; the last one holds the final state. */
    private static CompletedCheckpointStats awaitCheckpointAfter(BenchCluster cluster, JobID job, long afterMillis,
                                                                 CompletableFuture<Void> end, String what)
            throws Exception {
        long deadline = System.currentTimeMillis() + CHECKPOINT_WAIT_MILLIS;
        while (System.currentTimeMillis() < deadline) {
            if (end.isDone()) {
                end.join();
                throw new IllegalStateException(what + ": the job ended before its last checkpoint");
            }
            List<CompletedCheckpointStats> completed = completed(cluster.checkpoints(job));
            if (!completed.isEmpty() && completed.getLast().getTriggerTimestamp() > afterMillis) {
                return completed.getLast();
            }
            Thread.sleep(200);
        }
        throw new IllegalStateException(what + ": no checkpoint completed within " + CHECKPOINT_WAIT_MILLIS
                + " ms after the last record");
    }

    private static String rootMessage(Throwable error) {
        Throwable root = error;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        String message = root.getClass().getSimpleName() + ": " + root.getMessage();
        return message.replace('|', '/').replace('\n', ' ');
    }

    /**
     * Counts what reaches the end of the job (one output per input in every workload) and notes when each phase's
     * last record arrived; checks each answer of the recovery phase (by its timestamp, the input's index): that it
     * arrives once and carries its key's count as {@link StateLoad#recoveryCounts} has it; static, as
     * {@link Latencies}' figures are, since the MiniCluster runs in this JVM.
     */
    private static final class Arrivals implements OneInputStreamProcessFunction<BridgeRecord, BridgeRecord> {
        static final int BUILD = 0;
        static final int STEADY = 1;
        static final int HOT = 2;

        private static long[] phaseEnds = new long[3];
        private static final long[] END_NANOS = new long[3];
        private static final long[] END_MILLIS = new long[3];
        private static final long[] RECORDS = new long[3];
        private static long firstNanos;
        private static long arrived;
        private static long recoveryStart;
        private static long resumeIndex;
        /** The count each answer of the recovery phase must carry, by its input's index less recoveryStart. */
        private static long[] recoveryCounts = new long[0];
        private static BitSet recoverySeen = new BitSet();
        private static long recoveryArrived;
        private static long resumedNanos;
        private static long recoveryEndNanos;
        private static String recoveryProblem;

        static synchronized void reset(StateLoad load) {
            phaseEnds = new long[] {load.keys(), load.keys() + load.steadyRecords(), load.recoveryStart()};
            recoveryStart = load.recoveryStart();
            resumeIndex = load.resumeIndex();
            recoveryCounts = load.recoveryCounts();
            recoverySeen = new BitSet(recoveryCounts.length);
            recoveryArrived = 0;
            resumedNanos = 0;
            recoveryEndNanos = 0;
            recoveryProblem = null;
            RECORDS[BUILD] = load.keys();
            RECORDS[STEADY] = load.steadyRecords();
            RECORDS[HOT] = load.hotRecords();
            Arrays.fill(END_NANOS, 0);
            Arrays.fill(END_MILLIS, 0);
            arrived = 0;
        }

        @Override
        public void processRecord(BridgeRecord record, Collector<BridgeRecord> output,
                                  PartitionedContext<BridgeRecord> ctx) {
            arrive(record);
            output.collect(record);
        }

        private static synchronized void arrive(BridgeRecord record) {
            long count = ++arrived;
            if (record.timestamp >= recoveryStart) {
                recoveryArrival(record);
            } else if (recoveryArrived > 0) {
                problem("input " + record.timestamp + ", of an earlier phase, answered again after the recovery"
                        + " phase began");
            }
            if (count == 1) {
                firstNanos = System.nanoTime();
            }
            for (int phase = BUILD; phase <= HOT; phase++) {
                if (count == phaseEnds[phase]) {
                    END_NANOS[phase] = System.nanoTime();
                    END_MILLIS[phase] = System.currentTimeMillis();
                }
            }
        }

        /** An answer to input {@code record.timestamp} of the recovery phase: checked, and timed. */
        private static void recoveryArrival(BridgeRecord record) {
            long now = System.nanoTime();
            long index = record.timestamp;
            if (index - recoveryStart >= recoveryCounts.length) {
                problem("an answer to input " + index + ", beyond the load's last");
                return;
            }
            int at = (int) (index - recoveryStart);
            if (recoverySeen.get(at)) {
                problem("input " + index + " answered twice");
                return;
            }
            recoverySeen.set(at);
            long count = RecoveryInPlace.countOf(record);
            if (count != recoveryCounts[at]) {
                problem("input " + index + " (" + record.headers.get(StateLoad.KEY_HEADER) + ") answered with its"
                        + " key's count at " + (count < 0 ? "none" : Long.toString(count)) + ", not "
                        + recoveryCounts[at]);
            }
            if (index >= resumeIndex && resumedNanos == 0) {
                resumedNanos = now;
            }
            if (++recoveryArrived == recoveryCounts.length) {
                recoveryEndNanos = now;
            }
        }

        private static void problem(String what) {
            if (recoveryProblem == null) {
                recoveryProblem = what;
            }
        }

        static synchronized long arrived() {
            return arrived;
        }

        /** The first thing wrong with the recovery phase's answers so far; null if none. */
        static synchronized String recoveryProblem() {
            return recoveryProblem;
        }

        static synchronized long resumedNanos() {
            return resumedNanos;
        }

        static synchronized long recoveryEndNanos() {
            return recoveryEndNanos;
        }

        private static synchronized long recoveryArrived() {
            return recoveryArrived;
        }

        /**
         * Waits until {@code answers} answers of the recovery phase arrived, failing if the job ends first, and after
         * {@value StateBench#RECOVERY_WAIT_MILLIS} ms.
         */
        static void awaitRecovery(long answers, CompletableFuture<Void> end, String what) throws InterruptedException {
            long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(RECOVERY_WAIT_MILLIS);
            while (recoveryArrived() < answers) {
                if (end.isDone()) {
                    end.join();
                    throw new IllegalStateException(what + ": the job ended after " + recoveryArrived() + " of the"
                            + " recovery phase's answers");
                }
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException(what + ": " + recoveryArrived() + " of " + answers + " answers"
                            + " of the recovery phase within " + RECOVERY_WAIT_MILLIS + " ms"
                            + (recoveryProblem() == null ? "" : "; " + recoveryProblem()));
                }
                Thread.sleep(5);
            }
        }

        static synchronized boolean ended(int phase) {
            return END_NANOS[phase] != 0;
        }

        static synchronized long endMillis(int phase) {
            return END_MILLIS[phase];
        }

        /** Records/s of a phase: from the previous phase's last arrival (the first, for the build) to its own. */
        static synchronized double perSecond(int phase) {
            long from = phase == BUILD ? firstNanos : END_NANOS[phase - 1];
            return RECORDS[phase] * 1e9 / (END_NANOS[phase] - from);
        }

        /** Waits for the last record of {@code phase}, failing if the job ends first. */
        static void awaitPhase(int phase, CompletableFuture<Void> end, String what) throws InterruptedException {
            while (!ended(phase)) {
                if (end.isDone()) {
                    end.join();
                    throw new IllegalStateException(what + ": the job ended after " + arrived() + " records");
                }
                Thread.sleep(20);
            }
        }
    }
}
