package org.flinkbridge.nativering;

/**
 * Where a sequence of frames lands in a ring, by the ring's rule that a frame never wraps (the rest of the
 * ring becomes a PADDING frame). Placement depends only on the frame lengths, so a test can tell from its
 * own inputs how often a ring wrapped and how often the gap was a bare 8-byte PADDING frame.
 */
final class FramePlacement {

    private final int capacity;
    private long position;
    private int eightByteGaps;

    FramePlacement(int capacity) {
        this.capacity = capacity;
    }

    /** Places a frame of {@code length} bytes (header and body); returns its position. */
    long place(int length) {
        int aligned = (length + 7) & -8;
        int toEnd = capacity - (int) (position & (capacity - 1));
        if (aligned > toEnd) {
            if (toEnd == 8) {
                eightByteGaps++;
            }
            position += toEnd;
        }
        long at = position;
        position += aligned;
        return at;
    }

    long position() {
        return position;
    }

    long wraps() {
        return position / capacity;
    }

    int eightByteGaps() {
        return eightByteGaps;
    }
}
