package org.flinkbridge.bench;

import org.flinkbridge.bridge.BridgeOptions;
import org.flinkbridge.bridge.session.SessionSpec;
import org.flinkbridge.pipeline.BridgeSettings;
import org.flinkbridge.pipeline.TransportMode;
import org.flinkbridge.proto.control.StepSpec;
import org.flinkbridge.transport.grpc.CompatSegments;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The worker process a benchmark spawns: the worker jar plus this module's jar (so it can load
 * {@link EchoStep#TYPE}), with the JVM options a TaskManager gives the workers it spawns.
 */
final class BenchWorker {

    /**
     * This module's own jar, not the benchmarks jar: the worker jar already holds the libraries that one
     * bundles, and a second copy of them (an SLF4J binding among them) on its classpath only adds warnings.
     */
    static final String SEGMENT_JAR_PROPERTY = "flink-bridge.bench.jar";
    /** JVM options added to the worker's defaults, such as a flight recording for {@code bench --profile}. */
    static final String WORKER_JVM_OPTIONS_PROPERTY = "flink-bridge.bench.worker-jvm-options";
    private static final String MAIN_CLASS = "org.flinkbridge.worker.WorkerMain";

    private BenchWorker() {}

    /** The command that starts a worker serving sessions; {@code extraArguments} go to the worker. */
    static List<String> command(List<String> extraArguments) {
        return command(List.of(), extraArguments);
    }

    /** The same, with {@code jvmOptions} added to the worker's JVM options. */
    static List<String> command(List<String> jvmOptions, List<String> extraArguments) {
        String classpath =
                requiredJar(BridgeOptions.WORKER_JAR.key(), "worker jar", "workers/java/target/worker-VERSION.jar")
                + File.pathSeparator
                + requiredJar(SEGMENT_JAR_PROPERTY, "jar with the echo step", "bench/target/bench-VERSION.jar");
        List<String> command = new ArrayList<>();
        command.add("java");
        command.addAll(List.of(BridgeOptions.WORKER_JVM_OPTIONS.defaultValue().trim().split("\\s+")));
        String extraOptions = System.getProperty(WORKER_JVM_OPTIONS_PROPERTY, "").trim();
        if (!extraOptions.isEmpty()) {
            command.addAll(List.of(extraOptions.split("\\s+")));
        }
        command.addAll(jvmOptions);
        command.addAll(List.of("--enable-native-access=ALL-UNNAMED", "-cp", classpath, MAIN_CLASS, "--port", "0"));
        command.addAll(extraArguments);
        return command;
    }

    /** The Python worker's echo segment (bench/src/main/python/bench_echo.py). */
    static final String PYTHON_ECHO_TYPE = "bench_echo.Echo";

    /**
     * The command that starts the Python worker of this checkout ({@code flink-bridge.home}), with the echo
     * segment's folder on its path; the interpreter and runtime come from the options the launcher sets.
     *
     * @param compat whether it serves the echo step as segment 0 of the prototype's service
     */
    static List<String> pythonCommand(boolean compat) {
        List<String> command = new ArrayList<>(List.of(pythonExecutable(), pythonRuntime().toString(),
                "--port", "0", "--path", pythonScripts().toString()));
        if (compat) {
            command.addAll(compatEcho(PYTHON_ECHO_TYPE));
        }
        return command;
    }

    /** The JSON step as a Python segment (bench/src/main/python/bench_json.py), for the Python and the Rust worker. */
    static final SessionSpec.Step PYTHON_JSON_STEP =
            new SessionSpec.Step("append_field", "bench_json.AppendField", "{}");
    /** The same step built in: what the Java worker (and the end-to-end job) runs. */
    static final SessionSpec.Step APPEND_FIELD =
            new SessionSpec.Step("add_processed", "append_field", "{\"field\":\"processed\",\"value\":true}");

    /** The same, sending the records it fails on to the dead letters. */
    static final SessionSpec.Step APPEND_FIELD_OR_DEAD_LETTER = new SessionSpec.Step(APPEND_FIELD.name(),
            APPEND_FIELD.type(), APPEND_FIELD.configJson(), true);

    /** The Rust worker's echo step, compiled into its binary. */
    static final String RUST_ECHO_TYPE = "flink_bridge_worker::Echo";

    /** The command that starts the Rust worker of this checkout (the binary the launcher names). */
    static List<String> rustCommand() {
        String binary = System.getProperty(BridgeOptions.RUST_WORKER.key());
        if (binary == null || !Files.isExecutable(Path.of(binary))) {
            throw new IllegalStateException("no Rust worker (-D" + BridgeOptions.RUST_WORKER.key() + "=" + binary
                    + "): run the benchmarks with ./flink-bridge bench, after ./flink-bridge build");
        }
        return new ArrayList<>(List.of(binary, "--port", "0"));
    }

    /** The same, hosting Python segments: this checkout's Python runtime, with this module's Python files. */
    static List<String> rustHostingPythonCommand() {
        List<String> command = rustCommand();
        command.addAll(List.of("--python-runtime", pythonRuntime().toString(), "--path", pythonScripts().toString()));
        return command;
    }

    static String pythonExecutable() {
        return System.getProperty(BridgeOptions.PYTHON_EXECUTABLE.key(), BridgeOptions.PYTHON_EXECUTABLE.defaultValue());
    }

    /** The Python worker's folder (workers/python/). */
    static Path pythonRuntime() {
        return Path.of(System.getProperty(BridgeOptions.PYTHON_RUNTIME.key(),
                Path.of(System.getProperty("flink-bridge.home", "."), "workers", "python").toString()));
    }

    /** This module's Python files: the echo segment and the Python ceiling's loop. */
    static Path pythonScripts() {
        return Path.of(System.getProperty("flink-bridge.home", "."), "bench", "src", "main", "python");
    }

    /**
     * A session of one step with the default settings of a pipeline and of the deployment options, the way a
     * bridge function opens it.
     */
    static SessionSpec sessionSpec(String jobName, SessionSpec.Step step, TransportMode mode,
                                   List<String> workerCommand) {
        return sessionSpec(jobName, step, mode, workerCommand, SessionSpec.Recovery.defaults());
    }

    /** The same, with {@code recovery} instead of the default (recovery in place, with its journal). */
    static SessionSpec sessionSpec(String jobName, SessionSpec.Step step, TransportMode mode,
                                   List<String> workerCommand, SessionSpec.Recovery recovery) {
        return new SessionSpec(jobName, 0, step.name(), List.of(step), mode, null,
                BridgeOptions.ALLOW_PLAINTEXT_REMOTE.defaultValue(), workerCommand,
                BridgeSettings.DEFAULT_MAX_IN_FLIGHT, BridgeSettings.DEFAULT_WORKER_TIMEOUT_MS,
                BridgeOptions.GRPC_BATCH_FRAMES.defaultValue(),
                SessionSpec.ShmSettings.defaults(), recovery, BridgeOptions.MAX_SNAPSHOT_SIZE.defaultValue().getBytes());
    }

    /**
     * A pipeline file whose only segment is the echo step, for the prototype's unary service: that service
     * has no sessions, so the worker learns its segments from a file given with {@code --pipeline}.
     */
    /** The worker arguments that serve the echo step of {@code type} as segment 0 of the prototype's service. */
    static List<String> compatEcho(String type) {
        return List.of(CompatSegments.OPTION, CompatSegments.toJson(Map.of(0, List.of(
                StepSpec.newBuilder().setName("echo").setType(type).setConfigJson("{}").build()))));
    }

    private static String requiredJar(String property, String what, String hint) {
        String jar = System.getProperty(property);
        if (jar == null) {
            throw new IllegalStateException("no " + what + ": run the benchmarks with ./flink-bridge bench, "
                    + "or give -D" + property + "=" + hint);
        }
        Path path = Path.of(jar).toAbsolutePath();
        if (!Files.isReadable(path)) {
            throw new IllegalStateException("the " + what + " " + path + " (-D" + property
                    + ") does not exist or is not readable; build it with ./flink-bridge build");
        }
        return path.toString();
    }
}
