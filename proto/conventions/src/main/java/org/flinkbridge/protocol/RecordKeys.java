package org.flinkbridge.protocol;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * The key in front of a RECORD frame's body on a ring in a keyed session (protocol 5, docs/protocol.md, "Cells"):
 *
 * <pre>
 *   i32 key length | key | record body ({@link RecordCodec})
 * </pre>
 *
 * The i32 is little-endian; the key is the bytes the pipeline's key extracts (empty for a record without it).
 */
public final class RecordKeys {

    private static final ValueLayout.OfInt LENGTH =
            ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private RecordKeys() {}

    /** The bytes {@code key} takes in front of the record body. */
    public static int prefixLength(byte[] key) {
        return Integer.BYTES + key.length;
    }

    /** Writes {@code key} at {@code offset}; the record body goes at {@code offset + prefixLength(key)}. */
    public static void write(MemorySegment file, long offset, byte[] key) {
        file.set(LENGTH, offset, key.length);
        MemorySegment.copy(key, 0, file, ValueLayout.JAVA_BYTE, offset + Integer.BYTES, key.length);
    }

    /**
     * The key in front of a body of {@code length} bytes at {@code offset}, its length read once and checked against
     * the body; the record body follows at {@code offset + prefixLength(key)}.
     */
    public static byte[] read(MemorySegment file, long offset, int length) throws CorruptRecordException {
        if (length < Integer.BYTES) {
            throw new CorruptRecordException("corrupt keyed record: a body of " + length
                    + " bytes cannot hold its key's length");
        }
        int keyLength = file.get(LENGTH, offset);
        if (keyLength < 0 || keyLength > length - Integer.BYTES) {
            throw new CorruptRecordException("corrupt keyed record: a key of " + keyLength + " bytes in a body of "
                    + length + " bytes");
        }
        byte[] key = new byte[keyLength];
        MemorySegment.copy(file, ValueLayout.JAVA_BYTE, offset + Integer.BYTES, key, 0, keyLength);
        return key;
    }
}
