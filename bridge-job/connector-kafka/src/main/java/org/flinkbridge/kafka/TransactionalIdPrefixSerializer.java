package org.flinkbridge.kafka;

import org.apache.flink.core.io.SimpleVersionedSerializer;

import java.io.IOException;
import java.nio.charset.StandardCharsets;

/** Stores an exactly-once writer's state, its transactional id prefix, in checkpoints. */
final class TransactionalIdPrefixSerializer implements SimpleVersionedSerializer<String> {

    private static final int VERSION = 1;

    @Override
    public int getVersion() {
        return VERSION;
    }

    @Override
    public byte[] serialize(String prefix) {
        return prefix.getBytes(StandardCharsets.UTF_8);
    }

    @Override
    public String deserialize(int version, byte[] serialized) throws IOException {
        if (version != VERSION) {
            throw new IOException("cannot read a kafka sink writer state of version " + version + "; this job reads "
                    + VERSION);
        }
        return new String(serialized, StandardCharsets.UTF_8);
    }
}
