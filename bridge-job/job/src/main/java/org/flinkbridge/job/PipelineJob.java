package org.flinkbridge.job;

import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.ExecutionOptions;
import org.apache.flink.datastream.api.ExecutionEnvironment;
import org.apache.flink.datastream.api.extension.eventtime.EventTimeExtension;
import org.apache.flink.datastream.api.stream.NonKeyedPartitionStream;
import org.apache.flink.datastream.impl.ExecutionEnvironmentImpl;
import org.flinkbridge.bridge.BridgeOptions;
import org.flinkbridge.bridge.BridgeRecord;
import org.flinkbridge.bridge.JobCounters;
import org.flinkbridge.bridge.RecordKey;
import org.flinkbridge.bridge.function.BridgeFunction;
import org.flinkbridge.bridge.function.BridgeStreams;
import org.flinkbridge.bridge.session.SessionSpec;
import org.flinkbridge.job.io.CountingFunction;
import org.flinkbridge.job.io.Sinks;
import org.flinkbridge.job.io.Sources;
import org.flinkbridge.job.io.Union;
import org.flinkbridge.pipeline.BridgeSettings;
import org.flinkbridge.pipeline.FileSinkSpec;
import org.flinkbridge.pipeline.GeneratorSourceSpec;
import org.flinkbridge.pipeline.Pipeline;
import org.flinkbridge.pipeline.SegmentSpec;
import org.flinkbridge.pipeline.SinkSpec;
import org.flinkbridge.pipeline.TransportMode;
import org.flinkbridge.pipeline.WorkerLanguage;
import org.flinkbridge.proto.control.StepSpec;
import org.flinkbridge.transport.grpc.CompatSegments;
import org.flinkbridge.transport.shm.RingLayout;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * Builds the Flink job of a pipeline: sources (unioned), event-time watermarks from the records'
 * timestamps, one bridge function per segment (keyed before the first when the pipeline names a key),
 * then every sink.
 */
public final class PipelineJob {

    public static final String WORKER_JAR_ENV = "FLINK_BRIDGE_WORKER_JAR";
    public static final String PYTHON_RUNTIME_ENV = "FLINK_BRIDGE_PYTHON_RUNTIME";
    public static final String RUST_WORKER_ENV = "FLINK_BRIDGE_RUST_WORKER";

    private PipelineJob() {}

    /** Adds the pipeline's job to {@code env} and configures it; {@code env.execute} runs it. */
    public static void build(ExecutionEnvironment env, Pipeline pipeline, JobArguments args) {
        BridgeSettings bridge = pipeline.bridge();
        ExecutionEnvironmentImpl impl = (ExecutionEnvironmentImpl) env;
        Configuration config = impl.getConfiguration();
        args.options().forEach(config::setString);
        if (!config.contains(ExecutionOptions.SNAPSHOT_COMPRESSION)) {
            // Worker state is operator state, and Flink reads uncompressed operator state back one byte per
            // read call on the file (CompressibleFSDataInputStream has no bulk read): restoring 256 MiB took
            // minutes here. Compressed, it is read in blocks, and worker state is often compressible too.
            config.set(ExecutionOptions.SNAPSHOT_COMPRESSION, true);
        }
        impl.setParallelism(bridge.parallelism());
        if (bridge.checkpointIntervalMs() > 0) {
            impl.getCheckpointCfg().setCheckpointInterval(bridge.checkpointIntervalMs());
        }
        List<String> workerCommand = bridge.workerAddress() == null
                ? workerCommand(pipeline, args, config) : List.of();
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

        List<SegmentSpec> segments = pipeline.segments();
        for (SegmentSpec segment : segments) {
            boolean keyed = segment.id() == 0 && bridge.key() != null;
            BridgeFunction function = new BridgeFunction(
                    sessionSpec(pipeline, segment, workerCommand, batchFrames, shm, config), keyed,
                    segment.id() == 0, segment.id() == segments.size() - 1);
            String name = "segment " + segment.id() + " " + segment.name();
            stream = keyed
                    ? BridgeStreams.process(stream.keyBy(new RecordKey(bridge.key())), function).withName(name)
                            .withUid("segment-" + segment.name())
                    : BridgeStreams.process(stream, function).withName(name).withUid("segment-" + segment.name());
        }
        stream = stream.process(new CountingFunction(JobCounters.Count.WRITTEN)).withName("count written");

        List<SinkSpec> fileSinks = pipeline.sinks().stream().filter(s -> s instanceof FileSinkSpec).toList();
        for (SinkSpec sink : pipeline.sinks()) {
            String path = null;
            if (args.output() != null && sink instanceof FileSinkSpec) {
                path = fileSinks.size() == 1 ? args.output() : Path.of(args.output(), sink.name()).toString();
            }
            Sinks.attach(stream, sink, path);
        }
    }

