package org.flinkbridge.worker.cells;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * A cell's time to live on the wire (docs/protocol.md, "Cells"): every value of a cell with a TTL (every entry's
 * value, for a map) starts with an i64 little-endian write time, the processing time of the input that wrote it;
 * it is gone once that time plus the TTL is at or before the session's current processing time.
 */
final class CellTtl {

    static final int PREFIX = Long.BYTES;

    private CellTtl() {}

    /** Whether a value written at {@code writtenAt} is gone at {@code now}; never, for {@code ttl} 0. */
    static boolean expired(long writtenAt, long ttl, long now) {
        if (ttl <= 0) {
            return false;
        }
        long end = writtenAt + ttl;
        // Past Long.MAX_VALUE it never ends.
        return end >= writtenAt && end <= now;
    }

    /** The value as it goes on the wire: behind its write time when the cell has a TTL. */
    static byte[] onWire(byte[] value, long writtenAt, long ttl) {
        if (ttl <= 0) {
            return value;
        }
        return ByteBuffer.allocate(PREFIX + value.length).order(ByteOrder.LITTLE_ENDIAN)
                .putLong(writtenAt).put(value).array();
    }

    /** The write time at the start of a wire value of a cell with a TTL (at least {@link #PREFIX} bytes). */
    static long writtenAt(byte[] wire) {
        return ByteBuffer.wrap(wire).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
    }
}
