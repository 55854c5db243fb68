package org.flinkbridge.runner;

import org.flinkbridge.job.JobArguments;
import org.flinkbridge.job.PipelineJob;
import org.apache.flink.api.common.JobExecutionResult;
import org.apache.flink.configuration.CheckpointingOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.HeartbeatManagerOptions;
import org.apache.flink.configuration.RestartStrategyOptions;
import org.apache.flink.configuration.StateRecoveryOptions;
import org.apache.flink.core.execution.DefaultExecutorServiceLoader;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.core.execution.JobListener;
import org.apache.flink.datastream.api.ExecutionEnvironment;
import org.apache.flink.datastream.impl.ExecutionEnvironmentImpl;
import org.apache.flink.streaming.api.graph.StreamGraph;
import org.apache.flink.util.ExceptionUtils;
import org.apache.flink.util.FileUtils;
import org.apache.flink.util.FlinkException;
import org.flinkbridge.bridge.JobCounters;
import org.flinkbridge.bridge.JobFailures;
import org.flinkbridge.job.io.OutputDirectories;
import org.flinkbridge.pipeline.FileSinkSpec;
import org.flinkbridge.pipeline.FlowEnd;
import org.flinkbridge.pipeline.KafkaSinkSpec;
import org.flinkbridge.pipeline.Pipeline;
import org.flinkbridge.pipeline.PipelineException;
import org.flinkbridge.pipeline.PrintSinkSpec;
import org.flinkbridge.pipeline.SinkSpec;
import org.flinkbridge.protocol.BuiltInStep;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;

/**
 * {@code ./flink-bridge run}: runs a pipeline on an embedded Flink MiniCluster in this JVM and ends with one
 * summary line of the records read, sent to the worker, received back and written, and where they went.
 */
public final class LocalRunner {

    /** The bundled example, relative to the project's home. */
    static final String EXAMPLE_PIPELINE = "docs/examples/pipeline.yaml";

    /** Restarts a run with checkpointing allows before it fails, unless it sets a restart strategy of its own. */
    static final int RESTART_ATTEMPTS = 3;

    /**
     * How often the JobManager asks the TaskManager for a heartbeat, unless the run sets it: each heartbeat brings the
     * tasks' accumulators, so this is how fresh the counts are that a {@link JobListener} reads mid-run (Flink's
     * default, 10 s, is longer than many a local run).
     */
    static final Duration HEARTBEAT_INTERVAL = Duration.ofMillis(250);

    private static final JobListener NO_LISTENER = new JobListener() {
        @Override
        public void onJobSubmitted(JobClient client, Throwable failure) {}

        @Override
        public void onJobExecuted(JobExecutionResult result, Throwable failure) {}
    };

    private LocalRunner() {}

    public static void main(String[] args) {
        try {
            System.out.println(run(args));
        } catch (PipelineException | IllegalArgumentException e) {
            System.err.println("flink-bridge: " + e.getMessage());
            System.exit(2);
        } catch (Exception e) {
            System.err.println("flink-bridge: the job failed: " + causeMessage(e));
            e.printStackTrace(System.err);
            System.exit(1);
        }
    }

    /** Runs the job to completion and returns its summary line. */
    public static String run(String[] args) throws Exception {
        return run(args, NO_LISTENER);
    }

