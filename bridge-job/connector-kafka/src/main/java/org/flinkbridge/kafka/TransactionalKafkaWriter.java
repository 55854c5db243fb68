package org.flinkbridge.kafka;

import org.apache.flink.api.connector.sink2.CommittingSinkWriter;
import org.apache.flink.api.connector.sink2.StatefulSinkWriter;
import org.flinkbridge.pipeline.KafkaSinkSpec;

import java.io.IOException;
import java.util.Collection;
import java.util.List;
import org.flinkbridge.records.BridgeRecord;

/**
 * Writes the records between two checkpoints in one Kafka transaction, begun with the first of them. At each
 * checkpoint (and at the end of input) it flushes the transaction and hands it to the committer, which commits
 * it once the checkpoint is complete. Its state is its transactional id prefix, so that a restore under another
 * prefix still finds the old one's lingering transactions.
 */
final class TransactionalKafkaWriter
        implements CommittingSinkWriter<BridgeRecord, KafkaTransaction>, StatefulSinkWriter<BridgeRecord, String> {

    private final KafkaSinkSpec spec;
    private final KafkaRecordEncoder encoder;
    private final int subtask;
    private long lastCheckpointId;
    private OpenTransaction current;

    /** @param lastCheckpointId the restored checkpoint, or 0 */
    TransactionalKafkaWriter(KafkaSinkSpec spec, int subtask, long lastCheckpointId) {
        this.spec = spec;
        this.encoder = new KafkaRecordEncoder(spec);
        this.subtask = subtask;
        this.lastCheckpointId = lastCheckpointId;
    }

    @Override
    public void write(BridgeRecord record, Context context) throws IOException {
        if (current == null) {
            current = OpenTransaction.begin(spec,
                    new TransactionalId(spec.transactionalIdPrefix(), subtask, lastCheckpointId + 1));
        }
        current.send(encoder.encode(record));
    }

    @Override
    public void flush(boolean endOfInput) throws IOException {
        if (current != null) {
            current.flush();
        }
    }

    @Override
    public Collection<KafkaTransaction> prepareCommit() throws IOException {
        if (current == null) {
            return List.of();
        }
        KafkaTransaction transaction = current.handOver();
        current = null;
        return List.of(transaction);
    }

    @Override
    public List<String> snapshotState(long checkpointId) {
        lastCheckpointId = checkpointId;
        return List.of(spec.transactionalIdPrefix());
    }

    /** Aborts a transaction no checkpoint has taken: the job failed or was cancelled, and its records go again. */
    @Override
    public void close() {
        if (current != null) {
            OpenTransaction unfinished = current;
            current = null;
            unfinished.abort();
        }
    }
}