    private static SessionSpec sessionSpec(Pipeline pipeline, SegmentSpec segment, List<String> workerCommand,
                                           int batchFrames, SessionSpec.ShmSettings shm, Configuration config) {
        BridgeSettings bridge = pipeline.bridge();
        // The prototype's unary service keeps no state the bridge could restore: a lost worker fails the task.
        SessionSpec.Recovery recovery = bridge.transport() == TransportMode.GRPC_COMPAT ? SessionSpec.Recovery.failover()
                : new SessionSpec.Recovery(bridge.workerRecovery(), bridge.workerRestartTimeoutMs(),
                        config.get(BridgeOptions.JOURNAL_SIZE).getBytes(), config.get(BridgeOptions.WORKER_STANDBY));
        return new SessionSpec(pipeline.name(), segment.id(), segment.name(), steps(segment), bridge.transport(),
                bridge.workerAddress(), workerCommand, bridge.maxInFlight(), bridge.workerTimeoutMs(),
                batchFrames, shm, recovery);
    }

    /** A segment's steps as the control service describes them to a worker. */
    private static List<SessionSpec.Step> steps(SegmentSpec segment) {
        return segment.steps().stream()
                .map(step -> new SessionSpec.Step(step.name(), step.type(), step.configJson())).toList();
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

    /** The command a TaskManager runs to spawn a worker; {@code java} stands for its own JVM's launcher. */
    static List<String> workerCommand(Pipeline pipeline, JobArguments args, Configuration config) {
        List<String> command = switch (pipeline.bridge().worker()) {
            case JAVA -> javaWorkerCommand(args, config);
            case PYTHON -> pythonWorkerCommand(pipeline, config);
            case RUST -> rustWorkerCommand(pipeline, config);
        };
        if (pipeline.bridge().transport() == TransportMode.GRPC_COMPAT) {
            // The prototype's service has no sessions: the worker learns the segments from its command line.
            Map<Integer, List<StepSpec>> segments = new LinkedHashMap<>();
            pipeline.segments().forEach(segment -> segments.put(segment.id(),
                    steps(segment).stream().map(SessionSpec.Step::toProto).toList()));
            command.addAll(List.of(CompatSegments.OPTION, CompatSegments.toJson(segments)));
        }
        return command;
    }

    private static List<String> javaWorkerCommand(JobArguments args, Configuration config) {
        Path jarPath = locate("worker jar", args.workerJar(), config, BridgeOptions.WORKER_JAR, WORKER_JAR_ENV,
                "--worker-jar JAR");
        if (!Files.isReadable(jarPath)) {
            throw new IllegalArgumentException("the worker jar " + jarPath + " does not exist or is not readable");
        }
        List<String> command = new ArrayList<>();
        command.add("java");
        command.addAll(List.of(config.get(BridgeOptions.WORKER_JVM_OPTIONS).trim().split("\\s+")));
        command.addAll(List.of("--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow",
                "-jar", jarPath.toString(), "--unix-socket",
                // The worker opens ring files in this directory only, and its socket goes there.
                "--ring-dir", config.get(BridgeOptions.SHM_DIRECTORY)));
        return command;
    }

    /**
     * {@code flink-bridge-worker --unix-socket --ring-dir DIR [--python-runtime DIR --path DIR...]}: the built-in
     * steps, one thread per session; with the Python runtime configured, it also hosts the pipeline's Python
     * segments, found beside the pipeline file.
     */
    private static List<String> rustWorkerCommand(Pipeline pipeline, Configuration config) {
        if (pipeline.bridge().transport() == TransportMode.GRPC_COMPAT) {
            throw new IllegalArgumentException("the Rust worker does not serve the prototype's service (grpc_mode "
                    + "compat): use transport shm, or grpc with grpc_mode stream");
        }
        Path binary = locate("Rust worker", null, config, BridgeOptions.RUST_WORKER, RUST_WORKER_ENV,
                "-D" + BridgeOptions.RUST_WORKER.key() + "=PATH");
        if (!Files.isExecutable(binary)) {
            throw new IllegalArgumentException("the Rust worker " + binary + " does not exist or is not executable "
                    + "(./flink-bridge build builds it)");
        }
        List<String> command = new ArrayList<>(List.of(binary.toString(), "--unix-socket", "--ring-dir",
                config.get(BridgeOptions.SHM_DIRECTORY)));
        if (configured(null, config, BridgeOptions.PYTHON_RUNTIME, PYTHON_RUNTIME_ENV).isPresent()) {
            command.addAll(List.of("--python-runtime", pythonRuntime(config).toString()));
            segmentPaths(pipeline, config).forEach(path -> command.addAll(List.of("--path", path)));
        }
        return command;
    }

    /** {@code python3 RUNTIME --unix-socket --ring-dir DIR --path DIR...}: segments are found beside the pipeline file. */
    private static List<String> pythonWorkerCommand(Pipeline pipeline, Configuration config) {
        List<String> command = new ArrayList<>(List.of(config.get(BridgeOptions.PYTHON_EXECUTABLE),
                pythonRuntime(config).toString(), "--unix-socket", "--ring-dir", config.get(BridgeOptions.SHM_DIRECTORY)));
        segmentPaths(pipeline, config).forEach(path -> command.addAll(List.of("--path", path)));
        config.getOptional(BridgeOptions.WORKER_SEGMENTS).ifPresent(segments ->
                command.addAll(List.of("--segments", segments)));
        return command;
    }

    /** The Python worker's runtime folder (workers/python/), checked. */
    private static Path pythonRuntime(Configuration config) {
        Path runtime = locate("Python worker runtime", null, config, BridgeOptions.PYTHON_RUNTIME,
                PYTHON_RUNTIME_ENV, "-D" + BridgeOptions.PYTHON_RUNTIME.key() + "=DIR");
        if (!Files.isRegularFile(runtime.resolve("flink_bridge").resolve("main.py"))) {
            throw new IllegalArgumentException("the Python worker runtime " + runtime + " has no flink_bridge/main.py");
        }
        return runtime;
    }

    /** Where Python segments are found: the pipeline file's folder, then flink-bridge.worker.python.path's. */
    private static List<String> segmentPaths(Pipeline pipeline, Configuration config) {
        List<String> paths = new ArrayList<>();
        paths.add(pipeline.file().toAbsolutePath().getParent().toString());
        for (String path : config.get(BridgeOptions.PYTHON_PATH).split(":")) {
            if (!path.isBlank()) {
                paths.add(Path.of(path.trim()).toAbsolutePath().toString());
            }
        }
        return paths;
    }

    /**
     * The first of: the command line's {@code flag}, the Flink {@code option}, the system property of the
     * option's name, the environment variable {@code env}; refused naming them all when none is set.
     */
    private static Path locate(String what, String flag, Configuration config, ConfigOption<String> option,
                               String env, String flagUsage) {
        String value = configured(flag, config, option, env)
                .orElseThrow(() -> new IllegalArgumentException("no " + what + " to spawn: give --worker-address "
                        + "HOST:PORT for a running worker, or " + flagUsage + " (or the option " + option.key()
                        + ", or " + env + ")"));
        return Path.of(value).toAbsolutePath();
    }

    /** The first of the command line's {@code flag}, the Flink {@code option}, its system property, {@code env}. */
    private static Optional<String> configured(String flag, Configuration config, ConfigOption<String> option,
                                               String env) {
        return Stream.of(flag, config.get(option), System.getProperty(option.key()), System.getenv(env))
                .filter(Objects::nonNull)
                .findFirst();
    }
}
