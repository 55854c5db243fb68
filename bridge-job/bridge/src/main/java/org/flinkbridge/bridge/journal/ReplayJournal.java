package org.flinkbridge.bridge.journal;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.Map;
import org.flinkbridge.proto.data.TimerChanges;
import org.flinkbridge.proto.data.TimerFiring;
import org.flinkbridge.protocol.RecordCodec;
import org.flinkbridge.records.BridgeRecord;

/**
 * What recovery in place needs to bring a new worker to where the lost one was: the inputs sent to the session
 * since its last barrier, in order, kept off-heap and bounded, and for each the count and a 64-bit hash of the
 * outputs the bridge has received for it, and whether its end came. A replay sends them all again; the answers
 * to what was answered before are checked against those counts and hashes and dropped ({@link #absorbOutput},
 * {@link #absorbEnd}), and any mismatch is a {@link ReplayMismatch}. Truncated at every barrier. Used by the task
 * thread only.
 *
 * <p>Its memory follows what it holds, up to its bound: the log starts small and doubles when an entry does not fit
 * (an allocation and a copy, until it reaches the most one checkpoint interval needs; after that, appending
 * allocates nothing), and is given back once it overflows, when nothing in it can be replayed until the next
 * barrier (a job without checkpoints never has one). What it holds is counted in a {@link JournalMemory}, which may
 * bound it lower than its own bound, and may refuse it more, which makes it overflow there too.
 *
 * <p>The log, entries appended from offset 0, each 8-byte aligned:
 * <pre>
 *   0   i32 kind            InputKind ordinal
 *   4   i32 key group       of a record (KeyGroups.NONE when not keyed) or a timer
 *   8   i64 sequence
 *   16  i64 value           a watermark's timestamp, a barrier's checkpoint id, a clock's time, a timer's time
 *   24  i32 body length     a record's RecordCodec body; a timer's i32 step, i32 domain and key; 0 for others
 *   28  i32 ended           1 once the input's end of outputs arrived, 2 once it failed in a dead-letter step
 *   32  i64 outputs         outputs (and timer changes) received for it
 *   40  i64 hash            of those, in order; of the failure, once failed
 *   48  body, padded to 8 bytes
 * </pre>
 */
public final class ReplayJournal implements AutoCloseable {

    private static final int KIND = 0;
    private static final int KEY_GROUP = 4;
    private static final int SEQUENCE = 8;
    private static final int VALUE = 16;
    private static final int BODY_LENGTH = 24;
    private static final int ENDED = 28;
    private static final int OUTPUTS = 32;
    private static final int HASH = 40;
    private static final int HEADER = 48;
    /** Where a timer's key starts in its body, after its step and domain. */
    private static final int TIMER_KEY = 2 * Integer.BYTES;
    private static final int ANSWERED = 1;
    private static final int FAILED = 2;
    private static final long NOT_JOURNALED = -1;
    private static final long FIRST_SIZE = 64 * 1024;
    private static final InputKind[] KINDS = InputKind.values();

    /** The inputs a replay sends, in order. */
    public interface Replayer {
        void record(long sequence, int keyGroup, BridgeRecord record) throws IOException;

        void watermark(long sequence, long timestamp) throws IOException;

        void barrier(long sequence, long checkpointId) throws IOException;

        void clock(long sequence, long processingTimeMillis) throws IOException;

        void endOfInput(long sequence) throws IOException;

        void timer(long sequence, int keyGroup, byte[] key, TimerFiring firing) throws IOException;
    }

    /** A replayed input's outputs differ from those its first answer gave: the step is not deterministic. */
    public static final class ReplayMismatch extends RuntimeException {
        ReplayMismatch(String message) {
            super(message);
        }
    }

    private final long capacityBytes;
    private final boolean boundByMemory;
    private final JournalMemory memory;
    /** The log's memory, null until the first entry and after an overflow. */
    private Arena arena;
    private MemorySegment log = MemorySegment.NULL;
    /** Where each input in flight is in the log, by sequence modulo its length; NOT_JOURNALED past the bound. */
    private final long[] inFlightOffsets;
    private long end;
    private int entries;
    private boolean overflowed;
    /** Whether the last overflow came from {@link #memory} refusing more, below the bound. */
    private boolean refused;
    /** The offset of the entry whose replayed answers come next, or NOT_JOURNALED when no replay is checked. */
    private long verifying = NOT_JOURNALED;
    /** Whether replayed answers must equal the first ones: not after a worker stopped for an upgrade. */
    private boolean comparing;
    private long replayedOutputs;
    private long replayedHash;

