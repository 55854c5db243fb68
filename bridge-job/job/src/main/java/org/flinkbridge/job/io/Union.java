package org.flinkbridge.job.io;

import org.apache.flink.datastream.api.common.Collector;
import org.apache.flink.datastream.api.context.PartitionedContext;
import org.apache.flink.datastream.api.function.TwoInputNonBroadcastStreamProcessFunction;
import org.flinkbridge.records.BridgeRecord;

/** Merges two streams, since the DataStream API V2 has no union: every record of either input goes on. */
public final class Union implements TwoInputNonBroadcastStreamProcessFunction<BridgeRecord, BridgeRecord, BridgeRecord> {

    @Override
    public void processRecordFromFirstInput(BridgeRecord record, Collector<BridgeRecord> output,
                                            PartitionedContext<BridgeRecord> ctx) {
        output.collect(record);
    }

    @Override
    public void processRecordFromSecondInput(BridgeRecord record, Collector<BridgeRecord> output,
                                             PartitionedContext<BridgeRecord> ctx) {
        output.collect(record);
    }
}
