package org.flinkbridge.pipeline;

import java.io.Serializable;

/** One entry of the pipeline file's {@code sinks}; every sink receives the final stream. */
public sealed interface SinkSpec extends Serializable permits FileSinkSpec, PrintSinkSpec, KafkaSinkSpec {

    /** The key under {@code sinks}, unique within the pipeline. */
    String name();

    /** Whether the sink only works with checkpointing on ({@code bridge.checkpoint_interval_ms} above 0). */
    default boolean needsCheckpoints() {
        return false;
    }
}
