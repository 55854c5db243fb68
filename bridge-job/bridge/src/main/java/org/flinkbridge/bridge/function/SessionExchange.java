package org.flinkbridge.bridge.function;

import com.google.protobuf.ByteString;
import org.flinkbridge.bridge.JobFailures;
import org.flinkbridge.bridge.journal.InputKind;
import org.flinkbridge.bridge.journal.ReplayJournal;
import org.flinkbridge.bridge.session.WorkerChannel;
import org.flinkbridge.proto.control.KeyGroupState;
import org.flinkbridge.proto.data.KeyCells;
import org.flinkbridge.proto.data.TimerChanges;
import org.flinkbridge.proto.data.TimerFiring;
import org.flinkbridge.protocol.InputFailures;
import org.flinkbridge.protocol.WorkerLostException;
import org.flinkbridge.records.BridgeRecord;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;

/**
 * The bridge's side of the exchange with one session, apart from Flink: inputs go out without waiting for their
 * answers, up to {@code maxInFlight}; answers must come in input order and go downstream in that order, a
 * watermark only once every earlier input's outputs have gone; while a checkpoint is taken the answers are held
 * (after the barrier, they belong to the next checkpoint) and released when the checkpoint completes or is
 * aborted, or before the next input; outputs a restored checkpoint held go out before anything else. A worker
 * that fails an input or breaks the order raises a {@link WorkerFailure} naming the session and the cause.
 *
 * <p>What a lost worker (gone, unreachable, or silent past the timeout) leads to is its {@link WorkerLoss}: recovery in
 * place ({@link InPlaceRecovery}), or the task's failure.
 */
final class SessionExchange {

    /** Where answers go: the Flink function's collector and watermark manager. */
    interface Downstream {
        void emit(BridgeRecord output);

        void emitWatermark(long watermark);

        /** An output arrived from the worker (emitted now or held), for the metrics. */
        void arrived(BridgeRecord output);

        /** Record input {@code sequence} went to the worker (not counting replays), for the metrics. */
        default void sent(long sequence, BridgeRecord input) {}

        /** Every answer to input {@code sequence} arrived, for the metrics. */
        default void answered(long sequence) {}

        /** A lost worker was recovered in place, for the counters. */
        void recovered(InPlaceRecovery.Recovery recovery);

        /** A record failed in a dead-letter step, as its dead letter ({@link DeadLetters}). */
        void deadLetter(BridgeRecord letter);
    }

    /** The session the exchange talks to, which recovery in place replaces. */
    interface Session {
        String name();

        WorkerChannel channel();

        /** Why the worker process ended, when this JVM started it; null while it runs. */
        String workerExit();

        /** The worker's state by key group, taken once every earlier input is answered. */
        List<KeyGroupState> snapshotState(long checkpointId) throws IOException;

        /**
         * Leaves the lost session and opens another (on a new worker, or at the worker's address) with {@code state};
         * {@code stopped}: the worker stopped as asked, for an upgrade, so the new session must be on the new build.
         */
        void replace(List<KeyGroupState> state, boolean stopped) throws IOException;
    }

    /** The key of a record of a keyed stream, as the operator's key selector gives it. */
    @FunctionalInterface
    interface KeyOf {
        String keyOf(BridgeRecord record) throws IOException;
    }

    /**
     * Where the cells of a keyed session live (Flink's keyed state, {@link CellStates}): read to load a key into the
     * worker, written with the worker's changes at a barrier (docs/protocol.md, "Cells").
     */
    interface Cells {
        /** Cells of no session: nothing to load or write. */
        Cells NONE = new Cells() {
            @Override
            public boolean declared() {
                return false;
            }

            @Override
            public List<KeyCells> load(String key, byte[] keyBytes, int maxBytes) {
                throw new IllegalStateException("no cells are declared");
            }

            @Override
            public void write(String key, KeyCells writes) {
                throw new IllegalStateException("no cells are declared");
            }
        };

