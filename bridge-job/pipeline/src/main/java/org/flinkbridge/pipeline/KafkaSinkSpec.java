package org.flinkbridge.pipeline;

import java.util.Collections;
import java.util.Map;
import java.util.TreeMap;

/**
 * A Kafka topic; each record becomes one Kafka record: the payload as value, the headers as UTF-8 headers,
 * the timestamp as timestamp.
 *
 * @param transactionalIdPrefix with {@link Delivery#EXACTLY_ONCE}, what the sink's transactional ids start with;
 *                              null with {@link Delivery#AT_LEAST_ONCE}, which uses no transactions
 * @param properties            extra producer properties; never {@link #RESERVED_PROPERTIES}
 * @param key                   where the Kafka record key comes from, or null for records without a key
 */
public record KafkaSinkSpec(
        String name,
        String bootstrapServers,
        String topic,
        Delivery delivery,
        String transactionalIdPrefix,
        Map<String, String> properties,
        KeySpec key) implements SinkSpec {

    public static final String TYPE = "kafka";
    public static final Delivery DEFAULT_DELIVERY = Delivery.AT_LEAST_ONCE;

    /** Producer properties the file cannot set (property name -> why), sorted. */
    public static final Map<String, String> RESERVED_PROPERTIES = Collections.unmodifiableMap(new TreeMap<>(Map.of(
            "bootstrap.servers", "must be set with bootstrap_servers",
            "transactional.id", "is made from transactional_id_prefix, the subtask and the checkpoint",
            "key.serializer", "is the sink's own (it writes bytes)",
            "value.serializer", "is the sink's own (it writes bytes)")));

    public KafkaSinkSpec {
        Checks.nonBlank(name, "sink name");
        Checks.nonBlank(bootstrapServers, "kafka bootstrap servers");
        Checks.nonBlank(topic, "kafka topic");
        if (delivery == null) {
            throw new IllegalArgumentException("kafka sink delivery must not be null");
        }
        if (delivery == Delivery.EXACTLY_ONCE) {
            Checks.nonBlank(transactionalIdPrefix, "kafka transactional id prefix");
        } else if (transactionalIdPrefix != null) {
            throw new IllegalArgumentException("kafka transactional id prefix must be null with "
                    + delivery.configName() + " delivery, which uses no transactions, but was '"
                    + transactionalIdPrefix + "'");
        }
        properties = Map.copyOf(properties);
        for (String reserved : RESERVED_PROPERTIES.keySet()) {
            if (properties.containsKey(reserved)) {
                throw new IllegalArgumentException("kafka sink property " + reserved + " "
                        + RESERVED_PROPERTIES.get(reserved) + ", not in properties");
            }
        }
    }

    /** The transactional id prefix when the file names none: {@code flink-bridge-<pipeline>-<sink>}. */
    public static String defaultTransactionalIdPrefix(String pipelineName, String sinkName) {
        return "flink-bridge-" + pipelineName + "-" + sinkName;
    }

    /** Exactly-once delivery commits at checkpoints, so without them nothing would ever be committed. */
    @Override
    public boolean needsCheckpoints() {
        return delivery == Delivery.EXACTLY_ONCE;
    }
}
