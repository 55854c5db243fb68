package org.flinkbridge.kafka;

import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.flinkbridge.pipeline.KafkaSinkSpec;

import java.io.IOException;
import java.time.Duration;
import org.flinkbridge.records.BridgeRecord;

/** Sends each record with one producer; {@link #flush} waits for every acknowledgement. */
final class AtLeastOnceKafkaWriter implements SinkWriter<BridgeRecord> {

    private final KafkaRecordEncoder encoder;
    private final FailedSends failures;
    private final KafkaProducer<byte[], byte[]> producer;

    AtLeastOnceKafkaWriter(KafkaSinkSpec spec) {
        this.encoder = new KafkaRecordEncoder(spec);
        this.failures = new FailedSends(spec);
        this.producer = KafkaClients.producer(spec);
    }

    @Override
    public void write(BridgeRecord record, Context context) throws IOException {
        failures.throwIfAny();
        producer.send(encoder.encode(record), failures);
    }

    @Override
    public void flush(boolean endOfInput) throws IOException {
        producer.flush();
        failures.throwIfAny();
    }

    /** Does not wait: after the last flush nothing is pending, and after a failure a restart sends it again. */
    @Override
    public void close() {
        producer.close(Duration.ZERO);
    }
}
