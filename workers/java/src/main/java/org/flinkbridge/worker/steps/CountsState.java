package org.flinkbridge.worker.steps;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutput;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.util.Map;

/**
 * The state of the counting steps: a version byte, the number of counts, then each key and its count. Each
 * step writes and reads its own key; an empty state restores to no counts.
 */
final class CountsState {

    /** 2: keys written with {@link org.flinkbridge.protocol.StateStrings}, where 1 had writeUTF (64 KiB at most). */
    private static final byte VERSION = 2;

    interface KeyWriter<K> {
        void write(DataOutput out, K key) throws IOException;
    }

    interface KeyReader<K> {
        K read(DataInputStream in) throws IOException;
    }

    private CountsState() {}

    static <K> byte[] write(Map<K, Long> counts, KeyWriter<K> keys) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        DataOutputStream out = new DataOutputStream(bytes);
        out.writeByte(VERSION);
        out.writeInt(counts.size());
        for (Map.Entry<K, Long> count : counts.entrySet()) {
            keys.write(out, count.getKey());
            out.writeLong(count.getValue());
        }
        out.flush();
        return bytes.toByteArray();
    }

    /** Replaces {@code counts} with what {@code state} holds; {@code step} names the step in errors. */
    static <K> void read(byte[] state, Map<K, Long> counts, KeyReader<K> keys, String step) throws IOException {
        counts.clear();
        if (state.length == 0) {
            return;
        }
        try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(state))) {
            byte version = in.readByte();
            if (version != VERSION) {
                throw new IOException(step + " state version " + version + " is not " + VERSION);
            }
            int size = in.readInt();
            for (int i = 0; i < size; i++) {
                counts.put(keys.read(in), in.readLong());
            }
        } catch (EOFException e) {
            counts.clear();
            throw new IOException(step + " state ends early", e);
        }
    }
}