        /** Whether the session's steps declared any cell. */
        boolean declared();

        /** The key's cells as LOAD messages of at most {@code maxBytes} each (at least one). */
        List<KeyCells> load(String key, byte[] keyBytes, int maxBytes) throws IOException;

        /** Applies the worker's changes to the key's cells. */
        void write(String key, KeyCells writes) throws IOException;
    }

    /**
     * Where a keyed session's timers live (Flink's timer service, {@link FlinkTimers}): set and deleted by the
     * worker's answers, fired as inputs (docs/protocol.md, "Timers").
     */
    interface Timers {
        /** Timers of no session: none set, none due. */
        Timers NONE = new Timers() {
            @Override
            public boolean declared() {
                return false;
            }

            @Override
            public void apply(String key, TimerChanges changes) {
                throw new IllegalStateException("no timers are declared");
            }

            @Override
            public Due pollEventTime(long watermark) {
                return null;
            }

            @Override
            public Due pollProcessingTime(long now) {
                return null;
            }

            @Override
            public void stop() {}
        };

        /** Whether the session's steps may set timers. */
        boolean declared();

        /** Applies the timer changes an input of {@code key} answered with, in order. */
        void apply(String key, TimerChanges changes) throws IOException;

        /** Takes the earliest event-time timer at or before {@code watermark}, or null when none is. */
        Due pollEventTime(long watermark) throws IOException;

        /** Takes the earliest processing-time timer at or before {@code now}, or null when none is. */
        Due pollProcessingTime(long now) throws IOException;

        /** The input ended: processing-time timers fire no more. */
        void stop();
    }

    /** A timer that fires: its key and the key's Flink key group, and which timer of the key. */
    record Due(String key, int keyGroup, TimerFiring firing) {}

    /** Outputs and dead letters not yet emitted, which a checkpoint stores and a restore emits first. */
    record Pending(List<BridgeRecord> outputs, List<BridgeRecord> deadLetters) {
        static final Pending NONE = new Pending(List.of(), List.of());

        Pending {
            outputs = new ArrayList<>(outputs);
            deadLetters = new ArrayList<>(deadLetters);
        }
    }

    /** What a checkpoint stores for this session: the worker's state and what was not yet emitted. */
    record Checkpoint(List<KeyGroupState> workerState, Pending pending) {}

    /** An answer held back while a checkpoint is taken, in order. */
    sealed interface Held {
        record Output(BridgeRecord record) implements Held {}

        record Watermark(long timestamp) implements Held {}

        record DeadLetter(BridgeRecord letter) implements Held {}
    }

    private final Session session;
    private final LongSupplier clock;
    private final long timeoutMillis;
    private final Downstream downstream;
    private final InFlight inFlight;
    private final WorkerLoss loss;
    private final Answers answers = new Answers();
    private final ArrayDeque<Held> held = new ArrayDeque<>();
    private final Inputs inputs = new Inputs();
    private final Replay replay = new Replay();
    private final DeadLetters deadLetters;
    private final KeyOf keyOf;
    private final Cells cells;
    private final ResidentKeys resident;
    private final Timers timers;
    /**
     * The cell writes answering the barrier in flight, applied once the checkpoint's worker state is taken: a worker
     * lost before that replays the inputs since the previous barrier, whose loads must not see these writes.
     */
    private final List<KeyCells> barrierWrites = new ArrayList<>();
    private WorkerChannel channel;
    private Pending restored;
    private boolean holding;
    /** The processing time last stamped on the inputs (it never goes back), and whether since the last barrier. */
    private long stampedMillis = Long.MIN_VALUE;
    private boolean stampedSinceBarrier;

