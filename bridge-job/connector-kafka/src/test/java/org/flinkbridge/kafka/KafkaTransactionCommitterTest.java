package org.flinkbridge.kafka;

import org.apache.flink.api.connector.sink2.Committer;
import org.apache.flink.connector.kafka.sink.internal.FlinkKafkaInternalProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.flinkbridge.pipeline.Delivery;
import org.flinkbridge.pipeline.KafkaSinkSpec;
import org.flinkbridge.testing.KafkaBroker;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A commit retried (or replayed after a restore) finds its transaction ended: the committer asks the broker
 * whether it was committed, and fails loudly when the broker shows it aborted instead.
 */
class KafkaTransactionCommitterTest {

    private static KafkaBroker broker;
    private static KafkaSinkSpec spec;

    @BeforeAll
    static void startBroker() throws Exception {
        broker = KafkaBroker.start();
        broker.createTopic("committer-out", 1);
        spec = new KafkaSinkSpec("out", broker.bootstrapServers(), "committer-out", Delivery.EXACTLY_ONCE,
                "committer-test", Map.of(), null);
    }

    @AfterAll
    static void stopBroker() {
        broker.close();
    }

    @Test
    void aRetryOfACommittedTransactionCountsAsCommitted() throws Exception {
        RecordingRequest retry = retryCommitOf(transaction(new TransactionalId("committer-test", 0, 1), true));

        assertNull(retry.failure, "a committed transaction failed the job");
    }

    @Test
    void aRetryThatFindsItsTransactionAbortedFailsTheJob() throws Exception {
        RecordingRequest retry = retryCommitOf(transaction(new TransactionalId("committer-test", 0, 2), false));

        assertEquals(false, retry.alreadyCommitted, "an aborted transaction passed as committed");
        // The abort's markers may still be on their way (PrepareAbort) when the committer asks.
        assertTrue(retry.failure != null && retry.failure.getMessage().contains("transaction committer-test-0-2"
                + " cannot be committed") && retry.failure.getMessage().matches("(?s).*the broker does not show it"
                + " committed: its state is (Prepare|Complete)Abort.*"), String.valueOf(retry.failure));
    }

    /** Commits {@code transaction} as a retry of a commit whose answer was lost. */
    private static RecordingRequest retryCommitOf(KafkaTransaction transaction) {
        RecordingRequest retry = new RecordingRequest(transaction, 1);
        try (KafkaTransactionCommitter committer = new KafkaTransactionCommitter(spec, 0)) {
            committer.commit(List.of(retry));
        }
        return retry;
    }

    /** Writes one record in a transaction and commits or aborts it, as a sink's attempt would have. */
    private static KafkaTransaction transaction(TransactionalId id, boolean commit) {
        try (FlinkKafkaInternalProducer<byte[], byte[]> producer =
                     KafkaClients.transactionalProducer(spec, id.toString())) {
            producer.initTransactions();
            producer.beginTransaction();
            producer.send(new ProducerRecord<>("committer-out", id.toString().getBytes(StandardCharsets.UTF_8)));
            producer.flush();
            KafkaTransaction transaction = new KafkaTransaction(id, producer.getProducerId(), producer.getEpoch());
            if (commit) {
                producer.commitTransaction();
            } else {
                producer.abortTransaction();
            }
            return transaction;
        }
    }

    /** A commit request that records how the committer answered it. */
    private static final class RecordingRequest implements Committer.CommitRequest<KafkaTransaction> {
        private final KafkaTransaction transaction;
        private final int retries;
        Throwable failure;
        boolean alreadyCommitted;

        RecordingRequest(KafkaTransaction transaction, int retries) {
            this.transaction = transaction;
            this.retries = retries;
        }

        @Override
        public KafkaTransaction getCommittable() {
            return transaction;
        }

        @Override
        public int getNumberOfRetries() {
            return retries;
        }

        @Override
        public void signalFailedWithKnownReason(Throwable t) {
            failure = t;
        }

        @Override
        public void signalFailedWithUnknownReason(Throwable t) {
            failure = t;
        }

        @Override
        public void retryLater() {
            failure = new AssertionError("asked to retry");
        }

        @Override
        public void updateAndRetryLater(KafkaTransaction committable) {
            failure = new AssertionError("asked to retry with " + committable);
        }

        @Override
        public void signalAlreadyCommitted() {
            alreadyCommitted = true;
        }
    }
}