    /** @param capacityBytes the bound of the log: inputs past it since the last barrier make it overflow */
    public ReplayJournal(long capacityBytes, int maxInFlight) {
        this(capacityBytes, maxInFlight, JournalMemory.UNCOUNTED);
    }

    /**
     * @param capacityBytes the journal's own bound; {@code memory}'s limit bounds it when smaller
     * @param memory where the log's bytes are counted
     */
    public ReplayJournal(long capacityBytes, int maxInFlight, JournalMemory memory) {
        long own = Math.max(capacityBytes, HEADER);
        this.boundByMemory = memory.limitBytes() < own;
        this.capacityBytes = Math.min(own, memory.limitBytes());
        this.memory = memory;
        this.inFlightOffsets = new long[maxInFlight];
        Arrays.fill(inFlightOffsets, NOT_JOURNALED);
    }

    public void appendRecord(long sequence, int keyGroup, BridgeRecord record) {
        int bodyLength = RecordCodec.bodyLength(record.headers, record.payload);
        long at = append(InputKind.RECORD, sequence, keyGroup, 0, bodyLength);
        if (at != NOT_JOURNALED) {
            RecordCodec.write(log, at + HEADER, record.timestamp, record.headers, record.payload);
        }
    }

    /** A timer of {@code key}, in {@code keyGroup}, that fired. */
    public void appendTimer(long sequence, int keyGroup, byte[] key, TimerFiring firing) {
        long at = append(InputKind.TIMER, sequence, keyGroup, firing.getTimestamp(), TIMER_KEY + key.length);
        if (at != NOT_JOURNALED) {
            log.set(ValueLayout.JAVA_INT, at + HEADER, firing.getStep());
            log.set(ValueLayout.JAVA_INT, at + HEADER + Integer.BYTES, firing.getDomainValue());
            MemorySegment.copy(key, 0, log, ValueLayout.JAVA_BYTE, at + HEADER + TIMER_KEY, key.length);
        }
    }

    /** A watermark, with its timestamp; a barrier, with its checkpoint id; or the end of input. */
    public void appendMarker(InputKind kind, long sequence, long value) {
        append(kind, sequence, 0, value, 0);
    }

    private long append(InputKind kind, long sequence, int keyGroup, long value, int bodyLength) {
        int slot = (int) (sequence % inFlightOffsets.length);
        long length = HEADER + align(bodyLength);
        if (overflowed || end + length > log.byteSize() && !grow(end + length)) {
            overflowed = true;
            inFlightOffsets[slot] = NOT_JOURNALED;
            return NOT_JOURNALED;
        }
        long at = end;
        log.set(ValueLayout.JAVA_INT, at + KIND, kind.ordinal());
        log.set(ValueLayout.JAVA_INT, at + KEY_GROUP, keyGroup);
        log.set(ValueLayout.JAVA_LONG, at + SEQUENCE, sequence);
        log.set(ValueLayout.JAVA_LONG, at + VALUE, value);
        log.set(ValueLayout.JAVA_INT, at + BODY_LENGTH, bodyLength);
        log.set(ValueLayout.JAVA_INT, at + ENDED, 0);
        log.set(ValueLayout.JAVA_LONG, at + OUTPUTS, 0);
        log.set(ValueLayout.JAVA_LONG, at + HASH, 0);
        end += length;
        entries++;
        inFlightOffsets[slot] = at;
        return at;
    }

    /**
     * Makes the log hold at least {@code needed} bytes, doubling it, within the bound; past the bound, or when its
     * memory refuses the growth, the log is given back (nothing can be replayed now) and false returned.
     */
    private boolean grow(long needed) {
        if (needed > capacityBytes) {
            return giveUp(false);
        }
        long size = Math.max(log.byteSize(), FIRST_SIZE);
        while (size < needed) {
            size *= 2;
        }
        size = Math.min(size, capacityBytes);
        // What is counted is what the log holds: the old log, freed once copied, is not counted twice.
        long more = size - log.byteSize();
        if (!memory.reserve(more)) {
            return giveUp(true);
        }
        Arena larger = Arena.ofShared();
        MemorySegment grown;
        try {
            grown = larger.allocate(size, Long.BYTES);
        } catch (RuntimeException | Error e) {
            larger.close();
            memory.release(more);
            throw e;
        }
        MemorySegment.copy(log, 0, grown, 0, end);
        if (arena != null) {
            arena.close();
        }
        arena = larger;
        log = grown;
        return true;
    }

