package org.flinkbridge.job.bridge;

import org.apache.flink.api.common.operators.MailboxExecutor;
import org.apache.flink.api.common.state.CheckpointListener;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.watermark.LongWatermark;
import org.apache.flink.api.common.watermark.Watermark;
import org.apache.flink.api.common.watermark.WatermarkHandlingResult;
import org.apache.flink.datastream.api.common.Collector;
import org.apache.flink.datastream.api.context.NonPartitionedContext;
import org.apache.flink.datastream.api.context.PartitionedContext;
import org.apache.flink.datastream.api.context.TaskInfo;
import org.apache.flink.datastream.api.extension.eventtime.EventTimeExtension;
import org.apache.flink.datastream.api.function.OneInputStreamProcessFunction;
import org.apache.flink.metrics.Counter;
import org.apache.flink.runtime.state.FunctionInitializationContext;
import org.apache.flink.runtime.state.FunctionSnapshotContext;
import org.apache.flink.runtime.state.KeyGroupRangeAssignment;
import org.apache.flink.streaming.api.checkpoint.CheckpointedFunction;
import org.flinkbridge.job.BridgeRecord;
import org.flinkbridge.job.JobCounters;
import org.flinkbridge.job.worker.BridgeSession;
import org.flinkbridge.job.worker.SessionSpec;
import org.flinkbridge.job.worker.WorkerChannel;
import org.flinkbridge.proto.control.KeyGroupState;
import org.flinkbridge.proto.control.SessionIdentity;
import org.flinkbridge.protocol.KeyGroups;