    /**
     * @param loss     what a lost worker leads to: {@link InPlaceRecovery}, or {@link WorkerLoss#FAILOVER}
     * @param deadLetters what a failed record becomes; null when no step of the segment has dead letters
     * @param restored what a restored checkpoint held back, emitted before anything else
     * @param clock the processing time stamped on the inputs, and a dead letter's time (ms since the epoch)
     * @param keyOf a record's key, in a keyed session (the key every record carries); null when not keyed
     * @param cells where the session's cells live; {@link Cells#NONE} when its steps declare none
     * @param cellsBudgetBytes the bytes of cells past which a barrier evicts keys from the worker
     * @param timers where the session's timers live; {@link Timers#NONE} when its steps set none
     */
    SessionExchange(Session session, LongSupplier clock, int maxInFlight, long timeoutMillis, WorkerLoss loss,
                    DeadLetters deadLetters, Downstream downstream, Pending restored, KeyOf keyOf, Cells cells,
                    long cellsBudgetBytes, Timers timers) {
        this.session = session;
        this.timers = timers;
        this.keyOf = keyOf;
        this.cells = cells;
        this.resident = new ResidentKeys(cellsBudgetBytes);
        this.clock = clock;
        this.channel = session.channel();
        this.timeoutMillis = timeoutMillis;
        this.loss = loss;
        this.downstream = downstream;
        this.inFlight = new InFlight(maxInFlight);
        this.deadLetters = deadLetters;
        this.restored = restored;
    }

    /** A record of a stream that is not keyed, or whose key the exchange finds itself. */
    void record(int keyGroup, BridgeRecord record) throws IOException {
        record(keyGroup, keyOf == null ? null : keyOf.keyOf(record), record);
    }

    /**
     * @param keyGroup the record's Flink key group, or {@code KeyGroups.NONE}
     * @param key      the record's key in a keyed session (the operator's current key), else null
     */
    void record(int keyGroup, String key, BridgeRecord record) throws IOException {
        releasePending();
        // Nothing else on its way (a clock stamped now goes with this record): send now, not when a batch fills.
        boolean idle = inFlight.size() == 0;
        stampClock();
        makeRoom();
        long sequence = inFlight.addRecord(record, key);
        downstream.sent(sequence, record);
        loss.sentRecord(sequence, keyGroup, record);
        try {
            inputs.send(sequence, keyGroup, key, record);
            if (idle) {
                channel.flush();
            }
            channel.poll(answers, 0);
        } catch (WorkerLostException e) {
            lost(e);
        }
    }

    /**
     * An event-time watermark: in-band to the worker, downstream once every earlier input's outputs are; the
     * event-time timers it passes fire first.
     */
    void watermark(long timestamp) throws IOException {
        releasePending();
        fireEventTimers(timestamp);
        stampClock();
        makeRoom();
        long sequence = inFlight.addWatermark(timestamp);
        loss.sentMarker(InputKind.WATERMARK, sequence, timestamp);
        try {
            inputs.watermark(sequence, timestamp);
            channel.flush();
            channel.poll(answers, 0);
        } catch (WorkerLostException e) {
            lost(e);
        }
    }

    /**
     * Fires the event-time timers at or before {@code watermark}, in timestamp order, once every earlier input is
     * answered, so that the timers those inputs set are in place (docs/protocol.md, "Timers").
     */
    private void fireEventTimers(long watermark) throws IOException {
        if (!timers.declared()) {
            return;
        }
        awaitAnswers(0);
        Due due;
        while ((due = timers.pollEventTime(watermark)) != null) {
            fire(due);
        }
    }

    /** The bridge's clock reached {@code now}: the processing-time timers at or before it fire. */
    void processingTime(long now) throws IOException {
        releasePending();
        Due due;
        while ((due = timers.pollProcessingTime(now)) != null) {
            fire(due);
        }
    }

    /** Sends a timer that fires as an input of its key, journaled like a record. */
    private void fire(Due due) throws IOException {
        boolean idle = inFlight.size() == 0;
        stampClock();
        makeRoom();
        long sequence = inFlight.addTimer(due.key());
        byte[] key = due.key().getBytes(StandardCharsets.UTF_8);
        loss.sentTimer(sequence, due.keyGroup(), key, due.firing());
        try {
            inputs.send(sequence, due.keyGroup(), due.key(), key, due.firing());
            if (idle) {
                channel.flush();
            }
            channel.poll(answers, 0);
        } catch (WorkerLostException e) {
            lost(e);
        }
    }

