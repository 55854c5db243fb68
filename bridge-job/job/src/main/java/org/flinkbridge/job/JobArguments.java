package org.flinkbridge.job;

import org.flinkbridge.bridge.BridgeOptions;
import org.flinkbridge.pipeline.BridgeSettings;
import org.flinkbridge.pipeline.GrpcMode;
import org.flinkbridge.pipeline.Pipeline;
import org.flinkbridge.pipeline.PipelineParser;
import org.flinkbridge.pipeline.Transport;
import org.flinkbridge.pipeline.WorkerLanguage;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The job's command line: {@code [--pipeline] FILE [--transport=shm|grpc] [--grpc-mode=stream|compat]
 * [--worker-address HOST:PORT] [--worker=java|python|rust] [--worker-jar JAR] [--output DIR] [--parallelism N] [-Dkey=value ...]}.
 * Flags override the pipeline file's {@code bridge} section; {@code -D} sets a Flink configuration option
 * of the job (such as the {@link BridgeOptions}). Both {@code --flag value} and {@code --flag=value} work.
 */
public record JobArguments(Path pipelineFile, Transport transport, GrpcMode grpcMode, String workerAddress,
                           WorkerLanguage worker, String workerJar, String output, Integer parallelism,
                           Map<String, String> options) {

    public static final String USAGE = "usage: [--pipeline] FILE [--transport=shm|grpc] "
            + "[--grpc-mode=stream|compat] [--worker-address HOST:PORT] [--worker=java|python|rust] [--worker-jar JAR] "
            + "[--output DIR] [--parallelism N] [-Dkey=value ...]";

    public JobArguments {
        options = Map.copyOf(options);
    }

    /** @param defaultPipeline used when no pipeline is given (null: one is required) */
    public static JobArguments parse(String[] args, Path defaultPipeline) {
        Path pipeline = null;
        Transport transport = null;
        GrpcMode grpcMode = null;
        String workerAddress = null;
        String workerJar = null;
        WorkerLanguage worker = null;
        String output = null;
        Integer parallelism = null;
        Map<String, String> options = new LinkedHashMap<>();
        for (int i = 0; i < args.length; i++) {
            String arg = args[i];
            if (arg.startsWith("-D")) {
                int equals = arg.indexOf('=');
                if (equals <= 2) {
                    throw new IllegalArgumentException("'" + arg + "' must be -Dkey=value; " + USAGE);
                }
                options.put(arg.substring(2, equals), arg.substring(equals + 1));
                continue;
            }
            String name = arg;
            String value = null;
            int equals = arg.indexOf('=');
            if (arg.startsWith("--") && equals > 0) {
                name = arg.substring(0, equals);
                value = arg.substring(equals + 1);
            }
            if (!name.startsWith("--")) {
                if (pipeline != null) {
                    throw new IllegalArgumentException("more than one pipeline file given ('" + pipeline
                            + "' and '" + arg + "'); " + USAGE);
                }
                pipeline = Path.of(arg);
                continue;
            }
            if (value == null) {
                if (i + 1 >= args.length) {
                    throw new IllegalArgumentException(name + " needs a value; " + USAGE);
                }
                value = args[++i];
            }
            switch (name) {
                case "--pipeline" -> pipeline = Path.of(value);
                case "--transport" -> transport = parsed(name, value, Transport::parse);
                case "--grpc-mode" -> grpcMode = parsed(name, value, GrpcMode::parse);
                case "--worker-address" -> workerAddress = value;
                case "--worker-jar" -> workerJar = value;
                case "--worker" -> worker = parsed(name, value, WorkerLanguage::parse);
                case "--output" -> output = value;
                case "--parallelism" -> parallelism = parsePositive(name, value);
                default -> throw new IllegalArgumentException("unknown option '" + name + "'; " + USAGE);
            }
        }
        if (pipeline == null) {
            if (defaultPipeline == null) {
                throw new IllegalArgumentException("no pipeline file given; " + USAGE);
            }
            pipeline = defaultPipeline;
        }
        return new JobArguments(pipeline, transport, grpcMode, workerAddress, worker, workerJar, output, parallelism,
                options);
    }

    /** The pipeline file with the command line's overrides applied. */
    public Pipeline loadPipeline() {
        Pipeline pipeline = PipelineParser.parse(pipelineFile);
        BridgeSettings bridge = pipeline.bridge();
        return pipeline.withBridge(bridge.overriddenBy(bridge.transport().override(transport, grpcMode), workerAddress,
                worker, parallelism));
    }

    /** {@code value} parsed as one of a model enum's names; the error names the option. */
    private static <E> E parsed(String option, String value, java.util.function.Function<String, E> parse) {
        try {
            return parse.apply(value);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(option + ": " + e.getMessage(), e);
        }
    }

    private static int parsePositive(String option, String value) {
        try {
            int parsed = Integer.parseInt(value);
            if (parsed >= 1) {
                return parsed;
            }
        } catch (NumberFormatException ignored) {
            // reported below
        }
        throw new IllegalArgumentException(option + " must be a whole number >= 1, not '" + value + "'");
    }
}
