package org.flinkbridge.testing;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

class KafkaBrokerTest {

    private static byte[] bytes(String text) {
        return text.getBytes(StandardCharsets.UTF_8);
    }

    @Test
    void brokerStoresRecordsAndTransactionsThenGoesAway() throws Exception {
        long pid;
        try (KafkaBroker broker = KafkaBroker.start()) {
            pid = broker.pid();
            broker.createTopic("plain", 2);
            List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
            for (int i = 0; i < 1000; i++) {
                records.add(new ProducerRecord<>("plain", i % 2, bytes("k" + i), bytes("v" + i)));
            }
            broker.produce(records);
            assertEquals(1000, broker.readAll("plain", false).size());
            assertEquals(1000, broker.readAll("plain", true).size());

            broker.createTopic("tx", 1);
            try (KafkaProducer<byte[], byte[]> producer = broker.producer(Map.of(
                    ProducerConfig.TRANSACTIONAL_ID_CONFIG, "test-tx", ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true))) {
                producer.initTransactions();
                producer.beginTransaction();
                producer.send(new ProducerRecord<>("tx", bytes("committed")));
                producer.commitTransaction();
                producer.beginTransaction();
                producer.send(new ProducerRecord<>("tx", bytes("aborted")));
                producer.flush();
                producer.abortTransaction();
            }
            List<String> committed = broker.readAll("tx", true).stream()
                    .map(r -> new String(r.value(), StandardCharsets.UTF_8)).toList();
            assertEquals(List.of("committed"), committed);
            List<ConsumerRecord<byte[], byte[]>> uncommitted = broker.readAll("tx", false);
            assertEquals(2, uncommitted.size(), "read_uncommitted sees the aborted record too");
        }
        Optional<ProcessHandle> left = ProcessHandle.of(pid);
        assertFalse(left.isPresent() && left.get().isAlive(), "the broker process is still running");
    }
}