    /**
     * Stamps processing time on the inputs that follow, with a CLOCK input when it has moved (and always first
     * after a barrier, where a replay starts): journaled like any input, so the steps of a worker that replays
     * the journal read the times the lost one read, and a step that closes a batch by age closes the same ones.
     */
    private void stampClock() throws IOException {
        long now = Math.max(clock.getAsLong(), stampedMillis);
        if (now == stampedMillis && stampedSinceBarrier) {
            return;
        }
        makeRoom();
        long sequence = inFlight.add(InputKind.CLOCK);
        loss.sentMarker(InputKind.CLOCK, sequence, now);
        stampedMillis = now;
        stampedSinceBarrier = true;
        try {
            inputs.clock(sequence, now);
        } catch (WorkerLostException e) {
            lost(e);
        }
    }

    /**
     * The end of input: every event-time timer fires, then the worker gets a last watermark (not forwarded) and
     * answers everything before; processing-time timers fire no more.
     */
    void endOfInput() throws IOException {
        releasePending();
        fireEventTimers(Long.MAX_VALUE);
        timers.stop();
        makeRoom();
        long sequence = inFlight.add(InputKind.END_OF_INPUT);
        loss.sentMarker(InputKind.END_OF_INPUT, sequence, Long.MAX_VALUE);
        try {
            inputs.endOfInput(sequence);
        } catch (WorkerLostException e) {
            lost(e);
        }
        awaitAnswers(0);
    }

    /** Takes the answers that have arrived, sending inputs still batched (an answer means the worker has room). */
    void takeArrived() throws IOException {
        try {
            channel.flush();
            channel.poll(answers, 0);
        } catch (WorkerLostException e) {
            lost(e);
        }
    }

    /**
     * At a checkpoint (after its barrier went downstream): sends the worker a BARRIER, takes every earlier
     * input's answers without emitting them, takes the worker's state, and returns it with the outputs the
     * checkpoint must store: a restored checkpoint's not yet emitted, then the held ones. What was held goes
     * downstream at {@link #checkpointFinished} or before the next input. The journal starts again from here.
     */
    Checkpoint checkpoint(long checkpointId) throws IOException {
        List<KeyGroupState> state;
        holding = true;
        try {
            makeRoom();
            long sequence = inFlight.add(InputKind.BARRIER);
            loss.sentMarker(InputKind.BARRIER, sequence, checkpointId);
            try {
                List<byte[]> evict = resident.evictAtBarrier(channel.maxCellFrameBytes() - Long.BYTES);
                channel.sendBarrier(sequence, checkpointId, evict, answers);
            } catch (WorkerLostException e) {
                lost(e);
            }
            state = awaitState(checkpointId);
            applyBarrierWrites();
        } finally {
            holding = false;
        }
        stampedSinceBarrier = false;
        loss.barrier(state);
        Pending pending = new Pending(restored.outputs(), restored.deadLetters());
        for (Held answer : held) {
            switch (answer) {
                case Held.Output output -> pending.outputs().add(output.record());
                case Held.DeadLetter letter -> pending.deadLetters().add(letter.letter());
                case Held.Watermark watermark -> { }
            }
        }
        return new Checkpoint(state, pending);
    }

    /**
     * The barrier is answered whole and the worker's state taken: its cells go into Flink's keyed state before the
     * keyed snapshot.
     */
    private void applyBarrierWrites() throws IOException {
        for (KeyCells writes : barrierWrites) {
            cells.write(resident.key(writes.getKey()), writes);
            resident.weigh(writes.getKey(), writes.getResidentBytes());
        }
        barrierWrites.clear();
    }