    /**
     * Runs the job to completion and returns its summary line; {@code listener} is told of the job's client once it
     * is submitted, through which its {@link JobCounters} can be read as it runs, and of its end.
     */
    public static String run(String[] args, JobListener listener) throws Exception {
        String home = System.getProperty("flink-bridge.home", ".");
        JobArguments arguments = JobArguments.parse(args, Path.of(home, EXAMPLE_PIPELINE));
        Pipeline pipeline = arguments.loadPipeline();
        // A run restored from a checkpoint or savepoint goes on with the output the earlier run committed.
        if (!arguments.options().containsKey(StateRecoveryOptions.SAVEPOINT_PATH.key())) {
            for (SinkSpec sink : pipeline.sinks()) {
                if (sink instanceof FileSinkSpec file) {
                    OutputDirectories.prepare(Path.of(PipelineJob.filePath(pipeline, file, arguments.output())));
                }
            }
            if (pipeline.deadLetters() instanceof FileSinkSpec file) {
                OutputDirectories.prepare(Path.of(file.path()));
            }
        }
        ExecutionEnvironment env = ExecutionEnvironment.getInstance();
        PipelineJob.build(env, pipeline, arguments);
        Configuration config = ((ExecutionEnvironmentImpl) env).getConfiguration();
        Path checkpoints = keepCheckpointsInFiles(config);
        if (pipeline.bridge().checkpointIntervalMs() > 0 && !config.contains(RestartStrategyOptions.RESTART_STRATEGY)) {
            // With checkpointing on, Flink's default restarts a failing job forever (without, not at all), and
            // this runner prints nothing meanwhile: a few restarts ride out a passing fault, then the run ends
            // naming the cause.
            config.set(RestartStrategyOptions.RESTART_STRATEGY, "fixed-delay");
            config.set(RestartStrategyOptions.RESTART_STRATEGY_FIXED_DELAY_ATTEMPTS, RESTART_ATTEMPTS);
            config.set(RestartStrategyOptions.RESTART_STRATEGY_FIXED_DELAY_DELAY, Duration.ofSeconds(1));
        }
        if (!config.contains(HeartbeatManagerOptions.HEARTBEAT_INTERVAL)) {
            config.set(HeartbeatManagerOptions.HEARTBEAT_INTERVAL, HEARTBEAT_INTERVAL);
        }
        JobFailures.reset();
        StreamGraph graph = ((ExecutionEnvironmentImpl) env).getStreamGraph();
        graph.setJobName(pipeline.name());
        try {
            return summary(pipeline, arguments, execute(graph, config, listener).getAllAccumulatorResults());
        } finally {
            if (checkpoints != null) {
                FileUtils.deleteDirectoryQuietly(checkpoints.toFile());
            }
        }
    }

    /**
     * What the V2 environment's {@code execute} does (an embedded MiniCluster for the {@code local} target, waited
     * for, Flink's wrappers of a failure stripped as there), telling {@code listener} of the job's client and end.
     */
    private static JobExecutionResult execute(StreamGraph graph, Configuration config, JobListener listener)
            throws Exception {
        JobClient client;
        try {
            client = new DefaultExecutorServiceLoader().getExecutorFactory(config).getExecutor(config)
                    .execute(graph, config, LocalRunner.class.getClassLoader()).get();
        } catch (ExecutionException e) {
            listener.onJobSubmitted(null, e.getCause());
            throw new FlinkException("Failed to execute job '" + graph.getJobName() + "'.",
                    ExceptionUtils.stripExecutionException(e));
        }
        listener.onJobSubmitted(client, null);
        try {
            JobExecutionResult result = client.getJobExecutionResult().get();
            listener.onJobExecuted(result, null);
            return result;
        } catch (ExecutionException e) {
            Throwable failure = ExceptionUtils.stripExecutionException(e);
            listener.onJobExecuted(null, failure);
            if (failure instanceof Error error) {
                throw error;
            }
            throw failure instanceof Exception exception ? exception : new FlinkException(failure);
        }
    }

    /**
     * Unless the run names its checkpoint storage, checkpoints go to files in a temporary directory, removed
     * after the run: Flink's default keeps them in the JobManager's memory, which refuses any operator's
     * state over 5 MiB, and worker state is often larger.
     *
     * @return the temporary directory, or null when the run names its own storage
     */
    private static Path keepCheckpointsInFiles(Configuration config) throws IOException {
        if (config.contains(CheckpointingOptions.CHECKPOINT_STORAGE)
                || config.contains(CheckpointingOptions.CHECKPOINTS_DIRECTORY)) {
            return null;
        }
        Path directory = Files.createTempDirectory("flink-bridge-checkpoints-");
        config.set(CheckpointingOptions.CHECKPOINT_STORAGE, "filesystem");
        config.set(CheckpointingOptions.CHECKPOINTS_DIRECTORY, directory.toUri().toString());
        return directory;
    }

