package org.flinkbridge.pipeline;

import java.util.Collections;
import java.util.Map;
import java.util.TreeMap;

/**
 * A Kafka topic; each record value is one payload.
 *
 * @param bounded    stop at the latest offsets seen when the job starts
 * @param properties extra consumer properties; never {@link #RESERVED_PROPERTIES}, which have their own fields
 */
public record KafkaSourceSpec(
        String name,
        String bootstrapServers,
        String topic,
        String groupId,
        StartingOffsets startingOffsets,
        boolean bounded,
        Map<String, String> properties) implements SourceSpec {

    public static final String TYPE = "kafka";
    public static final StartingOffsets DEFAULT_STARTING_OFFSETS = StartingOffsets.EARLIEST;

    /** Consumer properties that must be given by their own field (property name -> field in the file), sorted. */
    public static final Map<String, String> RESERVED_PROPERTIES = Collections.unmodifiableMap(
            new TreeMap<>(Map.of("bootstrap.servers", "bootstrap_servers", "group.id", "group_id")));

    public KafkaSourceSpec {
        Checks.nonBlank(name, "source name");
        Checks.nonBlank(bootstrapServers, "kafka bootstrap servers");
        Checks.nonBlank(topic, "kafka topic");
        Checks.nonBlank(groupId, "kafka group id");
        if (startingOffsets == null) {
            throw new IllegalArgumentException("kafka starting offsets must not be null");
        }
        properties = Map.copyOf(properties);
        for (String reserved : RESERVED_PROPERTIES.keySet()) {
            if (properties.containsKey(reserved)) {
                throw new IllegalArgumentException("kafka property " + reserved + " must be given as "
                        + RESERVED_PROPERTIES.get(reserved) + ", not in properties");
            }
        }
    }

    /** The consumer group when the file names none: {@code flink-bridge-<pipeline name>}. */
    public static String defaultGroupId(String pipelineName) {
        return "flink-bridge-" + pipelineName;
    }
}
