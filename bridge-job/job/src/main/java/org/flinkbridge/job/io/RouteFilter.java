package org.flinkbridge.job.io;

import org.apache.flink.datastream.api.common.Collector;
import org.apache.flink.datastream.api.context.PartitionedContext;
import org.apache.flink.datastream.api.function.OneInputStreamProcessFunction;
import org.flinkbridge.pipeline.FlowEnd;
import org.flinkbridge.records.BridgeRecord;
import org.flinkbridge.records.RecordKey;

/**
 * Passes on the records a route sends to one of its branches; the job puts one after the route's stream per
 * branch, so each record passes exactly one of them. A record without the header or field (or whose payload is
 * not a JSON object) has the empty value, which goes to the default branch unless a branch names it.
 */
public final class RouteFilter implements OneInputStreamProcessFunction<BridgeRecord, BridgeRecord> {

    private final FlowEnd.Route route;
    private final String branch;
    private final RecordKey value;

    public RouteFilter(FlowEnd.Route route, String branch) {
        if (!route.targets().contains(branch)) {
            throw new IllegalArgumentException("route " + route.step() + " sends nothing to branch " + branch);
        }
        this.route = route;
        this.branch = branch;
        this.value = new RecordKey(route.by());
    }

    @Override
    public void processRecord(BridgeRecord record, Collector<BridgeRecord> output,
                              PartitionedContext<BridgeRecord> ctx) throws Exception {
        if (route.branchOf(value.getKey(record)).equals(branch)) {
            output.collect(record);
        }
    }
}
