package org.flinkbridge.job.io;

import org.apache.flink.api.common.accumulators.LongCounter;
import org.apache.flink.api.common.functions.AbstractRichFunction;
import org.apache.flink.datastream.api.common.Collector;
import org.apache.flink.datastream.api.context.NonPartitionedContext;
import org.apache.flink.datastream.api.context.PartitionedContext;
import org.apache.flink.datastream.api.function.OneInputStreamProcessFunction;
import org.apache.flink.metrics.Counter;
import org.flinkbridge.bridge.JobCounters;
import org.flinkbridge.records.BridgeRecord;

/**
 * Passes records through unchanged, counting them as the job's records read or written (a Flink metric and a
 * {@link JobCounters} accumulator). Written records also count the inputs they stand for: a batch counts its
 * {@code batch_size} header.
 *
 * <p>A rich function only to reach its task's accumulators, which the V2 contexts do not expose: Flink's V2 process
 * operator hands a rich function its runtime context as the operator's own.
 */
public final class CountingFunction extends AbstractRichFunction
        implements OneInputStreamProcessFunction<BridgeRecord, BridgeRecord> {

    static final String BATCH_SIZE_HEADER = "batch_size";

    private final JobCounters.Count count;
    private transient Counter metric;
    private transient LongCounter records;
    private transient LongCounter inputs;

    public CountingFunction(JobCounters.Count count) {
        if (count != JobCounters.Count.READ && count != JobCounters.Count.WRITTEN) {
            throw new IllegalArgumentException("counts only records read or written, not " + count);
        }
        this.count = count;
    }

    @Override
    public void open(NonPartitionedContext<BridgeRecord> ctx) {
        metric = ctx.getMetricGroup().counter(count == JobCounters.Count.READ ? "bridgeRecordsRead"
                : "bridgeRecordsWritten");
        records = count.in(getRuntimeContext());
        if (count == JobCounters.Count.WRITTEN) {
            inputs = JobCounters.Count.WRITTEN_INPUTS.in(getRuntimeContext());
        }
        JobCounters.countRestarts(getRuntimeContext());
    }

    @Override
    public void processRecord(BridgeRecord record, Collector<BridgeRecord> output,
                              PartitionedContext<BridgeRecord> ctx) {
        metric.inc();
        records.add(1L);
        if (inputs != null) {
            String batchSize = record.headers.get(BATCH_SIZE_HEADER);
            inputs.add(batchSize == null ? 1 : parseBatchSize(batchSize));
        }
        output.collect(record);
    }

    private static long parseBatchSize(String header) {
        try {
            return Long.parseLong(header);
        } catch (NumberFormatException e) {
            throw new IllegalStateException("a record reached the sinks with a " + BATCH_SIZE_HEADER
                    + " header that is not a number: '" + header + "'", e);
        }
    }
}
