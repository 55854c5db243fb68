package org.flinkbridge.worker.timers;

import com.google.protobuf.CodedOutputStream;
import org.flinkbridge.proto.data.TimerChange;
import org.flinkbridge.proto.data.TimerChanges;
import org.flinkbridge.proto.data.TimerOp;
import org.flinkbridge.worker.SessionClock;
import org.flinkbridge.worker.sdk.TimeDomain;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.Map;
import java.util.TreeMap;

/**
 * A session's timers (docs/protocol.md, "Timers"): which of its steps declared them, whether a keyed input is being
 * handled (so that its steps may set and delete timers of its key), the changes that input made, in order, for its
 * TIMERS answer, and the session's current watermark. The bridge holds the timers themselves. Used by the session's
 * one serving thread at a time; an input's changes are kept in arrays reused from input to input.
 */
public final class SessionTimers {

    /** A TimerChanges message's field 1 (changes), length-delimited. */
    private static final int CHANGES_TAG = 1 << 3 | 2;
    private static final int OP_TAG = 1 << 3;
    private static final int STEP_TAG = 2 << 3;
    private static final int DOMAIN_TAG = 3 << 3;
    private static final int TIMESTAMP_TAG = 4 << 3;

    private final SessionClock clock;
    /** The steps that declared timers, by their place in the session's step list. */
    private final TreeMap<Integer, String> declared = new TreeMap<>();
    private boolean sealed;
    /** A keyed input is being handled: its steps may set and delete timers of its key. */
    private boolean inKey;
    private long watermark = Long.MIN_VALUE;
    /** The current input's changes: the i-th is (sets[i] ? SET : DELETE, steps[i], domains[i], timestamps[i]). */
    private int count;
    private boolean[] sets = new boolean[4];
    private int[] steps = new int[4];
    private TimeDomain[] domains = new TimeDomain[4];
    private long[] timestamps = new long[4];

    public SessionTimers(SessionClock clock) {
        this.clock = clock;
    }

    /**
     * Step {@code stepIndex} ({@code step}) declares timers while it opens.
     *
     * @throws IllegalStateException when a later instance of the segment declares timers its first did not
     */
    void declare(int stepIndex, String step) {
        if (sealed && !declared.containsKey(stepIndex)) {
            throw new IllegalStateException("step '" + step + "' declares timers in this instance but not in its "
                    + "first: a step declares timers in every instance or in none");
        }
        declared.put(stepIndex, step);
    }

    /** The first instance is built: from now on, only the steps that declared timers then may. */
    public void seal() {
        sealed = true;
    }

    /** Whether the session's steps declared timers ({@code OpenSessionResponse.timers}). */
    public boolean declared() {
        return !declared.isEmpty();
    }

    /** Whether step {@code stepIndex} declared timers. */
    public boolean declares(int stepIndex) {
        return declared.containsKey(stepIndex);
    }

    /** The name of the first step that declared timers; null when none did. */
    public String firstStep() {
        Map.Entry<Integer, String> first = declared.firstEntry();
        return first == null ? null : first.getValue();
    }

    /** A keyed input is handled from now until {@link #leave}: its steps' timers are its key's. */
    public void enter() {
        inKey = true;
    }

    /** No keyed input is handled: setting or deleting a timer throws until the next {@link #enter}. */
    public void leave() {
        inKey = false;
    }

    /** The session's steps are given watermark {@code timestamp} (docs/protocol.md: set as that input is handled). */
    public void watermark(long timestamp) {
        watermark = timestamp;
    }

    public long watermark() {
        return watermark;
    }

    long processingTime() {
        return clock.millis();
    }

    /** @throws IllegalStateException naming the step when no keyed input is handled */
    void change(boolean set, int step, String stepName, TimeDomain domain, long timestamp) {
        if (!inKey) {
            throw new IllegalStateException("step '" + stepName + "' " + (set ? "sets" : "deletes") + " a timer "
                    + "outside the handling of a keyed input: timers are the current input's key's, so a step sets "
                    + "and deletes them only in process() or onTimer(), for an input of a keyed stream");
        }
        if (count == sets.length) {
            int grown = count * 2;
            sets = Arrays.copyOf(sets, grown);
            steps = Arrays.copyOf(steps, grown);
            domains = Arrays.copyOf(domains, grown);
            timestamps = Arrays.copyOf(timestamps, grown);
        }
        sets[count] = set;
        steps[count] = step;
        domains[count] = domain;
        timestamps[count] = timestamp;
        count++;
    }