    /** Every answer up to the barrier, then the worker's state: taken again from a new worker if this one is lost. */
    private List<KeyGroupState> awaitState(long checkpointId) throws IOException {
        while (true) {
            awaitAnswers(0);
            try {
                return session.snapshotState(checkpointId);
            } catch (WorkerLostException e) {
                lost(e);
            }
        }
    }

    /**
     * The checkpoint completed or was aborted: what it held goes downstream now, with no further input. (A
     * restored checkpoint's outputs wait for the first input or the end of input: only those bring somewhere to
     * emit them to.)
     */
    void checkpointFinished() {
        releaseHeld();
    }

    /** Emits what a restored checkpoint held, then what the last checkpoint held back, in that order. */
    void releasePending() {
        if (restored != Pending.NONE) {
            Pending pending = restored;
            restored = Pending.NONE;
            pending.outputs().forEach(downstream::emit);
            pending.deadLetters().forEach(downstream::deadLetter);
        }
        releaseHeld();
    }

    private void releaseHeld() {
        Held next;
        while ((next = held.poll()) != null) {
            switch (next) {
                case Held.Output output -> downstream.emit(output.record());
                case Held.Watermark watermark -> downstream.emitWatermark(watermark.timestamp());
                case Held.DeadLetter letter -> downstream.deadLetter(letter.letter());
            }
        }
    }

    /** Releases what recovery in place keeps. */
    void close() {
        loss.close();
    }

    /** The keys whose cells the worker holds. */
    int residentKeys() {
        return resident.count();
    }

    /** The bytes of cells the worker holds, as the loads and its writes weighed them. */
    long residentCellBytes() {
        return resident.bytes();
    }

    /** Inputs sent and not yet answered. */
    int inFlight() {
        return inFlight.size();
    }

    private void makeRoom() throws IOException {
        if (inFlight.isFull()) {
            awaitAnswers(inFlight.capacity() - 1);
        }
    }

    /** Flushes and takes answers until at most {@code remaining} inputs are unanswered. */
    private void awaitAnswers(int remaining) throws IOException {
        while (inFlight.size() > remaining) {
            try {
                channel.flush();
                awaitSome(inFlight.oldest());
            } catch (WorkerLostException e) {
                lost(e);
            }
        }
    }

    /** Takes at least one answer, waiting up to the timeout; {@code oldest} names the input waited for. */
    private void awaitSome(long oldest) throws IOException {
        if (!channel.poll(answers, TimeUnit.MILLISECONDS.toNanos(timeoutMillis))) {
            String exit = session.workerExit();
            String silent = session.name() + ": no answer to input #" + oldest + " within " + timeoutMillis + " ms"
                    + (exit == null ? " (the worker hangs or is unreachable)" : ": " + exit);
            if (!loss.recoversInPlace()) {
                throw new WorkerFailure(silent);
            }
            throw new WorkerLostException(silent);
        }
    }

    /** The worker is lost: what follows is its {@link WorkerLoss}'s, unless the task is being cancelled. */
    private void lost(WorkerLostException lost) throws IOException {
        if (Thread.currentThread().isInterrupted()) {
            throw lost;
        }
        downstream.recovered(loss.recover(lost, replay));
    }

    /** The exchange as a recovery in place replays into it. */
    private final class Replay implements InPlaceRecovery.Replay {
        @Override
        public String sessionName() {
            return session.name();
        }

        @Override
        public boolean workerStopped() {
            return channel.workerStopped();
        }

        @Override
        public void reopen(List<KeyGroupState> state, boolean stopped) throws IOException {
            session.replace(state, stopped);
            channel = session.channel();
            // A new session holds no key, and a barrier's writes come again whole from the replay.
            resident.clear();
            barrierWrites.clear();
        }

        @Override
        public ReplayJournal.Replayer inputs() {
            return inputs;
        }

        @Override
        public void flush() throws IOException {
            channel.flush();
        }

        @Override
        public void awaitSome(long sequence) throws IOException {
            SessionExchange.this.awaitSome(sequence);
        }
    }

