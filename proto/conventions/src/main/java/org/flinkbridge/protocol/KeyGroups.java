package org.flinkbridge.protocol;

/**
 * A record's Flink key group as the bridge and the worker hold it (0 to 32767), its one value for "none" (the
 * record's stream is not keyed), and the form that value takes on each wire.
 */
public final class KeyGroups {

    /** No key group: the record's stream is not keyed. */
    public static final int NONE = -1;

    /** NONE in a RECORD frame's flags on a shared-memory ring (docs/protocol.md, the frame layout). */
    public static final int RING_NONE = 0xFFFF;

    private KeyGroups() {}

    /** The flags of a RECORD frame carrying {@code keyGroup}. */
    public static int toRingFlags(int keyGroup) {
        return keyGroup == NONE ? RING_NONE : keyGroup;
    }

    /** The key group a RECORD frame's flags carry. */
    public static int fromRingFlags(int flags) {
        return flags == RING_NONE ? NONE : flags;
    }

    /**
     * The key group as the gRPC messages' optional {@code key_group} field holds it (a record on the stream, a
     * piece of state): null, the field left out, for NONE.
     */
    public static Integer toOptional(int keyGroup) {
        return keyGroup == NONE ? null : keyGroup;
    }

    /** The key group an optional {@code key_group} field holds: NONE when the field is absent. */
    public static int fromOptional(boolean present, int value) {
        return present ? value : NONE;
    }
}
