package org.flinkbridge.kafka;

import org.apache.flink.api.connector.sink2.Committer;
import org.apache.flink.connector.kafka.sink.internal.FlinkKafkaInternalProducer;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.TransactionState;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.errors.InvalidTxnStateException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.errors.RetriableException;
import org.flinkbridge.pipeline.KafkaSinkSpec;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Commits the transactions of completed checkpoints: one producer resumes each by its producer id and epoch and
 * commits it. The producer is reused from one transaction to the next, and replaced after a failure.
 *
 * <p>A transaction that cannot be resumed because its producer was fenced has ended already: it was committed
 * before (after a restore, or by an attempt whose answer was lost before a retry), or the broker aborted it,
 * its transaction timeout having run out before its checkpoint completed, and its records are lost. Only the
 * broker's transaction coordinator can tell which, so it is asked: a commit it does not show (same producer,
 * state CompleteCommit) fails the job, naming what it saw, rather than pass as "committed before". One case
 * stays unproven and is accepted with a warning: a transaction of the restored checkpoint whose id a later
 * producer has reused, which resets what the coordinator keeps (state Empty).
 */
final class KafkaTransactionCommitter implements Committer<KafkaTransaction> {

    private static final Logger LOG = LoggerFactory.getLogger(KafkaTransactionCommitter.class);
    private static final Duration DESCRIBE_TIMEOUT = Duration.ofSeconds(30);

    private final KafkaSinkSpec spec;
    private FlinkKafkaInternalProducer<byte[], byte[]> producer;

    private final long restoredCheckpointId;

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
            Outcome outcome = outcomeOnTheBroker(transaction);
            if (outcome.committed()) {
                LOG.info("kafka sink '{}': transaction {} was committed before", spec.name(), transaction.id());
                request.signalAlreadyCommitted();
            } else if (outcome.superseded() && transaction.id().checkpointId() <= restoredCheckpointId) {
                // The restored checkpoint completed, so its transactions were committed unless the broker aborted
                // them; a later producer of the same id has since reset what the broker keeps of it.
                LOG.warn("kafka sink '{}': transaction {} of the restored checkpoint has ended and the broker no"
                        + " longer tells how ({}); taking it as committed", spec.name(), transaction.id(),
                        outcome.description());
                request.signalAlreadyCommitted();
            } else {
                request.signalFailedWithUnknownReason(new IllegalStateException("kafka sink '" + spec.name()
                        + "': transaction " + transaction.id() + " cannot be committed (" + ended.getMessage()
                        + ") and the broker does not show it committed: " + outcome.description() + ". Its"
                        + " records are lost if the broker aborted it, as it does when transaction.timeout.ms (in"
                        + " the sink's properties) runs out before its checkpoint completes", ended));
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

    /**
     * What the broker's transaction coordinator shows of an ended transaction.
     *
     * @param committed  PrepareCommit or CompleteCommit by the transaction's own producer: proven committed (in
     *                   PrepareCommit the coordinator has logged the commit and is still writing its markers)
     * @param superseded Empty for the same producer id: a later producer of the id started since, so whether it
     *                   was committed or aborted is no longer kept
     */
    private record Outcome(boolean committed, boolean superseded, String description) {}

    private Outcome outcomeOnTheBroker(KafkaTransaction transaction) {
        String id = transaction.id().toString();
        try (Admin admin = KafkaClients.admin(spec)) {
            TransactionDescription description = admin.describeTransactions(List.of(id)).description(id)
                    .get(DESCRIBE_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
            boolean sameProducer = description.producerId() == transaction.producerId();
            boolean commitLogged = description.state() == TransactionState.PREPARE_COMMIT
                    || description.state() == TransactionState.COMPLETE_COMMIT;
            return new Outcome(sameProducer && commitLogged,
                    sameProducer && description.state() == TransactionState.EMPTY,
                    "its state is " + description.state() + " for producer id " + description.producerId()
                            + " (this transaction's is " + transaction.producerId() + ")");
        } catch (ExecutionException e) {
            return new Outcome(false, false, "describing it failed: " + e.getCause());
        } catch (TimeoutException e) {
            return new Outcome(false, false, "describing it took more than " + DESCRIBE_TIMEOUT.toSeconds() + " s");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return new Outcome(false, false, "interrupted while describing it");
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
