package org.flinkbridge.kafka;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.flink.util.Collector;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.header.Header;

import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import org.flinkbridge.records.BridgeRecord;

/** A Kafka record becomes a bridge record: value as payload, headers as headers, the key as header "key". */
final class KafkaRecords implements KafkaRecordDeserializationSchema<BridgeRecord> {

    static final String KEY_HEADER = "key";

    @Override
    public void deserialize(ConsumerRecord<byte[], byte[]> record, Collector<BridgeRecord> out) {
        Map<String, String> headers = new HashMap<>();
        for (Header header : record.headers()) {
            headers.put(header.key(), header.value() == null ? "" : new String(header.value(), StandardCharsets.UTF_8));
        }
        if (record.key() != null) {
            headers.put(KEY_HEADER, new String(record.key(), StandardCharsets.UTF_8));
        }
        byte[] value = record.value() == null ? new byte[0] : record.value();
        out.collect(new BridgeRecord(value, headers, record.timestamp()));
    }

    @Override
    public TypeInformation<BridgeRecord> getProducedType() {
        return TypeInformation.of(BridgeRecord.class);
    }
}
