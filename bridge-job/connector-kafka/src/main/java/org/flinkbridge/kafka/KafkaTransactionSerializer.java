package org.flinkbridge.kafka;

import org.apache.flink.core.io.SimpleVersionedSerializer;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;

/** Stores a {@link KafkaTransaction} in the committer's checkpointed state. */
final class KafkaTransactionSerializer implements SimpleVersionedSerializer<KafkaTransaction> {

    private static final int VERSION = 1;

    @Override
    public int getVersion() {
        return VERSION;
    }

    @Override
    public byte[] serialize(KafkaTransaction transaction) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (DataOutputStream out = new DataOutputStream(bytes)) {
            out.writeUTF(transaction.id().prefix());
            out.writeInt(transaction.id().subtask());
            out.writeLong(transaction.id().checkpointId());
            out.writeLong(transaction.producerId());
            out.writeShort(transaction.epoch());
        }
        return bytes.toByteArray();
    }

    @Override
    public KafkaTransaction deserialize(int version, byte[] serialized) throws IOException {
        if (version != VERSION) {
            throw new IOException("cannot read a kafka sink transaction of version " + version + "; this job reads "
                    + VERSION);
        }
        try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(serialized))) {
            TransactionalId id = new TransactionalId(in.readUTF(), in.readInt(), in.readLong());
            return new KafkaTransaction(id, in.readLong(), in.readShort());
        }
    }
}
