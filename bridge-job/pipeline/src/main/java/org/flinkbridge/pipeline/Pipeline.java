package org.flinkbridge.pipeline;

import java.io.Serial;
import java.io.Serializable;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

/**
 * A parsed pipeline file: sources (unioned), the main steps and the branches they lead to (each a {@link Flow}
 * of segments run by the worker, ending in sinks, a route, a broadcast or another branch), the bridge
 * settings, and where records that dead-letter steps fail on go. A pipeline without branches is a line:
 * sources, segments, then sinks that each receive the final stream.
 *
 * @param file        the file it was read from
 * @param main        the steps the sources' records enter first
 * @param branches    branch name → branch, in the file's order
 * @param deadLetters the sink of the records steps with on_error: dead_letter fail on; null when none is named
 */
public record Pipeline(
        String name,
        Path file,
        List<SourceSpec> sources,
        Flow main,
        Map<String, Flow> branches,
        BridgeSettings bridge,
        SinkSpec deadLetters) implements Serializable {

    /** A linear pipeline with no dead letters. */
    public Pipeline(String name, Path file, List<SourceSpec> sources, List<SegmentSpec> segments,
                    List<SinkSpec> sinks, BridgeSettings bridge) {
        this(name, file, sources, Flow.linear(segments, sinks), Map.of(), bridge, null);
    }

    public Pipeline {
        Checks.nonBlank(name, "pipeline name");
        if (file == null || bridge == null || main == null) {
            throw new IllegalArgumentException("pipeline file, main steps and bridge settings must not be null");
        }
        if (!main.isMain()) {
            throw new IllegalArgumentException("the main steps are not a branch, but got " + main.describe());
        }
        sources = nonEmpty(sources, "source");
        branches = Collections.unmodifiableMap(new LinkedHashMap<>(branches));
        branches.forEach((branch, flow) -> {
            if (!branch.equals(flow.branch())) {
                throw new IllegalArgumentException("branch " + branch + " holds " + flow.describe());
            }
        });
        GraphCheck.check(main, branches).ifPresent(fault -> {
            throw new IllegalArgumentException(fault.message());
        });
        List<SegmentSpec> segments = nonEmpty(segments(main, branches), "segment");
        for (int i = 0; i < segments.size(); i++) {
            if (segments.get(i).id() != i) {
                throw new IllegalArgumentException("segment " + segments.get(i).name() + " must have id " + i
                        + " (its position) but has " + segments.get(i).id());
            }
        }
        requireUnique(segments.stream().map(SegmentSpec::name), "segment");
        requireUnique(Stream.concat(sinks(main, branches).stream(), Stream.ofNullable(deadLetters))
                .map(SinkSpec::name), "sink");
        if (bridge.key() != null && main.segments().isEmpty()) {
            throw new IllegalArgumentException("bridge.key partitions the first segment of the main steps, but the "
                    + "main steps have none (they start with " + main.end().getClass().getSimpleName().toLowerCase()
                    + ")");
        }
        if (bridge.key() != null && main.segments().getFirst().key() != null) {
            throw new IllegalArgumentException("segment " + main.segments().getFirst().name() + " is keyed twice, by "
                    + "bridge.key and by its own key under segments: give its key in one place");
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
            for (SinkSpec sink : sinks(main, branches)) {
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

    /** Every segment, main steps first, then the branches in the file's order: segment {@code i} has id {@code i}. */
    public List<SegmentSpec> segments() {
        return segments(main, branches);
    }

    /** Every sink of the graph (not the dead-letters sink), in the same order. */
    public List<SinkSpec> sinks() {
        return sinks(main, branches);
    }

    /**
     * What the job keys the stream by before {@code segment}: its own key, or for the first segment of the main steps
     * the bridge section's; null when the segment is not keyed.
     */
    public KeySpec keyOf(SegmentSpec segment) {
        if (segment.key() != null) {
            return segment.key();
        }
        return !main.segments().isEmpty() && main.segments().getFirst().id() == segment.id() ? bridge.key() : null;
    }

    /** The flows, main steps first. */
    public List<Flow> flows() {
        List<Flow> flows = new ArrayList<>(branches.size() + 1);
        flows.add(main);
        flows.addAll(branches.values());
        return flows;
    }

    public Pipeline withBridge(BridgeSettings newBridge) {
        return new Pipeline(name, file, sources, main, branches, newBridge, deadLetters);
    }

    private static List<SegmentSpec> segments(Flow main, Map<String, Flow> branches) {
        return Stream.concat(Stream.of(main), branches.values().stream())
                .flatMap(flow -> flow.segments().stream()).toList();
    }

    private static List<SinkSpec> sinks(Flow main, Map<String, Flow> branches) {
        return Stream.concat(Stream.of(main), branches.values().stream())
                .flatMap(flow -> flow.end() instanceof FlowEnd.Sinks end ? end.sinks().stream() : Stream.empty())
                .toList();
    }

    private static void requireUnique(Stream<String> names, String what) {
        Set<String> seen = new HashSet<>();
        names.filter(name -> !seen.add(name)).findFirst().ifPresent(name -> {
            throw new IllegalArgumentException("two " + what + "s are named " + name + ": " + what
                    + " names must be unique in a pipeline");
        });
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
        return new SerializedPipeline(name, file.toString(), sources, main, branches, bridge, deadLetters);
    }

    private record SerializedPipeline(
            String name,
            String file,
            List<SourceSpec> sources,
            Flow main,
            Map<String, Flow> branches,
            BridgeSettings bridge,
            SinkSpec deadLetters) implements Serializable {

        @Serial
        private Object readResolve() {
            return new Pipeline(name, Path.of(file), sources, main, branches, bridge, deadLetters);
        }
    }
}
