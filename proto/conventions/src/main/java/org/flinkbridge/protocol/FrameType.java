package org.flinkbridge.protocol;

/** The frame types, as numbered on both wires: a ring frame's type field and the gRPC stream's FrameType. */
public final class FrameType {

    public static final int PADDING = 0;
    /** bridge → worker: an input record (record body). */
    public static final int RECORD = 1;
    /** bridge → worker: event time advanced (body: i64 timestamp). */
    public static final int WATERMARK = 2;
    /** bridge → worker: flush marker (body: i64 checkpoint id). */
    public static final int BARRIER = 3;
    /** worker → bridge: one output of input {@code sequence} (record body). */
    public static final int OUTPUT = 4;
    /** worker → bridge: input {@code sequence} has no more outputs. */
    public static final int END_OF_OUTPUTS = 5;
    /** worker → bridge: input {@code sequence} failed (body: UTF-8 message). */
    public static final int ERROR = 6;
    /**
     * bridge → worker: processing time advanced (body: i64 ms since the epoch, the bridge's clock), so that a
     * replayed input sees the time it saw the first time.
     */
    public static final int CLOCK = 7;
    /** worker → bridge: record input {@code sequence} failed in a dead-letter step ({@link InputFailures}). */
    public static final int INPUT_FAILED = 8;
    /**
     * bridge → worker: part of the record input that follows, with its sequence: the record's key and its cells
     * (body: a {@code KeyCells} message), which make the key resident in the session.
     */
    public static final int LOAD = 9;
    /** worker → bridge: part of the answer to a BARRIER: one key's changed cells (body: a {@code KeyCells} message). */
    public static final int CELL_WRITES = 10;
    /**
     * bridge → worker: a timer fires (body: the key as a keyed RECORD carries it, then a {@code TimerFiring}
     * message).
     */
    public static final int TIMER = 11;
    /**
     * worker → bridge: part of the answer to a RECORD or TIMER, before its end marker: the timers its steps set or
     * deleted for the input's key (body: a {@code TimerChanges} message).
     */
    public static final int TIMERS = 12;

    private static final String[] NAMES = {"PADDING", "RECORD", "WATERMARK", "BARRIER", "OUTPUT", "END_OF_OUTPUTS",
            "ERROR", "CLOCK", "INPUT_FAILED", "LOAD", "CELL_WRITES", "TIMER", "TIMERS"};

    private FrameType() {}

    /** Whether {@code type} is a frame type at all (a bridge or a worker still sends only its own). */
    public static boolean isKnown(int type) {
        return type >= 0 && type < NAMES.length;
    }

    public static String name(int type) {
        return isKnown(type) ? NAMES[type] : "unknown type " + type;
    }
}
