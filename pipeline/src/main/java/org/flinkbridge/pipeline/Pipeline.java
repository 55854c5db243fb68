package org.flinkbridge.pipeline;

import java.io.Serial;
import java.io.Serializable;
import java.nio.file.Path;
import java.util.List;

/**
 * A parsed pipeline file: sources (unioned), segments of steps run by the worker in order, sinks (each gets
 * the final stream) and the bridge settings.
 *
 * @param file     the file it was read from
 * @param segments in pipeline order; segment {@code i} has id {@code i}
 */
public record Pipeline(
        String name,
        Path file,
        List<SourceSpec> sources,
        List<SegmentSpec> segments,
        List<SinkSpec> sinks,
        BridgeSettings bridge) implements Serializable {

    public Pipeline {
        Checks.nonBlank(name, "pipeline name");
        if (file == null || bridge == null) {
            throw new IllegalArgumentException("pipeline file and bridge settings must not be null");
        }
        sources = nonEmpty(sources, "source");
        segments = nonEmpty(segments, "segment");
        sinks = nonEmpty(sinks, "sink");
        for (int i = 0; i < segments.size(); i++) {
            if (segments.get(i).id() != i) {
                throw new IllegalArgumentException("segment " + segments.get(i).name() + " must have id " + i
                        + " (its position) but has " + segments.get(i).id());
            }
        }
        if (bridge.checkpointIntervalMs() == 0) {
            for (SinkSpec sink : sinks) {
                if (sink.needsCheckpoints()) {
                    throw new IllegalArgumentException("sink " + sink.name()
                            + " needs checkpointing, but the checkpoint interval is 0 (off)");
                }
            }
        }
    }

    public Pipeline withBridge(BridgeSettings newBridge) {
        return new Pipeline(name, file, sources, segments, sinks, newBridge);
    }

    private static <T> List<T> nonEmpty(List<T> list, String what) {
        List<T> copy = List.copyOf(list);
        if (copy.isEmpty()) {
            throw new IllegalArgumentException("a pipeline needs at least one " + what);
        }
        return copy;
    }

    // Path is not serializable: ship the file name as a string and rebuild the record on the other side.
    @Serial
    private Object writeReplace() {
        return new SerializedPipeline(name, file.toString(), sources, segments, sinks, bridge);
    }

    private record SerializedPipeline(
            String name,
            String file,
            List<SourceSpec> sources,
            List<SegmentSpec> segments,
            List<SinkSpec> sinks,
            BridgeSettings bridge) implements Serializable {

        @Serial
        private Object readResolve() {
            return new Pipeline(name, Path.of(file), sources, segments, sinks, bridge);
        }
    }
}
