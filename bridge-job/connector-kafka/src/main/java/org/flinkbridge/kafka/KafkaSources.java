package org.flinkbridge.kafka;

import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.KafkaSourceBuilder;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.kafka.clients.consumer.OffsetResetStrategy;
import org.flinkbridge.pipeline.KafkaSourceSpec;

import java.util.Properties;
import org.flinkbridge.records.BridgeRecord;

/** Flink's own KafkaSource, set up as a pipeline file's Kafka source says. */
public final class KafkaSources {

    private KafkaSources() {}

    /** The source a pipeline file's Kafka source names: each record value a payload (see {@link KafkaRecords}). */
    public static KafkaSource<BridgeRecord> of(KafkaSourceSpec spec) {
        Properties properties = new Properties();
        properties.putAll(spec.properties());
        KafkaSourceBuilder<BridgeRecord> builder = KafkaSource.<BridgeRecord>builder()
                .setBootstrapServers(spec.bootstrapServers())
                .setTopics(spec.topic())
                .setGroupId(spec.groupId())
                .setProperties(properties)
                .setStartingOffsets(switch (spec.startingOffsets()) {
                    case EARLIEST -> OffsetsInitializer.earliest();
                    case LATEST -> OffsetsInitializer.latest();
                    case COMMITTED -> OffsetsInitializer.committedOffsets(OffsetResetStrategy.EARLIEST);
                })
                .setDeserializer(new KafkaRecords());
        if (spec.bounded()) {
            builder.setBounded(OffsetsInitializer.latest());
        }
        return builder.build();
    }
}