    /** Sends an input to the session's channel: the first time, and again when the journal is replayed. */
    private final class Inputs implements ReplayJournal.Replayer {
        /** A replayed record: its key is found again, and its cells loaded again into the new session if need be. */
        @Override
        public void record(long sequence, int keyGroup, BridgeRecord record) throws IOException {
            send(sequence, keyGroup, keyOf == null ? null : keyOf.keyOf(record), record);
        }

        /** A record, after its key's cells when the key is not resident in the session. */
        void send(long sequence, int keyGroup, String key, BridgeRecord record) throws IOException {
            byte[] keyBytes = null;
            if (key != null) {
                keyBytes = key.getBytes(StandardCharsets.UTF_8);
                makeResident(sequence, key, keyBytes);
            }
            channel.sendRecord(sequence, keyGroup, keyBytes, record, answers);
        }

        /** A replayed timer: its key is found again from its bytes. */
        @Override
        public void timer(long sequence, int keyGroup, byte[] key, TimerFiring firing) throws IOException {
            send(sequence, keyGroup, new String(key, StandardCharsets.UTF_8), key, firing);
        }

        /** A timer that fires, after its key's cells when the key is not resident in the session. */
        void send(long sequence, int keyGroup, String key, byte[] keyBytes, TimerFiring firing) throws IOException {
            makeResident(sequence, key, keyBytes);
            channel.sendTimer(sequence, keyGroup, keyBytes, firing, answers);
        }

        /** Loads the key's cells into the session as part of input {@code sequence}, unless they are there. */
        private void makeResident(long sequence, String key, byte[] keyBytes) throws IOException {
            if (cells.declared() && !resident.touch(ByteString.copyFrom(keyBytes))) {
                long bytes = 0;
                for (KeyCells load : cells.load(key, keyBytes, channel.maxCellFrameBytes())) {
                    channel.sendLoad(sequence, load, answers);
                    bytes += load.getSerializedSize();
                }
                resident.loaded(ByteString.copyFrom(keyBytes), key, bytes);
            }
        }

        @Override
        public void watermark(long sequence, long timestamp) throws IOException {
            channel.sendWatermark(sequence, timestamp, answers);
        }

        @Override
        public void barrier(long sequence, long checkpointId) throws IOException {
            channel.sendBarrier(sequence, checkpointId, answers);
        }

        @Override
        public void clock(long sequence, long processingTimeMillis) throws IOException {
            channel.sendClock(sequence, processingTimeMillis, answers);
        }

        @Override
        public void endOfInput(long sequence) throws IOException {
            channel.sendWatermark(sequence, Long.MAX_VALUE, answers);
        }
    }

    /** Emits the worker's answers, checking they come in input order; holds them while a checkpoint is taken. */
    private final class Answers implements WorkerChannel.Answers {

        @Override
        public void output(long sequence, BridgeRecord record) {
            if (loss.absorbOutput(sequence, record)) {
                return;
            }
            expectOldest(sequence, "an output");
            loss.outputReceived(sequence, record);
            // Held answers stay ahead of later ones until they are released.
            if (holding || !held.isEmpty()) {
                held.add(new Held.Output(record));
            } else {
                downstream.emit(record);
            }
            downstream.arrived(record);
        }

        @Override
        public void endOfOutputs(long sequence) throws IOException {
            if (loss.absorbEnd(sequence)) {
                return;
            }
            expectOldest(sequence, "an end of outputs");
            loss.ended(sequence);
            boolean isWatermark = inFlight.oldestKind() == InputKind.WATERMARK;
            long watermark = inFlight.oldestWatermark();
            inFlight.removeOldest();
            downstream.answered(sequence);
            if (!isWatermark) {
                return;
            }
            if (holding || !held.isEmpty()) {
                held.add(new Held.Watermark(watermark));
            } else {
                downstream.emitWatermark(watermark);
            }
        }

