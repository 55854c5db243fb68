package org.flinkbridge.kafka;

import org.apache.flink.api.common.TaskInfo;
import org.apache.flink.api.connector.sink2.Committer;
import org.apache.flink.api.connector.sink2.CommitterInitContext;
import org.apache.flink.api.connector.sink2.InitContext;
import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.sink2.StatefulSinkWriter;
import org.apache.flink.api.connector.sink2.SupportsCommitter;
import org.apache.flink.api.connector.sink2.SupportsWriterState;
import org.apache.flink.api.connector.sink2.WriterInitContext;
import org.apache.flink.core.io.SimpleVersionedSerializer;
import org.flinkbridge.pipeline.Delivery;
import org.flinkbridge.pipeline.KafkaSinkSpec;

import java.io.IOException;
import java.util.Collection;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import org.flinkbridge.records.BridgeRecord;

/**
 * Exactly-once delivery to Kafka through transactions committed when checkpoints complete: each writer writes
 * the records between two checkpoints in one transaction and hands it to the committer at the checkpoint; the
 * committer commits it once the checkpoint is complete (see {@link TransactionalId} for the ids). On start-up
 * each writer aborts the lingering transactions of its share that no checkpoint holds, at any earlier
 * parallelism.
 *
 * <p>A committing sink with a writer and a committer but no pre-write, pre-commit or post-commit topology, which
 * is what DSv2's {@code DataStreamV2SinkUtils.wrapSink} accepts (the connector's {@code KafkaSink} has a
 * post-commit topology).
 */
public final class ExactlyOnceKafkaSink implements Sink<BridgeRecord>, SupportsCommitter<KafkaTransaction>,
        SupportsWriterState<BridgeRecord, String> {

    private final KafkaSinkSpec spec;

    public ExactlyOnceKafkaSink(KafkaSinkSpec spec) {
        if (spec.delivery() != Delivery.EXACTLY_ONCE) {
            throw new IllegalArgumentException("kafka sink " + spec.name() + " is " + spec.delivery().configName()
                    + ", not " + Delivery.EXACTLY_ONCE.configName());
        }
        this.spec = spec;
    }

    @Override
    public StatefulSinkWriter<BridgeRecord, String> createWriter(WriterInitContext context) throws IOException {
        return restoreWriter(context, List.of());
    }

    /** @param prefixes the transactional id prefixes of the restored writers */
    @Override
    public StatefulSinkWriter<BridgeRecord, String> restoreWriter(WriterInitContext context,
                                                                  Collection<String> prefixes) throws IOException {
        TaskInfo task = context.getTaskInfo();
        long restoredCheckpointId = restoredCheckpointId(context);
        Set<String> allPrefixes = new TreeSet<>(prefixes);
        allPrefixes.add(spec.transactionalIdPrefix());
        LingeringTransactions.abort(spec, allPrefixes, task.getIndexOfThisSubtask(),
                task.getNumberOfParallelSubtasks(), restoredCheckpointId);
        return new TransactionalKafkaWriter(spec, task.getIndexOfThisSubtask(), restoredCheckpointId);
    }

    @Override
    public SimpleVersionedSerializer<String> getWriterStateSerializer() {
        return new TransactionalIdPrefixSerializer();
    }

    @Override
    public Committer<KafkaTransaction> createCommitter(CommitterInitContext context) {
        return new KafkaTransactionCommitter(spec, restoredCheckpointId(context));
    }

    @Override
    public SimpleVersionedSerializer<KafkaTransaction> getCommittableSerializer() {
        return new KafkaTransactionSerializer();
    }

    /** The checkpoint the job was restored from, or 0 (checkpoint ids start at 1). */
    private static long restoredCheckpointId(InitContext context) {
        return context.getRestoredCheckpointId().orElse(InitContext.INITIAL_CHECKPOINT_ID - 1);
    }
}
