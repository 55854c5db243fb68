package org.flinkbridge.job.io.kafka;

import org.apache.flink.api.connector.sink2.Committer;
import org.apache.flink.connector.kafka.sink.internal.FlinkKafkaInternalProducer;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.errors.InvalidTxnStateException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.errors.RetriableException;
import org.flinkbridge.pipeline.KafkaSinkSpec;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.Collection;

/**
 * Commits the transactions of completed checkpoints: one producer resumes each by its producer id and epoch and
 * commits it. The producer is reused from one transaction to the next, and replaced after a failure.
 *
 * <p>A transaction that cannot be resumed because its producer was fenced has ended already. After a restore
 * (it belongs to the restored checkpoint or an earlier one) or a retry, that is normal: it was committed before.
 * Otherwise the broker aborted it, its transaction timeout having run out before its checkpoint completed, and
 * its records are lost: that fails the job rather than pass unnoticed.
 */
final class KafkaTransactionCommitter implements Committer<KafkaTransaction> {

    private static final Logger LOG = LoggerFactory.getLogger(KafkaTransactionCommitter.class);

    private final KafkaSinkSpec spec;
    private final long restoredCheckpointId;
    private FlinkKafkaInternalProducer<byte[], byte[]> producer;

    /** @param restoredCheckpointId the checkpoint the job was restored from, or 0 */
    KafkaTransactionCommitter(KafkaSinkSpec spec, long restoredCheckpointId) {
        this.spec = spec;
        this.restoredCheckpointId = restoredCheckpointId;
    }

    @Override
    public void commit(Collection<CommitRequest<KafkaTransaction>> requests) {
        for (CommitRequest<KafkaTransaction> request : requests) {
            commit(request);
        }
    }

    private void commit(CommitRequest<KafkaTransaction> request) {
        KafkaTransaction transaction = request.getCommittable();
        try {
            FlinkKafkaInternalProducer<byte[], byte[]> resumed = producerFor(transaction.id());
            resumed.resumeTransaction(transaction.producerId(), transaction.epoch());
            resumed.commitTransaction();
        } catch (ProducerFencedException | InvalidProducerEpochException | InvalidTxnStateException ended) {
            discardProducer();
            if (transaction.id().checkpointId() <= restoredCheckpointId || request.getNumberOfRetries() > 0) {
                LOG.info("kafka sink '{}': transaction {} was committed before", spec.name(), transaction.id());
                request.signalAlreadyCommitted();
            } else {
                request.signalFailedWithUnknownReason(new IllegalStateException("kafka sink '" + spec.name()
                        + "': the broker aborted transaction " + transaction.id() + " before its checkpoint"
                        + " completed, so its records are lost; raise transaction.timeout.ms in the sink's"
                        + " properties above the time checkpoints take (" + ended.getMessage() + ")", ended));
            }
        } catch (RetriableException e) {
            discardProducer();
            LOG.warn("kafka sink '{}': committing transaction {} failed, will retry: {}", spec.name(),
                    transaction.id(), e.toString());
            request.retryLater();
        } catch (RuntimeException e) {
            discardProducer();
            request.signalFailedWithUnknownReason(e);
        }
    }

    private FlinkKafkaInternalProducer<byte[], byte[]> producerFor(TransactionalId id) {
        if (producer == null) {
            producer = KafkaClients.transactionalProducer(spec, id.toString());
        } else {
            producer.setTransactionId(id.toString());
        }
        return producer;
    }

    private void discardProducer() {
        if (producer != null) {
            producer.close();
            producer = null;
        }
    }

    @Override
    public void close() {
        discardProducer();
    }
}