    private boolean giveUp(boolean refusedByMemory) {
        refused = refusedByMemory;
        release();
        // The entries of inputs still in flight went with it.
        Arrays.fill(inFlightOffsets, NOT_JOURNALED);
        return false;
    }

    private void release() {
        if (arena != null) {
            long held = log.byteSize();
            arena.close();
            arena = null;
            log = MemorySegment.NULL;
            memory.release(held);
        }
    }

    /** An output of input {@code sequence} (in flight) went on downstream. */
    public void outputReceived(long sequence, BridgeRecord output) {
        answerReceived(sequence, OutputHash.of(output));
    }

    /**
     * A part of input {@code sequence}'s answer (in flight) was taken, {@code hash} being an output's or a timer
     * change's: replayed answers must have the same parts in the same order.
     */
    public void answerReceived(long sequence, long hash) {
        long at = inFlightOffsets[(int) (sequence % inFlightOffsets.length)];
        if (at != NOT_JOURNALED) {
            log.set(ValueLayout.JAVA_LONG, at + OUTPUTS, log.get(ValueLayout.JAVA_LONG, at + OUTPUTS) + 1);
            log.set(ValueLayout.JAVA_LONG, at + HASH, OutputHash.chain(log.get(ValueLayout.JAVA_LONG, at + HASH),
                    hash));
        }
    }

    /** Input {@code sequence} (in flight) is fully answered. */
    public void ended(long sequence) {
        long at = inFlightOffsets[(int) (sequence % inFlightOffsets.length)];
        if (at != NOT_JOURNALED) {
            log.set(ValueLayout.JAVA_INT, at + ENDED, ANSWERED);
        }
    }

    /** Record input {@code sequence} (in flight) failed in a dead-letter step; {@code failure} hashes how. */
    public void failed(long sequence, long failure) {
        long at = inFlightOffsets[(int) (sequence % inFlightOffsets.length)];
        if (at != NOT_JOURNALED) {
            log.set(ValueLayout.JAVA_INT, at + ENDED, FAILED);
            log.set(ValueLayout.JAVA_LONG, at + HASH, failure);
        }
    }

    /** At a barrier whose state was taken, with nothing in flight: what came before is in that state. */
    public void truncate() {
        end = 0;
        entries = 0;
        overflowed = false;
        refused = false;
        verifying = NOT_JOURNALED;
        Arrays.fill(inFlightOffsets, NOT_JOURNALED);
    }

    /** Whether inputs were left out since the last barrier because the log was full: no replay is possible. */
    public boolean overflowed() {
        return overflowed;
    }

    /** The bound of the log: its own, or its memory's limit where that is smaller. */
    public long capacityBytes() {
        return capacityBytes;
    }

    /** Whether its memory's limit, smaller than its own bound, is its bound. */
    public boolean boundByMemory() {
        return boundByMemory;
    }

    /** Whether it overflowed because its memory refused more below the bound (only while {@link #overflowed()}). */
    public boolean refused() {
        return overflowed && refused;
    }

    /** Bytes of memory the log holds now. */
    public long allocatedBytes() {
        return log.byteSize();
    }

    public int entries() {
        return entries;
    }

    /**
     * Sends every input again, in order, and takes the answers that follow through {@link #absorbOutput} and
     * {@link #absorbEnd}: those of inputs answered before are dropped, compared with the first ones when
     * {@code compare} (a lost worker's replacement must give the same), or not (a worker that stopped for an
     * upgrade: its new build may answer differently, and what the old one answered has gone downstream). Either
     * way the entries then hold what the new worker gave, which a later replay is compared with.
     */
    public void replay(Replayer to, boolean compare) throws IOException {
        comparing = compare;
        if (overflowed) {
            throw new IllegalStateException("the journal overflowed; it cannot be replayed");
        }
        verifying = entries == 0 ? NOT_JOURNALED : 0;
        replayedOutputs = 0;
        replayedHash = 0;
        skipUnanswered();
        for (long at = 0; at < end; at = next(at)) {
            long sequence = log.get(ValueLayout.JAVA_LONG, at + SEQUENCE);
            long value = log.get(ValueLayout.JAVA_LONG, at + VALUE);
            switch (KINDS[log.get(ValueLayout.JAVA_INT, at + KIND)]) {
                case RECORD -> to.record(sequence, log.get(ValueLayout.JAVA_INT, at + KEY_GROUP), RecordCodec.read(log,
                        at + HEADER, log.get(ValueLayout.JAVA_INT, at + BODY_LENGTH), BridgeRecord::fromWire));
                case WATERMARK -> to.watermark(sequence, value);
                case BARRIER -> to.barrier(sequence, value);
                case CLOCK -> to.clock(sequence, value);
                case END_OF_INPUT -> to.endOfInput(sequence);
                case TIMER -> to.timer(sequence, log.get(ValueLayout.JAVA_INT, at + KEY_GROUP), log.asSlice(
                        at + HEADER + TIMER_KEY, log.get(ValueLayout.JAVA_INT, at + BODY_LENGTH) - TIMER_KEY)
                        .toArray(ValueLayout.JAVA_BYTE), TimerFiring.newBuilder().setTimestamp(value)
                        .setStep(log.get(ValueLayout.JAVA_INT, at + HEADER))
                        .setDomainValue(log.get(ValueLayout.JAVA_INT, at + HEADER + Integer.BYTES)).build());
            }
        }
    }