    /** Forgets the current input's changes: before an input, and after one that failed (it changes no timer). */
    public void clear() {
        count = 0;
    }

    /** How many changes the current input made. */
    public int changes() {
        return count;
    }

    /** Whether change {@code i} sets a timer (else it deletes one). */
    public boolean sets(int i) {
        return sets[i];
    }

    /** The place of the step that made change {@code i}. */
    public int step(int i) {
        return steps[i];
    }

    public TimeDomain domain(int i) {
        return domains[i];
    }

    public long timestamp(int i) {
        return timestamps[i];
    }

    /** The current input's changes as its TIMERS frame carries them. */
    public TimerChanges toProto() {
        TimerChanges.Builder changes = TimerChanges.newBuilder();
        for (int i = 0; i < count; i++) {
            changes.addChanges(TimerChange.newBuilder().setOp(sets[i] ? TimerOp.TIMER_OP_SET : TimerOp.TIMER_OP_DELETE)
                    .setStep(steps[i]).setDomain(domain(domains[i])).setTimestamp(timestamps[i]));
        }
        return changes.build();
    }

    /** The wire's domain of {@code domain}. */
    public static org.flinkbridge.proto.data.TimeDomain domain(TimeDomain domain) {
        return domain == TimeDomain.EVENT_TIME ? org.flinkbridge.proto.data.TimeDomain.TIME_DOMAIN_EVENT_TIME
                : org.flinkbridge.proto.data.TimeDomain.TIME_DOMAIN_PROCESSING_TIME;
    }

    /**
     * The bytes of {@link #toProto()}'s protobuf encoding, without building it: what a TIMERS frame on a ring
     * carries. Each change is a nested message of at most 21 bytes, so its length is one byte.
     */
    public int encodedLength() {
        int length = 0;
        for (int i = 0; i < count; i++) {
            length += 2 + changeLength(i);
        }
        return length;
    }

    /** Writes {@link #toProto()}'s encoding, {@link #encodedLength()} bytes, at {@code offset}. */
    public void encode(MemorySegment target, long offset) {
        long at = offset;
        for (int i = 0; i < count; i++) {
            at = varint(target, at, CHANGES_TAG);
            at = varint(target, at, changeLength(i));
            at = varint(target, at, OP_TAG);
            at = varint(target, at, sets[i] ? TimerOp.TIMER_OP_SET_VALUE : TimerOp.TIMER_OP_DELETE_VALUE);
            if (steps[i] != 0) {
                at = varint(target, at, STEP_TAG);
                at = varint(target, at, Integer.toUnsignedLong(steps[i]));
            }
            at = varint(target, at, DOMAIN_TAG);
            at = varint(target, at, domain(domains[i]).getNumber());
            if (timestamps[i] != 0) {
                at = varint(target, at, TIMESTAMP_TAG);
                at = varint(target, at, timestamps[i]);
            }
        }
    }

    /** A change's fields, proto3's way: a zero step or timestamp is left out (op and domain are never zero). */
    private int changeLength(int i) {
        return 2 + 2 + (steps[i] == 0 ? 0 : 1 + CodedOutputStream.computeUInt32SizeNoTag(steps[i]))
                + (timestamps[i] == 0 ? 0 : 1 + CodedOutputStream.computeUInt64SizeNoTag(timestamps[i]));
    }

    private static long varint(MemorySegment target, long at, long value) {
        long rest = value;
        while ((rest & ~0x7FL) != 0) {
            target.set(ValueLayout.JAVA_BYTE, at++, (byte) ((rest & 0x7F) | 0x80));
            rest >>>= 7;
        }
        target.set(ValueLayout.JAVA_BYTE, at++, (byte) rest);
        return at;
    }
}
