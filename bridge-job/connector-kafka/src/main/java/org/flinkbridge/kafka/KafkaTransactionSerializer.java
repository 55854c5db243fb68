package org.flinkbridge.kafka;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;

/** Stores a {@link KafkaTransaction} in the committer's checkpointed state. */
final class KafkaTransactionSerializer extends CheckpointSerializer<KafkaTransaction> {

    KafkaTransactionSerializer() {
        super("a kafka sink transaction");
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
    KafkaTransaction read(byte[] serialized) throws IOException {
        try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(serialized))) {
            TransactionalId id = new TransactionalId(in.readUTF(), in.readInt(), in.readLong());
            return new KafkaTransaction(id, in.readLong(), in.readShort());
        }
    }
}