    /**
     * A replayed output: true when it repeats one received before (checked, to be dropped); false when it is new
     * (the input had not been fully answered when the worker was lost), to go on as any answer does.
     */
    public boolean absorbOutput(long sequence, BridgeRecord output) {
        // Hashed only in a replay: outside one every answer comes here first, and is hashed again when received.
        return verifying != NOT_JOURNALED && absorbAnswer(sequence, OutputHash.of(output));
    }

    /** A replayed answer's timer changes, as {@link #absorbOutput}. */
    public boolean absorbTimers(long sequence, TimerChanges changes) {
        return verifying != NOT_JOURNALED && absorbAnswer(sequence, OutputHash.of(changes));
    }

    /** A replayed part of an answer, an output's or its timer changes' {@code hash}, in a replay. */
    private boolean absorbAnswer(long sequence, long hash) {
        requireAnswering(sequence, "an output");
        requireNotFailedBefore(sequence, "gave an output");
        long received = log.get(ValueLayout.JAVA_LONG, verifying + OUTPUTS);
        boolean endedBefore = log.get(ValueLayout.JAVA_INT, verifying + ENDED) == ANSWERED;
        boolean repeated = replayedOutputs < received || endedBefore;
        if (comparing && replayedOutputs >= received && endedBefore) {
            throw mismatch(sequence, "gave more than the " + received + " output(s) it gave before");
        }
        // A new output is counted here too: outputReceived adds it to the entry as well, keeping the two equal.
        replayedOutputs++;
        replayedHash = OutputHash.chain(replayedHash, hash);
        if (comparing && replayedOutputs == received
                && replayedHash != log.get(ValueLayout.JAVA_LONG, verifying + HASH)) {
            throw mismatch(sequence, "gave " + received + " output(s) that differ from those it gave before");
        }
        return repeated;
    }

    /**
     * A replayed end of outputs: true when the input was fully answered before (checked, to be dropped); false
     * when this is its first end, to go on as any answer does.
     */
    public boolean absorbEnd(long sequence) {
        if (verifying == NOT_JOURNALED) {
            return false;
        }
        requireAnswering(sequence, "an end of outputs");
        requireNotFailedBefore(sequence, "was answered");
        long received = log.get(ValueLayout.JAVA_LONG, verifying + OUTPUTS);
        if (comparing && replayedOutputs < received) {
            throw mismatch(sequence, "gave " + replayedOutputs + " output(s) where it gave " + received + " before");
        }
        boolean answeredBefore = log.get(ValueLayout.JAVA_INT, verifying + ENDED) != 0;
        log.set(ValueLayout.JAVA_INT, verifying + ENDED, ANSWERED);
        log.set(ValueLayout.JAVA_LONG, verifying + OUTPUTS, replayedOutputs);
        log.set(ValueLayout.JAVA_LONG, verifying + HASH, replayedHash);
        verifyNext();
        return answeredBefore;
    }

    /**
     * A replayed failure in a dead-letter step: true when the input was answered before (checked: the same
     * failure, when comparing; to be dropped); false when this is its first answer, to go on as any failure does.
     */
    public boolean absorbFailure(long sequence, long failure) {
        if (verifying == NOT_JOURNALED) {
            return false;
        }
        requireAnswering(sequence, "a failure");
        int before = log.get(ValueLayout.JAVA_INT, verifying + ENDED);
        long received = log.get(ValueLayout.JAVA_LONG, verifying + OUTPUTS);
        if (comparing && (before == ANSWERED || received > 0)) {
            throw mismatch(sequence, "failed in a dead-letter step where it gave " + received + " output(s) before");
        }
        if (comparing && before == FAILED && log.get(ValueLayout.JAVA_LONG, verifying + HASH) != failure) {
            throw mismatch(sequence, "failed in another step, or with another error, than before");
        }
        log.set(ValueLayout.JAVA_INT, verifying + ENDED, FAILED);
        log.set(ValueLayout.JAVA_LONG, verifying + OUTPUTS, 0);
        log.set(ValueLayout.JAVA_LONG, verifying + HASH, failure);
        verifyNext();
        return before != 0;
    }