        @Override
        public void error(long sequence, String message) {
            throw new WorkerFailure(session.name() + ": the worker failed input #" + sequence + ": " + message);
        }

        @Override
        public void inputFailed(long sequence, InputFailures.Failure failure) {
            if (loss.absorbFailure(sequence, failure)) {
                return;
            }
            expectOldest(sequence, "a failed input");
            if (deadLetters == null) {
                throw new WorkerFailure(session.name() + ": the worker answered input #" + sequence + " as failed in "
                        + "step '" + failure.step() + "', but no step of the segment has on_error: dead_letter (a "
                        + "protocol violation); " + failure.errorClass() + ": " + failure.message());
            }
            if (inFlight.oldestKind() != InputKind.RECORD) {
                throw new WorkerFailure(session.name() + ": the worker answered input #" + sequence + ", a "
                        + inFlight.oldestKind() + ", as a failed record (a protocol violation); step '"
                        + failure.step() + "': " + failure.errorClass() + ": " + failure.message());
            }
            loss.failed(sequence, failure);
            BridgeRecord letter = deadLetters.letter(inFlight.oldestRecord(), failure, clock.getAsLong());
            inFlight.removeOldest();
            downstream.answered(sequence);
            if (holding || !held.isEmpty()) {
                held.add(new Held.DeadLetter(letter));
            } else {
                downstream.deadLetter(letter);
            }
        }

        @Override
        public void cellWrites(long sequence, KeyCells writes) {
            if (loss.replaysAnsweredBarrier(sequence)) {
                // The barrier's first writes were dropped with the lost session; these replace them.
                barrierWrites.add(requireResident(writes));
                return;
            }
            expectOldest(sequence, "cell writes");
            if (inFlight.oldestKind() != InputKind.BARRIER) {
                throw new WorkerFailure(session.name() + ": the worker answered input #" + sequence + ", a "
                        + inFlight.oldestKind() + ", with cell writes, which only answer a BARRIER (a protocol"
                        + " violation)");
            }
            barrierWrites.add(requireResident(writes));
        }

        private KeyCells requireResident(KeyCells writes) {
            if (resident.key(writes.getKey()) == null) {
                throw new WorkerFailure(session.name() + ": the worker wrote the cells of key '"
                        + writes.getKey().toStringUtf8() + "', which was never loaded into the session (a protocol"
                        + " violation)");
            }
            return writes;
        }

        @Override
        public void timers(long sequence, TimerChanges changes) throws IOException {
            if (loss.absorbTimers(sequence, changes)) {
                return;
            }
            expectOldest(sequence, "timer changes");
            InputKind kind = inFlight.oldestKind();
            if (!timers.declared() || kind != InputKind.RECORD && kind != InputKind.TIMER
                    || inFlight.oldestKey() == null) {
                throw new WorkerFailure(session.name() + ": the worker answered input #" + sequence + ", a " + kind
                        + (timers.declared() ? "" : " of a session whose steps declared no timers")
                        + ", with timer changes, which only answer a keyed RECORD or TIMER (a protocol violation)");
            }
            loss.timersReceived(sequence, changes);
            timers.apply(inFlight.oldestKey(), changes);
        }

        private void expectOldest(long sequence, String what) {
            if (inFlight.size() == 0 || sequence != inFlight.oldest()) {
                throw new WorkerFailure(session.name() + ": the worker sent " + what + " for input #" + sequence
                        + " but the oldest unanswered input is "
                        + (inFlight.size() == 0 ? "none" : "#" + inFlight.oldest()) + " (a protocol violation)");
            }
        }
    }

    /**
     * The worker failed, died, hung or broke the protocol: the task must fail and restart. Each is thrown as soon as
     * it is made, so it is recorded then.
     */
    static final class WorkerFailure extends RuntimeException {
        WorkerFailure(String message) {
            super(message);
            JobFailures.record(this);
        }

        WorkerFailure(String message, Throwable cause) {
            super(message, cause);
            JobFailures.record(this);
        }
    }
}
