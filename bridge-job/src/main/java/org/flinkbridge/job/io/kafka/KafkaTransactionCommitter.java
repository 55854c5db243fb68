package org.flinkbridge.job.io.kafka;

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
 * state CompleteCommit) fails the job, naming what it saw, rather than pass as "committed before".
 */
final class KafkaTransactionCommitter implements Committer<KafkaTransaction> {

    private static final Logger LOG = LoggerFactory.getLogger(KafkaTransactionCommitter.class);
    private static final Duration DESCRIBE_TIMEOUT = Duration.ofSeconds(30);

    private final KafkaSinkSpec spec;
    private FlinkKafkaInternalProducer<byte[], byte[]> producer;

    KafkaTransactionCommitter(KafkaSinkSpec spec) {
        this.spec = spec;
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
            String outcome = outcomeOnTheBroker(transaction);
            if (outcome == null) {
                LOG.info("kafka sink '{}': transaction {} was committed before", spec.name(), transaction.id());
                request.signalAlreadyCommitted();
            } else {
                request.signalFailedWithUnknownReason(new IllegalStateException("kafka sink '" + spec.name()
                        + "': transaction " + transaction.id() + " cannot be committed (" + ended.getMessage()
                        + ") and the broker does not show it committed: " + outcome + ". Its records are lost"
                        + " if the broker aborted it, as it does when transaction.timeout.ms (in the sink's"
                        + " properties) runs out before its checkpoint completes", ended));
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

    /** Null when the broker shows the transaction committed by its producer; else what it shows instead. */
    private String outcomeOnTheBroker(KafkaTransaction transaction) {
        String id = transaction.id().toString();
        try (Admin admin = KafkaClients.admin(spec)) {
            TransactionDescription description = admin.describeTransactions(List.of(id)).description(id)
                    .get(DESCRIBE_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
            if (description.state() == TransactionState.COMPLETE_COMMIT
                    && description.producerId() == transaction.producerId()) {
                return null;
            }
            return "its state is " + description.state() + " for producer id " + description.producerId()
                    + " (this transaction's is " + transaction.producerId() + ")";
        } catch (ExecutionException e) {
            return "describing it failed: " + e.getCause();
        } catch (TimeoutException e) {
            return "describing it took more than " + DESCRIBE_TIMEOUT.toSeconds() + " s";
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return "interrupted while describing it";
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
