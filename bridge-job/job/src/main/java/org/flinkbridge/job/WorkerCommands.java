package org.flinkbridge.job;

import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.Configuration;
import org.flinkbridge.bridge.BridgeOptions;
import org.flinkbridge.bridge.session.SessionSpec;
import org.flinkbridge.bridge.session.SessionTransport;
import org.flinkbridge.pipeline.Pipeline;
import org.flinkbridge.proto.control.StepSpec;

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
 * The command a TaskManager runs to spawn the pipeline's worker, in each worker language: the Java worker's jar on
 * the TaskManager's own JVM, the Python worker's runtime, or the Rust worker's binary, each found through the
 * command line, a Flink option, its system property or an environment variable, and checked before the job starts.
 */
final class WorkerCommands {

    static final String WORKER_JAR_ENV = "FLINK_BRIDGE_WORKER_JAR";
    static final String PYTHON_RUNTIME_ENV = "FLINK_BRIDGE_PYTHON_RUNTIME";
    static final String RUST_WORKER_ENV = "FLINK_BRIDGE_RUST_WORKER";

    private WorkerCommands() {}

    /** The command a TaskManager runs to spawn a worker; {@code java} stands for its own JVM's launcher. */
    static List<String> of(Pipeline pipeline, JobArguments args, Configuration config) {
        List<String> command = switch (pipeline.bridge().worker()) {
            case JAVA -> javaWorkerCommand(args, config);
            case PYTHON -> pythonWorkerCommand(pipeline, config);
            case RUST -> rustWorkerCommand(pipeline, config);
        };
        Map<Integer, List<StepSpec>> segments = new LinkedHashMap<>();
        pipeline.segments().forEach(segment -> segments.put(segment.id(),
                PipelineJob.steps(segment).stream().map(SessionSpec.Step::toProto).toList()));
        command.addAll(SessionTransport.of(pipeline.bridge().transport()).spawnArguments(segments));
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
        if (pipeline.bridge().transport().needsPrototypeService()) {
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
            command.addAll(pythonSegmentArguments(pipeline, config));
        }
        return command;
    }

    /** {@code python3 RUNTIME --unix-socket --ring-dir DIR --path DIR...}: segments are found beside the pipeline file. */
    private static List<String> pythonWorkerCommand(Pipeline pipeline, Configuration config) {
        List<String> command = new ArrayList<>(List.of(config.get(BridgeOptions.PYTHON_EXECUTABLE),
                pythonRuntime(config).toString(), "--unix-socket", "--ring-dir", config.get(BridgeOptions.SHM_DIRECTORY)));
        command.addAll(pythonSegmentArguments(pipeline, config));
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

    /**
     * What a worker hosting Python segments is told of them: where they are found ({@code --path}: the pipeline
     * file's folder, then flink-bridge.worker.python.path's), and whether their state may be pickled.
     */
    private static List<String> pythonSegmentArguments(Pipeline pipeline, Configuration config) {
        List<String> arguments = new ArrayList<>(
                List.of("--path", pipeline.file().toAbsolutePath().getParent().toString()));
        for (String path : config.get(BridgeOptions.PYTHON_PATH).split(":")) {
            if (!path.isBlank()) {
                arguments.addAll(List.of("--path", Path.of(path.trim()).toAbsolutePath().toString()));
            }
        }
        if (config.get(BridgeOptions.REFUSE_PICKLED_STATE)) {
            arguments.add("--refuse-pickled-state");
        }
        return arguments;
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
