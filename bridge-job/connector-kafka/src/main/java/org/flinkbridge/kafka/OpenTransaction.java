package org.flinkbridge.kafka;

import org.apache.flink.connector.kafka.sink.internal.FlinkKafkaInternalProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.flinkbridge.pipeline.KafkaSinkSpec;

import java.io.IOException;

/** A writer's current transaction and the producer that began it: records go in, then it is handed over or aborted. */
final class OpenTransaction {

    private final TransactionalId id;
    private final FlinkKafkaInternalProducer<byte[], byte[]> producer;
    private final FailedSends failures;

    private OpenTransaction(TransactionalId id, FlinkKafkaInternalProducer<byte[], byte[]> producer,
                            FailedSends failures) {
        this.id = id;
        this.producer = producer;
        this.failures = failures;
    }

    static OpenTransaction begin(KafkaSinkSpec spec, TransactionalId id) {
        FlinkKafkaInternalProducer<byte[], byte[]> producer = KafkaClients.transactionalProducer(spec, id.toString());
        try {
            // Fences any earlier producer of this id and aborts its transaction.
            producer.initTransactions();
            producer.beginTransaction();
        } catch (RuntimeException e) {
            producer.close();
            throw e;
        }
        return new OpenTransaction(id, producer, new FailedSends(spec));
    }

    void send(ProducerRecord<byte[], byte[]> record) throws IOException {
        failures.throwIfAny();
        producer.send(record, failures);
    }

    void flush() throws IOException {
        producer.flush();
        failures.throwIfAny();
    }

    /** Flushes, then leaves the transaction open on the broker for the committer. */
    KafkaTransaction handOver() throws IOException {
        flush();
        KafkaTransaction transaction = new KafkaTransaction(id, producer.getProducerId(), producer.getEpoch());
        // This producer closes at once, which leaves the transaction open; a graceful close would abort it.
        producer.close();
        return transaction;
    }

    void abort() {
        try {
            producer.abortTransaction();
        } finally {
            producer.close();
        }
    }
}
