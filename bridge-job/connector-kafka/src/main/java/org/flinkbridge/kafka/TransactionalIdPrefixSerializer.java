package org.flinkbridge.kafka;

import java.nio.charset.StandardCharsets;

/** Stores an exactly-once writer's state, its transactional id prefix, in checkpoints. */
final class TransactionalIdPrefixSerializer extends CheckpointSerializer<String> {

    TransactionalIdPrefixSerializer() {
        super("a kafka sink writer state");
    }

    @Override
    public byte[] serialize(String prefix) {
        return prefix.getBytes(StandardCharsets.UTF_8);
    }

    @Override
    String read(byte[] serialized) {
        return new String(serialized, StandardCharsets.UTF_8);
    }
}
