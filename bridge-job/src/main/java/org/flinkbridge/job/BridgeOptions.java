package org.flinkbridge.job;

import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ConfigOptions;

import java.time.Duration;

/**
 * Job-wide settings that belong to the deployment rather than to a pipeline file: set them in the Flink
 * configuration or with {@code -D} on {@code flink run}. The pipeline's own settings live in its
 * {@code bridge} section.
 */
public final class BridgeOptions {

    public static final ConfigOption<String> WORKER_JAR = ConfigOptions.key("flink-bridge.worker.jar")
            .stringType()
            .noDefaultValue()
            .withDescription("The worker jar a TaskManager spawns (one worker process per TaskManager, shared by "
                    + "its sessions) when the pipeline names no worker address. The --worker-jar flag, the "
                    + "flink-bridge.worker.jar system property and the FLINK_BRIDGE_WORKER_JAR variable "
                    + "also set it, in that order of precedence after this option.");

    public static final ConfigOption<String> WORKER_JVM_OPTIONS = ConfigOptions.key("flink-bridge.worker.jvm-options")
            .stringType()
            .defaultValue("-Xmx1g -XX:+UseSerialGC")
            .withDescription("JVM options of a spawned worker, separated by spaces.");

    public static final ConfigOption<Integer> GRPC_BATCH_FRAMES = ConfigOptions.key("flink-bridge.grpc.batch-frames")
            .intType()
            .defaultValue(256)
            .withDescription("Frames per batch on the streamed gRPC data plane. A batch is also sent as soon as "
                    + "the bridge would otherwise wait, or when nothing else is in flight.");

    public static final ConfigOption<Duration> WATERMARK_INTERVAL = ConfigOptions.key("flink-bridge.watermark-interval")
            .durationType()
            .defaultValue(Duration.ofMillis(200))
            .withDescription("How often event-time watermarks, taken from the records' timestamps, advance while "
                    + "records flow. Each watermark also makes every bridge function emit the outputs it has.");

    private BridgeOptions() {}
}
