package org.flinkbridge.job;

import org.apache.flink.datastream.api.stream.NonKeyedPartitionStream;
import org.flinkbridge.job.io.RouteFilter;
import org.flinkbridge.job.io.Union;
import org.flinkbridge.pipeline.Flow;
import org.flinkbridge.pipeline.FlowEnd;
import org.flinkbridge.pipeline.Pipeline;
import org.flinkbridge.pipeline.SegmentSpec;
import org.flinkbridge.records.BridgeRecord;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Queue;

/**
 * Lays a pipeline's graph out in the job: each flow's segments in a row, then its end: sinks; a route, as one
 * filter per branch; a broadcast, as the same stream fed to every branch; or a join. A branch is built once
 * every flow that sends it records is, on the union of their streams.
 */
final class FlowGraph {

    /** Applies one segment to a stream. */
    interface SegmentStep {
        /**
         * @param countSent     whether the segment's inputs are the job's records sent to workers (no segment
         *                      before it on any path from the sources)
         * @param countReceived whether its outputs are the job's records received back (no segment after it on
         *                      some path to the sinks)
         */
        NonKeyedPartitionStream<BridgeRecord> apply(NonKeyedPartitionStream<BridgeRecord> input, SegmentSpec segment,
                                                    boolean countSent, boolean countReceived);
    }

    /** Writes a flow's stream to the sinks it ends in. */
    interface SinkStep {
        void attach(NonKeyedPartitionStream<BridgeRecord> stream, FlowEnd.Sinks sinks);
    }

    private final Pipeline pipeline;
    private final Map<String, List<Flow>> sendersByBranch = new HashMap<>();

    private FlowGraph(Pipeline pipeline) {
        this.pipeline = pipeline;
        for (Flow flow : pipeline.flows()) {
            for (String target : flow.end().targets()) {
                sendersByBranch.computeIfAbsent(target, branch -> new ArrayList<>()).add(flow);
            }
        }
    }

    static void build(Pipeline pipeline, NonKeyedPartitionStream<BridgeRecord> sources, SegmentStep segments,
                      SinkStep sinks) {
        new FlowGraph(pipeline).build(sources, segments, sinks);
    }

    private void build(NonKeyedPartitionStream<BridgeRecord> sources, SegmentStep segments, SinkStep sinks) {
        Map<String, List<NonKeyedPartitionStream<BridgeRecord>>> inputs = new HashMap<>();
        Queue<Flow> ready = new ArrayDeque<>(List.of(pipeline.main()));
        while (!ready.isEmpty()) {
            Flow flow = ready.remove();
            NonKeyedPartitionStream<BridgeRecord> stream =
                    flow.isMain() ? sources : union(flow, inputs.get(flow.branch()));
            List<SegmentSpec> flowSegments = flow.segments();
            for (int i = 0; i < flowSegments.size(); i++) {
                stream = segments.apply(stream, flowSegments.get(i), i == 0 && fromSourcesDirectly(flow),
                        i == flowSegments.size() - 1 && toSinksDirectly(flow));
            }
            for (String target : flow.end().targets()) {
                NonKeyedPartitionStream<BridgeRecord> out = flow.end() instanceof FlowEnd.Route route
                        ? stream.process(new RouteFilter(route, target)).withName("route " + route.step() + " to "
                                + target)
                        : stream;
                List<NonKeyedPartitionStream<BridgeRecord>> targetInputs =
                        inputs.computeIfAbsent(target, branch -> new ArrayList<>());
                targetInputs.add(out);
                if (targetInputs.size() == sendersByBranch.get(target).size()) {
                    ready.add(pipeline.branches().get(target));
                }
            }
            if (flow.end() instanceof FlowEnd.Sinks end) {
                sinks.attach(stream, end);
            }
        }
    }

    private static NonKeyedPartitionStream<BridgeRecord> union(Flow branch,
                                                               List<NonKeyedPartitionStream<BridgeRecord>> inputs) {
        NonKeyedPartitionStream<BridgeRecord> union = inputs.getFirst();
        for (NonKeyedPartitionStream<BridgeRecord> next : inputs.subList(1, inputs.size())) {
            union = union.connectAndProcess(next, new Union()).withName("union into branch " + branch.branch());
        }
        return union;
    }

    /** Whether records reach the flow from the sources through no segment. */
    private boolean fromSourcesDirectly(Flow flow) {
        return flow.isMain() || sendersByBranch.get(flow.branch()).stream()
                .anyMatch(sender -> sender.segments().isEmpty() && fromSourcesDirectly(sender));
    }

    /** Whether records leaving the flow reach some sink through no segment. */
    private boolean toSinksDirectly(Flow flow) {
        return flow.end() instanceof FlowEnd.Sinks || flow.end().targets().stream()
                .map(pipeline.branches()::get)
                .anyMatch(target -> target.segments().isEmpty() && toSinksDirectly(target));
    }
}