import java.io.IOException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Runs one segment of the pipeline in a worker: one instance per subtask, each owning one session.
 *
 * <p>Pipelined: inputs are sent without waiting for their answers, up to {@code maxInFlight}; answers are
 * emitted on the task thread (Flink collectors are not thread-safe) as they arrive, in input order, since
 * the worker answers a session strictly in order. An event-time watermark goes to the worker in-band and is
 * forwarded downstream only once every earlier input's outputs are emitted. A full window waits (that is
 * backpressure); a worker that fails an input, dies or stays silent past the timeout fails the task with
 * an error naming the session and the cause.
 *
 * <p>Checkpoints: the DataStream API V2 calls {@link #snapshotState} after the barrier has gone downstream.
 * So the function sends the worker a BARRIER frame, takes every earlier input's answers without emitting
 * them, asks the worker for its state (by key group), and stores both in operator state. What it held is
 * emitted when the checkpoint completes or is aborted, or before the next input if that comes first, so it
 * belongs to the next checkpoint; not inside snapshotState, where an operator chained behind this one (a
 * sink writer) may sit between its own pre-barrier flush and its snapshot. On restore the worker gets its
 * state back before any record, and the stored outputs are emitted before anything else.
 */
public final class BridgeFunction implements OneInputStreamProcessFunction<BridgeRecord, BridgeRecord>,
        CheckpointedFunction, CheckpointListener {

    private final SessionSpec spec;
    private final boolean keyed;
    private final boolean countSent;
    private final boolean countReceived;

    private transient ListState<byte[]> checkpointed;
    private transient List<byte[]> restoredEntries;
    private transient BridgeSession session;
    private transient WorkerChannel channel;
    private transient InFlight inFlight;
    private transient Collector<BridgeRecord> output;
    /** The operator's output, for the end of an input that brought no record or watermark. */
    private transient Collector<BridgeRecord> operatorOutput;
    private transient NonPartitionedContext<BridgeRecord> context;
    private transient Answers answers;
    private transient List<BridgeRecord> restoredOutputs;
    private transient int subtask;
    private transient int maxParallelism;
    private transient Counter sent;
    private transient Counter received;
    /** Whether a mail to take answers is queued, so a burst of arrivals queues one. */
    private transient AtomicBoolean answersMailQueued;
    private transient boolean closed;

    /**
     * @param keyed whether the function runs on a keyed stream, whose records carry their key group
     * @param countSent whether this segment's inputs count as the job's records sent to workers
     * @param countReceived whether its outputs count as the job's records received back
     */
    public BridgeFunction(SessionSpec spec, boolean keyed, boolean countSent, boolean countReceived) {
        this.spec = spec;
        this.keyed = keyed;
        this.countSent = countSent;
        this.countReceived = countReceived;
    }

    /** Called before {@link #open}: reads what a restored checkpoint holds; open() picks this subtask's part. */
    @Override
    public void initializeState(FunctionInitializationContext ctx) throws Exception {
        checkpointed = ctx.getOperatorStateStore().getUnionListState(CheckpointEntries.DESCRIPTOR);
        restoredEntries = new ArrayList<>();
        if (ctx.isRestored()) {
            checkpointed.get().forEach(restoredEntries::add);
        }
    }

    @Override
    public void open(NonPartitionedContext<BridgeRecord> ctx) throws Exception {
        context = ctx;
        TaskInfo task = ctx.getTaskInfo();
        subtask = task.getIndexOfThisSubtask();
        maxParallelism = task.getMaxParallelism();
        session = BridgeSession.open(spec, SessionIdentity.newBuilder()
                .setJobName(spec.jobName())
                .setOperatorName(task.getTaskName())
                .setSubtaskIndex(subtask)
                .setParallelism(task.getParallelism())
                .setAttempt(task.getAttemptNumber())
                .build());
        channel = session.channel();
        inFlight = new InFlight(spec.maxInFlight());
        answers = new Answers();
        sent = ctx.getMetricGroup().counter("bridgeRecordsSent");
        received = ctx.getMetricGroup().counter("bridgeRecordsReceived");
        CheckpointEntries.Restored restored = CheckpointEntries.select(
                restoredEntries == null ? List.of() : restoredEntries, subtask, task.getParallelism(), maxParallelism);
        restoredEntries = null;
        session.restoreState(restored.workerStates());
        restoredOutputs = new ArrayList<>(restored.outputs());
    }

    /** Called by {@link BridgeOperators} once the function is open, with its operator's own output. */
    void emitAtEndOfInputTo(Collector<BridgeRecord> operatorOutput) {
        this.operatorOutput = operatorOutput;
    }

    /**
     * Called by {@link BridgeOperators} once the function is open: from now on the channel wakes the task's
     * mailbox when answers arrive, and a mail takes them (and sends inputs still batched, since an answer
     * means the worker has room for them).
     */
    void takeAnswersAsTheyArrive(MailboxExecutor mailbox) {
        answersMailQueued = new AtomicBoolean();
        channel.onAnswersWaiting(() -> {
            if (answersMailQueued.compareAndSet(false, true)) {
                try {
                    mailbox.execute(this::takeArrivedAnswers, "flink-bridge: take the worker's answers");
                } catch (RejectedExecutionException taskEnding) {
                    // The task is ending: endInput waited for every answer, or a failure restores the checkpoint.
                    answersMailQueued.set(false);
                }
            }
        });
    }

    private void takeArrivedAnswers() throws IOException {
        answersMailQueued.set(false);
        if (!closed) {
            channel.flush();
            channel.poll(answers, 0);
        }
    }

    @Override
    public void processRecord(BridgeRecord record, Collector<BridgeRecord> out, PartitionedContext<BridgeRecord> ctx)
            throws Exception {
        useCollector(out);
        if (inFlight.isFull()) {
            awaitAnswers(spec.maxInFlight() - 1);
        }
        long sequence = inFlight.add(InFlight.Kind.RECORD);
        int keyGroup = keyed ? KeyGroupRangeAssignment.assignToKeyGroup(
                ctx.getStateManager().getCurrentKey(), maxParallelism) : KeyGroups.NONE;
        channel.sendRecord(sequence, keyGroup, record, answers);
        sent.inc();
        if (countSent) {
            JobCounters.add(JobCounters.Count.SENT, 1);
        }
        if (inFlight.size() == 1) {
            // Nothing else is on its way: send now rather than wait for a batch to fill.
            channel.flush();
        }
        channel.poll(answers, 0);
    }

    @Override
    public WatermarkHandlingResult onWatermark(Watermark watermark, Collector<BridgeRecord> out,
                                               NonPartitionedContext<BridgeRecord> ctx) throws Exception {
        if (!EventTimeExtension.isEventTimeWatermark(watermark)) {
            return WatermarkHandlingResult.PEEK;
        }
        useCollector(out);
        if (inFlight.isFull()) {
            awaitAnswers(spec.maxInFlight() - 1);
        }
        long timestamp = ((LongWatermark) watermark).getValue();
        channel.sendWatermark(inFlight.addWatermark(timestamp), timestamp, answers);
        channel.flush();
        channel.poll(answers, 0);
        return WatermarkHandlingResult.POLL;
    }

    @Override
    public void endInput(NonPartitionedContext<BridgeRecord> ctx) throws Exception {
        // With no record or watermark, the V2 API handed no collector (and on a keyed stream would hand one only
        // for keys seen since open): what a restored checkpoint held goes out through the operator's own.
        useCollector(output != null ? output : operatorOutput);
        if (inFlight.isFull()) {
            awaitAnswers(spec.maxInFlight() - 1);
        }
        // The end marker lets stateful segments emit what they hold; it is not forwarded downstream.
        channel.sendWatermark(inFlight.add(InFlight.Kind.END_OF_INPUT), Long.MAX_VALUE, answers);
        awaitAnswers(0);
    }

    /**
     * Takes the collector to emit to, first emitting what a restored checkpoint held and what the last
     * checkpoint held back, in that order.
     */
    private void useCollector(Collector<BridgeRecord> out) {
        output = out;
        if (!restoredOutputs.isEmpty()) {
            List<BridgeRecord> pending = restoredOutputs;
            restoredOutputs = new ArrayList<>();
            pending.forEach(answers::emit);
        }
        answers.releaseHeld();
    }

    @Override
    public void snapshotState(FunctionSnapshotContext ctx) throws Exception {
        long checkpointId = ctx.getCheckpointId();
        answers.holding = true;
        try {
            if (inFlight.isFull()) {
                awaitAnswers(spec.maxInFlight() - 1);
            }
            channel.sendBarrier(inFlight.add(InFlight.Kind.BARRIER), checkpointId, answers);
            awaitAnswers(0);
            List<byte[]> entries = new ArrayList<>();
            for (KeyGroupState state : session.snapshotState(checkpointId)) {
                entries.add(CheckpointEntries.workerState(subtask, state));
            }
            for (BridgeRecord pending : restoredOutputs) {
                entries.add(CheckpointEntries.output(subtask, pending));
            }
            for (Object held : answers.held) {
                if (held instanceof BridgeRecord record) {
                    entries.add(CheckpointEntries.output(subtask, record));
                }
            }
            checkpointed.update(entries);
        } finally {
            answers.holding = false;
        }
    }

    /** Emits what the checkpoint held back: with no further input (an idle source) nothing else would. */
    @Override
    public void notifyCheckpointComplete(long checkpointId) {
        answers.releaseHeld();
        session.notifyCheckpoint(checkpointId, true);
    }

    @Override
    public void notifyCheckpointAborted(long checkpointId) {
        answers.releaseHeld();
        session.notifyCheckpoint(checkpointId, false);
    }

    /** Flushes and emits answers until at most {@code remaining} inputs are unanswered. */
    private void awaitAnswers(int remaining) throws IOException {
        channel.flush();
        long timeoutNanos = TimeUnit.MILLISECONDS.toNanos(session.timeoutMillis());
        while (inFlight.size() > remaining) {
            if (!channel.poll(answers, timeoutNanos)) {
                String exit = session.workerExitDescription();
                throw new WorkerFailure(session.name() + ": no answer to input #" + inFlight.oldest()
                        + " within " + session.timeoutMillis() + " ms"
                        + (exit == null ? " (the worker hangs or is unreachable)" : ": " + exit));
            }
        }
    }

    @Override
    public void close() throws Exception {
        closed = true;
        if (session != null) {
            session.close();
        }
    }

    /**
     * Emits the worker's answers, checking they come in input order. While a checkpoint is taken the
     * answers are held instead (outputs and watermarks, in order) and emitted once it is stored.
     */
    private final class Answers implements WorkerChannel.Answers {

        final ArrayDeque<Object> held = new ArrayDeque<>();
        boolean holding;

        @Override
        public void output(long sequence, BridgeRecord record) throws IOException {
            expectOldest(sequence, "an output");
            if (output == null) {
                throw new WorkerFailure(session.name() + ": output for input #" + sequence
                        + " arrived with nowhere to go");
            }
            // Held answers stay ahead of later ones until they are released.
            if (holding || !held.isEmpty()) {
                held.add(record);
            } else {
                emit(record);
            }
            received.inc();
            if (countReceived) {
                JobCounters.add(JobCounters.Count.RECEIVED, 1);
            }
        }

        @Override
        public void endOfOutputs(long sequence) throws IOException {
            expectOldest(sequence, "an end of outputs");
            boolean isWatermark = inFlight.oldestKind() == InFlight.Kind.WATERMARK;
            long watermark = inFlight.oldestWatermark();
            inFlight.removeOldest();
            if (isWatermark) {
                if (holding || !held.isEmpty()) {
                    held.add(watermark);
                } else {
                    emitWatermark(watermark);
                }
            }
        }

        @Override
        public void error(long sequence, String message) {
            throw new WorkerFailure(session.name() + ": the worker failed input #" + sequence + ": " + message);
        }

        void emit(BridgeRecord record) {
            output.collectAndOverwriteTimestamp(record, record.timestamp);
        }

        private void emitWatermark(long watermark) {
            context.getWatermarkManager().emitWatermark(
                    EventTimeExtension.EVENT_TIME_WATERMARK_DECLARATION.newWatermark(watermark));
        }

        void releaseHeld() {
            Object next;
            while ((next = held.poll()) != null) {
                if (next instanceof BridgeRecord record) {
                    emit(record);
                } else {
                    emitWatermark((Long) next);
                }
            }
        }

        private void expectOldest(long sequence, String what) {
            if (inFlight.size() == 0 || sequence != inFlight.oldest()) {
                throw new WorkerFailure(session.name() + ": the worker sent " + what + " for input #" + sequence
                        + " but the oldest unanswered input is "
                        + (inFlight.size() == 0 ? "none" : "#" + inFlight.oldest())
                        + " (a protocol violation)");
            }
        }
    }

    /** The worker failed, died, hung or broke the protocol: the task must fail and restart. */
    public static final class WorkerFailure extends RuntimeException {
        public WorkerFailure(String message) {
            super(message);
        }
    }
}