    private void verifyNext() {
        verifying = next(verifying);
        replayedOutputs = 0;
        replayedHash = 0;
        skipUnanswered();
    }

    private void requireNotFailedBefore(long sequence, String what) {
        if (comparing && log.get(ValueLayout.JAVA_INT, verifying + ENDED) == FAILED) {
            throw mismatch(sequence, what + " where it failed in a dead-letter step before");
        }
    }

    /** Whether replayed answers are still being checked. */
    public boolean verifying() {
        return verifying != NOT_JOURNALED;
    }

    /** Whether {@code sequence} is a replayed BARRIER answered before, whose answers come next. */
    public boolean verifyingBarrier(long sequence) {
        return verifying != NOT_JOURNALED && log.get(ValueLayout.JAVA_LONG, verifying + SEQUENCE) == sequence
                && KINDS[log.get(ValueLayout.JAVA_INT, verifying + KIND)] == InputKind.BARRIER;
    }

    /** The input whose replayed answers come next; only while {@link #verifying()}. */
    public long verifyingSequence() {
        return log.get(ValueLayout.JAVA_LONG, verifying + SEQUENCE);
    }

    /** Stops checking once the next entry had no answer at all: neither had any later one. */
    private void skipUnanswered() {
        if (verifying != NOT_JOURNALED && (verifying >= end
                || log.get(ValueLayout.JAVA_LONG, verifying + OUTPUTS) == 0
                && log.get(ValueLayout.JAVA_INT, verifying + ENDED) == 0)) {
            verifying = NOT_JOURNALED;
        }
    }

    private void requireAnswering(long sequence, String what) {
        long expected = log.get(ValueLayout.JAVA_LONG, verifying + SEQUENCE);
        if (sequence != expected) {
            throw new ReplayMismatch("the new worker sent " + what + " for replayed input #" + sequence
                    + " while input #" + expected + " was not yet answered (a protocol violation)");
        }
    }

    private ReplayMismatch mismatch(long sequence, String what) {
        return new ReplayMismatch("replayed input #" + sequence + " " + what + ": the steps are not deterministic,"
                + " so recovery in place cannot be sure of the result");
    }

    private long next(long at) {
        return at + HEADER + align(log.get(ValueLayout.JAVA_INT, at + BODY_LENGTH));
    }

    private static long align(int length) {
        return (length + 7L) & ~7L;
    }

    @Override
    public void close() {
        release();
    }

    /** A 64-bit hash of an output's fields, and the chain of an input's outputs in order. */
    public static final class OutputHash {

        private static final long PRIME = 0x100000001b3L;
        private static final long OFFSET = 0xcbf29ce484222325L;

        private OutputHash() {}

        public static long of(BridgeRecord record) {
            long hash = mix(OFFSET ^ record.timestamp);
            for (byte b : record.payload) {
                hash = (hash ^ (b & 0xff)) * PRIME;
            }
            // Headers are a map: their hash must not depend on its iteration order.
            long headers = 0;
            for (Map.Entry<String, String> header : record.headers.entrySet()) {
                headers += mix(chars(chars(OFFSET, header.getKey()) * PRIME, header.getValue()));
            }
            return mix(hash ^ headers);
        }

        /** The timer changes of one answer, by their encoding. */
        public static long of(TimerChanges changes) {
            long hash = OFFSET;
            for (byte b : changes.toByteArray()) {
                hash = (hash ^ (b & 0xff)) * PRIME;
            }
            return mix(hash);
        }

        /** A failure in a dead-letter step, by the step and the error's class (its message may vary). */
        public static long failure(String step, String errorClass) {
            return mix(chars(chars(OFFSET, step) * PRIME, errorClass));
        }

        public static long chain(long chained, long output) {
            return mix(chained * PRIME + output);
        }

        private static long chars(long hash, String text) {
            for (int i = 0; i < text.length(); i++) {
                hash = (hash ^ text.charAt(i)) * PRIME;
            }
            return hash;
        }

        /** The murmur3 finaliser, so that every input bit moves every output bit. */
        private static long mix(long h) {
            h ^= h >>> 33;
            h *= 0xff51afd7ed558ccdL;
            h ^= h >>> 33;
            h *= 0xc4ceb9fe1a85ec53L;
            return h ^ (h >>> 33);
        }
    }
}
