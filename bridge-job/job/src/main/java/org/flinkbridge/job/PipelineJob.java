package org.flinkbridge.job;

import org.apache.flink.configuration.CheckpointingOptions;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ConfigOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.ExecutionOptions;
import org.apache.flink.configuration.StateBackendOptions;
import org.apache.flink.datastream.api.ExecutionEnvironment;
import org.apache.flink.datastream.api.extension.eventtime.EventTimeExtension;
import org.apache.flink.datastream.api.stream.NonKeyedPartitionStream;
import org.apache.flink.datastream.api.stream.NonKeyedPartitionStream.ProcessConfigurableAndNonKeyedPartitionStream;
import org.apache.flink.datastream.impl.ExecutionEnvironmentImpl;
import org.flinkbridge.bridge.BridgeOptions;
import org.flinkbridge.bridge.JobCounters;
import org.flinkbridge.bridge.function.BridgeFunction;
import org.flinkbridge.bridge.function.BridgeStreams;
import org.flinkbridge.bridge.session.SessionSpec;
import org.flinkbridge.bridge.session.SessionTransport;
import org.flinkbridge.bridge.session.WorkerAddressCheck;
import org.flinkbridge.job.io.CountingFunction;
import org.flinkbridge.job.io.Sinks;
import org.flinkbridge.job.io.Sources;
import org.flinkbridge.job.io.Union;
import org.flinkbridge.pipeline.BridgeSettings;
import org.flinkbridge.pipeline.FileSinkSpec;
import org.flinkbridge.pipeline.GeneratorSourceSpec;
import org.flinkbridge.pipeline.KeySpec;
import org.flinkbridge.pipeline.OnError;
import org.flinkbridge.pipeline.Pipeline;
import org.flinkbridge.pipeline.SegmentSpec;
import org.flinkbridge.pipeline.SinkSpec;
import org.flinkbridge.records.BridgeRecord;
import org.flinkbridge.records.RecordKey;
import org.flinkbridge.transport.shm.RingLayout;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Builds the Flink job of a pipeline: sources (unioned), event-time watermarks from the records'
 * timestamps, then the pipeline's graph ({@link FlowGraph}): one bridge function per segment (keyed before it when
 * the segment has a key, {@link Pipeline#keyOf}), routes, broadcasts and unions, and the sinks each flow ends in.
 */
public final class PipelineJob {

    /** RocksDB's option of the same key (this module does not depend on the RocksDB backend, which Flink ships). */
    static final ConfigOption<Boolean> ROCKSDB_BLOOM_FILTER =
            ConfigOptions.key("state.backend.rocksdb.use-bloom-filter").booleanType().defaultValue(false);

    private PipelineJob() {}

    /**
     * The state options a pipeline's job has where Flink's own options do not set them: compressed snapshots, and,
     * where they name no state backend, RocksDB with incremental checkpoints and bloom filters.
     */
    public static void defaultStateOptions(Configuration config) {
        if (!config.contains(ExecutionOptions.SNAPSHOT_COMPRESSION)) {
            // Worker state is operator state, and Flink reads uncompressed operator state back one byte per
            // read call on the file (CompressibleFSDataInputStream has no bulk read): restoring 256 MiB took
            // minutes here. Compressed, it is read in blocks, and worker state is often compressible too.
            config.set(ExecutionOptions.SNAPSHOT_COMPRESSION, true);
        }
        if (config.contains(StateBackendOptions.STATE_BACKEND)) {
            return;
        }
        // Keyed state larger than memory with checkpoints that grow with change, not with state: what Flink
        // users run large keyed state on. Flink's own options choose another.
        config.set(StateBackendOptions.STATE_BACKEND, "rocksdb");
        if (!config.contains(CheckpointingOptions.INCREMENTAL_CHECKPOINTS)) {
            config.set(CheckpointingOptions.INCREMENTAL_CHECKPOINTS, true);
        }
        if (!config.contains(ROCKSDB_BLOOM_FILTER)) {
            // A key's first record looks up cells it does not have yet; a bloom filter answers that lookup
            // without reading the backend's files, which otherwise grows with the state (CellStates).
            config.set(ROCKSDB_BLOOM_FILTER, true);
        }
    }

    /** Adds the pipeline's job to {@code env} and configures it; {@code env.execute} runs it. */
    public static void build(ExecutionEnvironment env, Pipeline pipeline, JobArguments args) {
        BridgeSettings bridge = pipeline.bridge();
        ExecutionEnvironmentImpl impl = (ExecutionEnvironmentImpl) env;
        Configuration config = impl.getConfiguration();
        args.options().forEach(config::setString);
        defaultStateOptions(config);
        impl.setParallelism(bridge.parallelism());
        if (bridge.checkpointIntervalMs() > 0) {
            impl.getCheckpointCfg().setCheckpointInterval(bridge.checkpointIntervalMs());
        }
        if (bridge.workerAddress() != null) {
            WorkerAddressCheck.requireOnThisHost(bridge.workerAddress(),
                    config.get(BridgeOptions.ALLOW_PLAINTEXT_REMOTE));
        }
        List<String> workerCommand = bridge.workerAddress() == null
                ? WorkerCommands.of(pipeline, args, config) : List.of();
        int batchFrames = config.get(BridgeOptions.GRPC_BATCH_FRAMES);
        SessionSpec.ShmSettings shm = shmSettings(config);

        // Generated events are fed by one subtask, so every session sees its events in the same order on every
        // run, whatever the transport: a generator-only job gives the same output each time.
        int feedParallelism = pipeline.sources().stream().allMatch(source -> source instanceof GeneratorSourceSpec)
                ? 1 : bridge.parallelism();
        NonKeyedPartitionStream<BridgeRecord> stream = null;
        for (var source : pipeline.sources()) {
            NonKeyedPartitionStream<BridgeRecord> next = Sources.create(env, source).withParallelism(feedParallelism);
            stream = stream == null ? next : stream.connectAndProcess(next, new Union()).withName("union")
                    .withParallelism(feedParallelism);
        }
        stream = stream.process(EventTimeExtension.newWatermarkGeneratorBuilder(
                                (BridgeRecord record) -> record.timestamp)
                        .periodicWatermark(config.get(BridgeOptions.WATERMARK_INTERVAL))
                        .buildAsProcessFunction())
                .withName("event time").withParallelism(feedParallelism);
        stream = stream.process(new CountingFunction(JobCounters.Count.READ)).withName("count read")
                .withParallelism(feedParallelism);

        List<NonKeyedPartitionStream<BridgeRecord>> deadLetters = new ArrayList<>();
        FlowGraph.build(pipeline, stream, (input, segment, countSent, countReceived) -> {
            KeySpec key = pipeline.keyOf(segment);
            BridgeFunction function = new BridgeFunction(
                    sessionSpec(pipeline, segment, workerCommand, batchFrames, shm, config), key != null,
                    countSent, countReceived);
            String name = "segment " + segment.id() + " " + segment.name();
            ProcessConfigurableAndNonKeyedPartitionStream<BridgeRecord> processed = key != null
                    ? BridgeStreams.process(input.keyBy(new RecordKey(key)), function).withName(name)
                            .withUid("segment-" + segment.name())
                    : BridgeStreams.process(input, function).withName(name).withUid("segment-" + segment.name());
            if (segment.steps().stream().anyMatch(step -> step.onError() == OnError.DEAD_LETTER)) {
                deadLetters.add(BridgeStreams.deadLetters(processed));
            }
            return processed;
        }, (output, end) -> {
            NonKeyedPartitionStream<BridgeRecord> counted = output
                    .process(new CountingFunction(JobCounters.Count.WRITTEN)).withName("count written");
            for (SinkSpec sink : end.sinks()) {
                Sinks.attach(counted, sink, sink instanceof FileSinkSpec file ? filePath(pipeline, file, args.output())
                        : null);
            }
        });
        deadLetters.stream().reduce((a, b) -> a.connectAndProcess(b, new Union()).withName("union dead letters"))
                .ifPresent(all -> Sinks.attachDeadLetters(all, pipeline.deadLetters()));
    }

    /**
     * Where a file sink writes: its own path, or, with {@code --output}, that directory for the pipeline's only
     * file sink and a directory per sink name inside it where there are several.
     */
    public static String filePath(Pipeline pipeline, FileSinkSpec sink, String output) {
        if (output == null) {
            return sink.path();
        }
        return pipeline.sinks().stream().filter(s -> s instanceof FileSinkSpec).count() == 1 ? output
                : Path.of(output, sink.name()).toString();
    }

    private static SessionSpec sessionSpec(Pipeline pipeline, SegmentSpec segment, List<String> workerCommand,
                                           int batchFrames, SessionSpec.ShmSettings shm, Configuration config) {
        BridgeSettings bridge = pipeline.bridge();
        SessionSpec.Recovery recovery = SessionTransport.of(bridge.transport()).recoversInPlace()
                ? new SessionSpec.Recovery(bridge.workerRecovery(), bridge.workerRestartTimeoutMs(),
                        config.get(BridgeOptions.JOURNAL_SIZE).getBytes(), config.get(BridgeOptions.WORKER_STANDBY))
                : SessionSpec.Recovery.failover();
        return new SessionSpec(pipeline.name(), segment.id(), segment.name(), steps(segment), bridge.transport(),
                bridge.workerAddress(), config.get(BridgeOptions.ALLOW_PLAINTEXT_REMOTE), workerCommand,
                bridge.maxInFlight(), bridge.workerTimeoutMs(), batchFrames, shm, recovery,
                config.get(BridgeOptions.MAX_SNAPSHOT_SIZE).getBytes(), false,
                config.get(BridgeOptions.CELLS_BUDGET).getBytes());
    }

    /** A segment's steps as the control service describes them to a worker. */
    static List<SessionSpec.Step> steps(SegmentSpec segment) {
        return segment.steps().stream()
                .map(step -> new SessionSpec.Step(step.name(), step.type(), step.configJson(),
                        step.onError() == OnError.DEAD_LETTER)).toList();
    }

    private static SessionSpec.ShmSettings shmSettings(Configuration config) {
        long capacity = config.get(BridgeOptions.SHM_RING_CAPACITY).getBytes();
        if (capacity < RingLayout.MIN_CAPACITY || capacity > (1 << 30) || Long.bitCount(capacity) != 1) {
            throw new IllegalArgumentException(BridgeOptions.SHM_RING_CAPACITY.key() + " must be a power of two "
                    + "from " + RingLayout.MIN_CAPACITY + " bytes to 1 gb, not " + capacity + " bytes");
        }
        return new SessionSpec.ShmSettings(config.get(BridgeOptions.SHM_DIRECTORY), (int) capacity,
                config.get(BridgeOptions.LIVENESS_TIMEOUT).toMillis());
    }
}
