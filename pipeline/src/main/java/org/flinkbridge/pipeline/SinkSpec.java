package org.flinkbridge.pipeline;

import java.io.Serializable;

/** One entry of the pipeline file's {@code sinks}; every sink receives the final stream. */
public sealed interface SinkSpec extends Serializable permits FileSinkSpec, PrintSinkSpec {

    /** The key under {@code sinks}, unique within the pipeline. */
    String name();
}
