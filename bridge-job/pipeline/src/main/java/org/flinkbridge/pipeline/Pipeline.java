package org.flinkbridge.pipeline;

import java.io.Serial;
import java.io.Serializable;
import java.nio.file.Path;
import java.util.List;

/**
 * A parsed pipeline file: sources (unioned), segments of steps run by the worker in order, sinks (each gets
 * the final stream), the bridge settings, and where records that dead-letter steps fail on go.
 *
 * @param file        the file it was read from
 * @param segments    in pipeline order; segment {@code i} has id {@code i}
 * @param deadLetters the sink of the records steps with on_error: dead_letter fail on; null when none is named
 */
public record Pipeline(
        String name,
        Path file,
        List<SourceSpec> sources,
        List<SegmentSpec> segments,
        List<SinkSpec> sinks,
        BridgeSettings bridge,
        SinkSpec deadLetters) implements Serializable {

    /** A pipeline with no dead letters. */
    public Pipeline(String name, Path file, List<SourceSpec> sources, List<SegmentSpec> segments,
                    List<SinkSpec> sinks, BridgeSettings bridge) {
        this(name, file, sources, segments, sinks, bridge, null);
    }

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
        requireExactlyOnceOrAccepted(segments, bridge);
        List<String> deadLetterSteps = segments.stream().flatMap(segment -> segment.steps().stream())
                .filter(step -> step.onError() == OnError.DEAD_LETTER).map(StepSpec::name).toList();
        if (!deadLetterSteps.isEmpty() && deadLetters == null) {
            throw new IllegalArgumentException("steps " + deadLetterSteps + " say on_error: dead_letter, but the "
                    + "pipeline names no dead_letters sink");
        }
        if (!deadLetterSteps.isEmpty() && !bridge.transport().checkpointsWorkerState()) {
            throw new IllegalArgumentException("steps " + deadLetterSteps + " say on_error: dead_letter, which "
                    + "grpc_mode compat (the prototype's unary service) cannot answer: use transport shm or "
                    + "grpc_mode stream");
        }
        if (deadLetters != null && deadLetters.needsCheckpoints() && bridge.checkpointIntervalMs() == 0) {
            throw new IllegalArgumentException("the dead_letters sink needs checkpointing, but the checkpoint "
                    + "interval is 0 (off)");
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

    /**
     * The prototype's unary service (grpc_mode compat) has no checkpoint barriers and keeps the worker's state
     * out of Flink's checkpoints: after a restore, a step that keeps state would see again inputs whose effect
     * its state already holds. With checkpointing on that is not exactly-once, so it is refused unless the
     * file accepts at-least-once.
     */
    private static void requireExactlyOnceOrAccepted(List<SegmentSpec> segments, BridgeSettings bridge) {
        if (bridge.transport().checkpointsWorkerState()
                || bridge.checkpointIntervalMs() == 0 || bridge.acceptAtLeastOnce()) {
            return;
        }
        List<String> stateful = segments.stream().flatMap(segment -> segment.steps().stream())
                .filter(step -> !step.keepsNoState()).map(step -> step.name() + " (" + step.type() + ")").toList();
        if (!stateful.isEmpty()) {
            throw new IllegalArgumentException("grpc_mode compat (the prototype's unary service) has no checkpoint "
                    + "barriers and keeps worker state out of Flink's checkpoints, so with checkpointing on the "
                    + "steps that may keep state, " + String.join(", ", stateful) + ", cannot be exactly-once: use "
                    + "transport shm or grpc_mode stream, or set accept_at_least_once: true in the bridge section "
                    + "to run them at least once");
        }
    }

    public Pipeline withBridge(BridgeSettings newBridge) {
        return new Pipeline(name, file, sources, segments, sinks, newBridge, deadLetters);
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
        return new SerializedPipeline(name, file.toString(), sources, segments, sinks, bridge, deadLetters);
    }

    private record SerializedPipeline(
            String name,
            String file,
            List<SourceSpec> sources,
            List<SegmentSpec> segments,
            List<SinkSpec> sinks,
            BridgeSettings bridge,
            SinkSpec deadLetters) implements Serializable {

        @Serial
        private Object readResolve() {
            return new Pipeline(name, Path.of(file), sources, segments, sinks, bridge, deadLetters);
        }
    }
}