    /**
     * The summary line of a run whose job ended with {@code accumulators}. After a restart, the counts are those of
     * the restarted tasks since then ({@link JobCounters}), which account for no run's inputs.
     */
    static String summary(Pipeline pipeline, JobArguments arguments, Map<String, Object> accumulators) {
        List<String> outputs = new ArrayList<>();
        pipeline.sinks().forEach(sink -> outputs.add(describe(pipeline, sink, arguments.output())));
        long read = JobCounters.Count.READ.of(accumulators);
        long written = JobCounters.Count.WRITTEN.of(accumulators);
        long writtenInputs = JobCounters.Count.WRITTEN_INPUTS.of(accumulators);
        long recoveries = JobCounters.Count.WORKER_RECOVERIES.of(accumulators);
        long upgrades = JobCounters.Count.WORKER_UPGRADES.of(accumulators);
        long deadLetters = JobCounters.Count.DEAD_LETTERS.of(accumulators);
        boolean windows = pipeline.segments().stream().flatMap(segment -> segment.steps().stream())
                .anyMatch(step -> BuiltInStep.WINDOW.typeName().equals(step.type()));
        int restarts = JobCounters.restarts(accumulators);
        // A dead letter stands for an input that left the main stream, as a filtered one does.
        long accounted = writtenInputs + deadLetters;
        return "flink-bridge: pipeline '" + pipeline.name() + "' over " + pipeline.bridge().transport().describe()
                + ": read=" + read
                + " sent=" + JobCounters.Count.SENT.of(accumulators)
                + " received=" + JobCounters.Count.RECEIVED.of(accumulators)
                + " written=" + written + (writtenInputs != written ? " (holding " + writtenInputs + " inputs)" : "")
                + (recoveries > 0 ? " worker_recoveries=" + recoveries : "")
                + (upgrades > 0 ? " worker_upgrades=" + upgrades : "")
                + (pipeline.deadLetters() != null ? " dead_letters=" + deadLetters : "")
                + (windows ? " late_records=" + JobCounters.Count.LATE_RECORDS.of(accumulators) : "")
                + accounting(pipeline, read, accounted, restarts)
                + "; output: " + String.join(", ", outputs)
                + (pipeline.deadLetters() != null ? "; dead letters: " + describe(pipeline, pipeline.deadLetters(), null) : "");
    }

    /**
     * Whether every input is in the output or the dead letters; a broadcast writes a record once per branch, and
     * after a restart the counts are those since.
     */
    private static String accounting(Pipeline pipeline, long read, long accounted, int restarts) {
        if (restarts > 0) {
            return " restarts=" + restarts + " - counts since the last restart";
        }
        if (pipeline.flows().stream().anyMatch(flow -> flow.end() instanceof FlowEnd.Broadcast)) {
            return " - broadcasts write an input once per branch";
        }
        return accounted == read ? " - every input accounted for"
                : " - " + (read - accounted) + " inputs not in the output (filtered or aggregated)";
    }

    /** Where a sink writes; {@code output}, when set, replaces file sinks' paths. */
    private static String describe(Pipeline pipeline, SinkSpec sink, String output) {
        return switch (sink) {
            case FileSinkSpec file -> PipelineJob.filePath(pipeline, file, output);
            case KafkaSinkSpec kafka -> "Kafka topic " + kafka.topic() + " (" + kafka.delivery().name()
                    .toLowerCase(java.util.Locale.ROOT) + ")";
            case PrintSinkSpec print -> print.name() + " (stdout)";
        };
    }

    /**
     * The message of the deepest exception in the chain that the bridge itself raised, which names the
     * session and the cause; Flink's wrappers around it only say that the job failed. Where the chain holds
     * none (Flink reported a consequence of the bridge's failure first), the first failure the bridge raised
     * in this run.
     */
    static String causeMessage(Throwable e) {
        Throwable deepest = e;
        String ours = null;
        for (Throwable cause = e; cause != null; cause = cause.getCause() == cause ? null : cause.getCause()) {
            StackTraceElement[] trace = cause.getStackTrace();
            if (trace.length > 0 && trace[0].getClassName().startsWith("org.flinkbridge.") && cause.getMessage() != null) {
                ours = cause.getMessage();
            }
            deepest = cause;
        }
        if (ours != null) {
            return ours;
        }
        if (JobFailures.first() != null) {
            return JobFailures.first().getMessage();
        }
        return deepest.getMessage() == null ? deepest.toString() : deepest.getMessage();
    }
}
