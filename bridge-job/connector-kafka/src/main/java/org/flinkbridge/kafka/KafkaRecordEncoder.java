package org.flinkbridge.kafka;

import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.flinkbridge.pipeline.KafkaSinkSpec;

import java.io.IOException;
import java.io.Serializable;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.flinkbridge.records.BridgeRecord;
import org.flinkbridge.records.RecordKey;

/**
 * A bridge record as the Kafka record a sink writes: the payload as value, each header as a UTF-8 header, the
 * timestamp as timestamp, and the key the spec names (found as the bridge's {@code key} is) or none.
 */
final class KafkaRecordEncoder implements Serializable {

    private final String topic;
    private final RecordKey key;

    KafkaRecordEncoder(KafkaSinkSpec spec) {
        this.topic = spec.topic();
        this.key = spec.key() == null ? null : new RecordKey(spec.key());
    }

    ProducerRecord<byte[], byte[]> encode(BridgeRecord record) throws IOException {
        byte[] keyBytes = key == null ? null : key.getKey(record).getBytes(StandardCharsets.UTF_8);
        List<Header> headers = new ArrayList<>(record.headers.size());
        for (Map.Entry<String, String> header : record.headers.entrySet()) {
            String value = header.getValue();
            byte[] valueBytes = value == null ? null : value.getBytes(StandardCharsets.UTF_8);
            headers.add(new RecordHeader(header.getKey(), valueBytes));
        }
        // Kafka refuses negative timestamps (a source record without one has -1); the broker then stamps it.
        Long timestamp = record.timestamp >= 0 ? record.timestamp : null;
        return new ProducerRecord<>(topic, null, timestamp, keyBytes, record.payload, headers);
    }
}
