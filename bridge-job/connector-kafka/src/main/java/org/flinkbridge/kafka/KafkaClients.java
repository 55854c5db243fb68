package org.flinkbridge.kafka;

import org.apache.flink.connector.kafka.sink.internal.FlinkKafkaInternalProducer;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.flinkbridge.pipeline.KafkaSinkSpec;

import java.time.Duration;
import java.util.Properties;

/**
 * The Kafka clients of a sink, configured from its spec: the file's properties, over them the settings the sink
 * owns (bootstrap servers, byte serializers), and under them the sink's defaults for transactional producers.
 */
final class KafkaClients {

    /**
     * The brokers' default {@code transaction.max.timeout.ms}. With Kafka's default (1 min) the broker would abort
     * every transaction that stays open longer, from its first record until its checkpoint completes.
     */
    static final Duration DEFAULT_TRANSACTION_TIMEOUT = Duration.ofMinutes(15);
    /**
     * A new transactional producer's {@code initTransactions} waits out one retry backoff, which Kafka's default
     * (100 ms) makes about 110 ms here, at every checkpoint of every writer; with 10 ms it takes about 20 ms.
     * Later retries still back off exponentially, up to {@code retry.backoff.max.ms}.
     */
    static final Duration DEFAULT_TRANSACTIONAL_RETRY_BACKOFF = Duration.ofMillis(10);

    private KafkaClients() {}

    static KafkaProducer<byte[], byte[]> producer(KafkaSinkSpec spec) {
        return new KafkaProducer<>(producerProperties(spec));
    }

    /**
     * A producer for one transactional id. The connector's producer is a {@code KafkaProducer} that can also
     * report its producer id and epoch and resume a transaction from them, which the committer needs.
     */
    static FlinkKafkaInternalProducer<byte[], byte[]> transactionalProducer(KafkaSinkSpec spec,
                                                                             String transactionalId) {
        Properties properties = producerProperties(spec);
        properties.putIfAbsent(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG,
                Long.toString(DEFAULT_TRANSACTION_TIMEOUT.toMillis()));
        properties.putIfAbsent(ProducerConfig.RETRY_BACKOFF_MS_CONFIG,
                Long.toString(DEFAULT_TRANSACTIONAL_RETRY_BACKOFF.toMillis()));
        return new FlinkKafkaInternalProducer<>(properties, transactionalId);
    }

    static Admin admin(KafkaSinkSpec spec) {
        Properties properties = new Properties();
        properties.putAll(spec.properties());
        properties.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, spec.bootstrapServers());
        return Admin.create(properties);
    }

    private static Properties producerProperties(KafkaSinkSpec spec) {
        Properties properties = new Properties();
        properties.putAll(spec.properties());
        properties.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, spec.bootstrapServers());
        properties.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        properties.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        return properties;
    }
}
