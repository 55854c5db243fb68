package org.flinkbridge.kafka;

import org.apache.flink.core.io.SimpleVersionedSerializer;

import java.io.IOException;

/** Stores the sink's state in checkpoints in the one version this job writes, refusing any other on restore. */
abstract class CheckpointSerializer<T> implements SimpleVersionedSerializer<T> {

    private static final int VERSION = 1;

    /** What this serializer stores, as an error names it: "a kafka sink transaction". */
    private final String stored;

    CheckpointSerializer(String stored) {
        this.stored = stored;
    }

    @Override
    public final int getVersion() {
        return VERSION;
    }

    @Override
    public final T deserialize(int version, byte[] serialized) throws IOException {
        if (version != VERSION) {
            throw new IOException("cannot read " + stored + " of version " + version + "; this job reads " + VERSION);
        }
        return read(serialized);
    }

    /** Reads what {@link #serialize} wrote in this version. */
    abstract T read(byte[] serialized) throws IOException;
}
