package org.flinkbridge.bridge.function;

import org.flinkbridge.bridge.BridgeRecord;
import org.flinkbridge.bridge.session.WorkerChannel;

import java.io.IOException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * The bridge's side of the exchange with one session, apart from Flink: inputs go out without waiting for their
 * answers, up to {@code maxInFlight}; answers must come in input order and go downstream in that order, a
 * watermark only once every earlier input's outputs have gone; while a checkpoint is taken the answers are held
 * (after the barrier, they belong to the next checkpoint) and released when the checkpoint completes or is
 * aborted, or before the next input; outputs a restored checkpoint held go out before anything else. A worker
 * that fails an input, breaks the order or stays silent past the timeout raises a {@link WorkerFailure} naming
 * the session and the cause.
 */
final class SessionExchange {

    /** Where answers go: the Flink function's collector and watermark manager. */
    interface Downstream {
        void emit(BridgeRecord output);

        void emitWatermark(long watermark);

        /** An output arrived from the worker (emitted now or held), for the counters. */
        void arrived();
    }

    /** An answer held back while a checkpoint is taken, in order. */
    sealed interface Held {
        record Output(BridgeRecord record) implements Held {}

        record Watermark(long timestamp) implements Held {}
    }

    private final String sessionName;
    private final WorkerChannel channel;
    private final long timeoutMillis;
    private final Supplier<String> workerExit;
    private final Downstream downstream;
    private final InFlight inFlight;
    private final Answers answers = new Answers();
    private final ArrayDeque<Held> held = new ArrayDeque<>();
    private List<BridgeRecord> restoredOutputs;
    private boolean holding;

    /**
     * @param workerExit      why the worker process ended, when this JVM started it; null while it runs
     * @param restoredOutputs outputs a restored checkpoint held back, emitted before anything else
     */
    SessionExchange(String sessionName, WorkerChannel channel, int maxInFlight, long timeoutMillis,
                    Supplier<String> workerExit, Downstream downstream, List<BridgeRecord> restoredOutputs) {
        this.sessionName = sessionName;
        this.channel = channel;
        this.timeoutMillis = timeoutMillis;
        this.workerExit = workerExit;
        this.downstream = downstream;
        this.inFlight = new InFlight(maxInFlight);
        this.restoredOutputs = new ArrayList<>(restoredOutputs);
    }

    /** @param keyGroup the record's Flink key group, or {@code KeyGroups.NONE} */
    void record(int keyGroup, BridgeRecord record) throws IOException {
        releasePending();
        makeRoom();
        channel.sendRecord(inFlight.add(InFlight.Kind.RECORD), keyGroup, record, answers);
        if (inFlight.size() == 1) {
            // Nothing else is on its way: send now rather than wait for a batch to fill.
            channel.flush();
        }
        channel.poll(answers, 0);
    }

    /** An event-time watermark: in-band to the worker, downstream once every earlier input's outputs are. */
    void watermark(long timestamp) throws IOException {
        releasePending();
        makeRoom();
        channel.sendWatermark(inFlight.addWatermark(timestamp), timestamp, answers);
        channel.flush();
        channel.poll(answers, 0);
    }

    /** The end of input: the worker gets a last watermark (not forwarded) and answers everything before. */
    void endOfInput() throws IOException {
        releasePending();
        makeRoom();
        channel.sendWatermark(inFlight.add(InFlight.Kind.END_OF_INPUT), Long.MAX_VALUE, answers);
        awaitAnswers(0);
    }

    /** Takes the answers that have arrived, sending inputs still batched (an answer means the worker has room). */
    void takeArrived() throws IOException {
        channel.flush();
        channel.poll(answers, 0);
    }

    /**
     * At a checkpoint (after its barrier went downstream): sends the worker a BARRIER, takes every earlier
     * input's answers without emitting them, and returns the outputs the checkpoint must store: a restored
     * checkpoint's not yet emitted, then the held ones. What was held goes downstream at {@link
     * #checkpointFinished} or before the next input.
     */
    List<BridgeRecord> barrier(long checkpointId) throws IOException {
        holding = true;
        try {
            makeRoom();
            channel.sendBarrier(inFlight.add(InFlight.Kind.BARRIER), checkpointId, answers);
            awaitAnswers(0);
        } finally {
            holding = false;
        }
        List<BridgeRecord> pending = new ArrayList<>(restoredOutputs);
        for (Held answer : held) {
            if (answer instanceof Held.Output output) {
                pending.add(output.record());
            }
        }
        return pending;
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
        if (!restoredOutputs.isEmpty()) {
            List<BridgeRecord> pending = restoredOutputs;
            restoredOutputs = new ArrayList<>();
            pending.forEach(downstream::emit);
        }
        releaseHeld();
    }

    private void releaseHeld() {
        Held next;
        while ((next = held.poll()) != null) {
            switch (next) {
                case Held.Output output -> downstream.emit(output.record());
                case Held.Watermark watermark -> downstream.emitWatermark(watermark.timestamp());
            }
        }
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
        channel.flush();
        long timeoutNanos = TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
        while (inFlight.size() > remaining) {
            if (!channel.poll(answers, timeoutNanos)) {
                String exit = workerExit.get();
                throw new WorkerFailure(sessionName + ": no answer to input #" + inFlight.oldest() + " within "
                        + timeoutMillis + " ms" + (exit == null ? " (the worker hangs or is unreachable)" : ": " + exit));
            }
        }
    }

    /** Emits the worker's answers, checking they come in input order; holds them while a checkpoint is taken. */
    private final class Answers implements WorkerChannel.Answers {

        @Override
        public void output(long sequence, BridgeRecord record) {
            expectOldest(sequence, "an output");
            // Held answers stay ahead of later ones until they are released.
            if (holding || !held.isEmpty()) {
                held.add(new Held.Output(record));
            } else {
                downstream.emit(record);
            }
            downstream.arrived();
        }

        @Override
        public void endOfOutputs(long sequence) {
            expectOldest(sequence, "an end of outputs");
            boolean isWatermark = inFlight.oldestKind() == InFlight.Kind.WATERMARK;
            long watermark = inFlight.oldestWatermark();
            inFlight.removeOldest();
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
            throw new WorkerFailure(sessionName + ": the worker failed input #" + sequence + ": " + message);
        }

        private void expectOldest(long sequence, String what) {
            if (inFlight.size() == 0 || sequence != inFlight.oldest()) {
                throw new WorkerFailure(sessionName + ": the worker sent " + what + " for input #" + sequence
                        + " but the oldest unanswered input is "
                        + (inFlight.size() == 0 ? "none" : "#" + inFlight.oldest()) + " (a protocol violation)");
            }
        }
    }

    /** The worker failed, died, hung or broke the protocol: the task must fail and restart. */
    static final class WorkerFailure extends RuntimeException {
        WorkerFailure(String message) {
            super(message);
        }
    }
}
