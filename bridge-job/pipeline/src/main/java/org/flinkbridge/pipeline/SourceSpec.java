package org.flinkbridge.pipeline;

import java.io.Serializable;

/** One entry of the pipeline file's {@code sources}; all sources of a pipeline are unioned. */
public sealed interface SourceSpec extends Serializable
        permits GeneratorSourceSpec, FileSourceSpec, KafkaSourceSpec {

    /** The key under {@code sources}, unique within the pipeline. */
    String name();

    /** Whether the source ends by itself; a pipeline whose sources are all bounded finishes. */
    boolean bounded();
}
