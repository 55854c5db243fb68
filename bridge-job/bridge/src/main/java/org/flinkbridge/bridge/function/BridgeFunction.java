package org.flinkbridge.bridge.function;

import org.apache.flink.api.common.accumulators.LongCounter;
import org.apache.flink.api.common.functions.RuntimeContext;
import org.apache.flink.api.common.operators.MailboxExecutor;
import org.apache.flink.api.common.operators.ProcessingTimeService;
import org.apache.flink.api.common.state.CheckpointListener;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.watermark.LongWatermark;
import org.apache.flink.api.common.watermark.Watermark;
import org.apache.flink.api.common.watermark.WatermarkHandlingResult;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.datastream.api.common.Collector;
import org.apache.flink.datastream.api.context.NonPartitionedContext;
import org.apache.flink.datastream.api.context.PartitionedContext;
import org.apache.flink.datastream.api.context.TaskInfo;
import org.apache.flink.datastream.api.extension.eventtime.EventTimeExtension;
import org.apache.flink.datastream.api.function.OneInputStreamProcessFunction;
import org.apache.flink.runtime.state.FunctionInitializationContext;
import org.apache.flink.runtime.state.FunctionSnapshotContext;
import org.apache.flink.runtime.state.KeyGroupRangeAssignment;
import org.apache.flink.runtime.state.KeyedStateBackend;
import org.apache.flink.streaming.api.checkpoint.CheckpointedFunction;
import org.flinkbridge.bridge.JobCounters;
import org.flinkbridge.bridge.journal.JournalMemory;
import org.flinkbridge.bridge.journal.ReplayJournal;
import org.flinkbridge.bridge.session.SessionSpec;
import org.flinkbridge.proto.control.KeyGroupState;
import org.flinkbridge.proto.control.SessionIdentity;
import org.flinkbridge.protocol.KeyGroups;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;
import org.flinkbridge.records.BridgeRecord;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs one segment of the pipeline in a worker: one instance per subtask, each owning one session. A thin Flink
 * adapter over {@link SessionExchange}, which holds the exchange with the session (in-flight window, ordered
 * answers, holding across a checkpoint, restored outputs): this class opens the session, keeps the operator
 * state, and hands the exchange Flink's records, watermarks, end of input, checkpoints and collectors.
 *
 * <p>Answers are emitted on the task thread (Flink collectors are not thread-safe): as inputs are sent, and by a
 * mail the channel queues when answers arrive while the task has nothing to send.
 *
 * <p>Checkpoints: the DataStream API V2 calls {@link #snapshotState} after the barrier has gone downstream, so
 * the exchange sends the worker a BARRIER and holds every earlier input's answers; the held outputs go into
 * operator state, and the worker's state too when the stream is not keyed. A keyed segment's worker state goes by
 * key group into raw keyed state, which {@link BridgeOperators} writes and reads ({@link KeyGroupStateStream}). What was held is emitted when the checkpoint completes or
 * is aborted, or before the next input if that comes first, so it belongs to the next checkpoint; not inside
 * snapshotState, where an operator chained behind this one (a sink writer) may sit between its own pre-barrier
 * flush and its snapshot. On restore the worker gets its state back before any record, and the stored outputs
 * are emitted before anything else.
 */
public final class BridgeFunction implements OneInputStreamProcessFunction<BridgeRecord, BridgeRecord>,
        CheckpointedFunction, CheckpointListener {

    private static final Logger LOG = LoggerFactory.getLogger(BridgeFunction.class);

    private final SessionSpec spec;
    private final boolean keyed;
    private final boolean countSent;
    private final boolean countReceived;

    private transient ListState<byte[]> checkpointed;
    private transient List<byte[]> restoredEntries;
    /** Whether the keys' map cells are marked ({@link CellStates}): not in a job restored from unmarked ones. */
    private transient boolean mapsMarked;
    /** A keyed segment's worker state: restored from raw keyed state before open, taken at each checkpoint. */
    private transient List<KeyGroupState> keyedWorkerState;
    /** Where the journal's memory is counted: the operator's share of managed memory, handed before open. */
    private transient JournalMemory journalMemory;
    /** A keyed operator's state backend and key selector, handed before open: where cells live, and records' keys. */
    private transient KeyedStateBackend<?> keyedBackend;
    private transient KeySelector<BridgeRecord, ?> keySelector;
    /** A keyed operator's processing time service, handed before open: what fires processing-time timers. */
    private transient ProcessingTimeService processingTimeService;
    private transient ReplaceableSession session;
    private transient SessionExchange exchange;
    private transient Collector<BridgeRecord> output;
    /** The operator's output, for the end of an input that brought no record or watermark. */
    private transient Collector<BridgeRecord> operatorOutput;
    private transient Consumer<BridgeRecord> deadLetterOutput;
    private transient int subtask;
    private transient int maxParallelism;
    private transient SessionMetrics metrics;
    /** The operator's runtime context, handed before open: the V2 contexts do not expose the job's accumulators. */
    private transient RuntimeContext accumulators;
    /** The job's count of inputs sent to workers, or null where this segment's are not counted; likewise received. */
    private transient LongCounter sent;
    private transient LongCounter received;
    /** Whether a mail to take answers is queued, so a burst of arrivals queues one. */
    private transient AtomicBoolean answersMailQueued;
    private transient boolean closed;

    /**
     * @param keyed whether the function runs on a keyed stream, whose records carry their key group
     * @param countSent whether this segment's inputs count as the job's records sent to workers
     * @param countReceived whether its outputs count as the job's records received back
     */
    public BridgeFunction(SessionSpec spec, boolean keyed, boolean countSent, boolean countReceived) {
        this.spec = spec.withKeyed(keyed);
        this.keyed = keyed;
        this.countSent = countSent;
        this.countReceived = countReceived;
    }

    /** Whether a step of the segment closes by processing time when keyed ({@link SessionSpec#closesByProcessingTime}). */
    boolean closesByProcessingTime() {
        return spec.closesByProcessingTime();
    }

    /** Called before {@link #open}: reads what a restored checkpoint holds; open() picks this subtask's part. */
    @Override
    public void initializeState(FunctionInitializationContext ctx) throws Exception {
        checkpointed = ctx.getOperatorStateStore().getUnionListState(CheckpointEntries.DESCRIPTOR);
        restoredEntries = null;
        if (ctx.isRestored()) {
            restoredEntries = new ArrayList<>();
            checkpointed.get().forEach(restoredEntries::add);
        }
    }

    @Override
    public void open(NonPartitionedContext<BridgeRecord> ctx) throws Exception {
        TaskInfo task = ctx.getTaskInfo();
        subtask = task.getIndexOfThisSubtask();
        maxParallelism = task.getMaxParallelism();
        CheckpointEntries.Restored restored = CheckpointEntries.select(
                restoredEntries == null ? List.of() : restoredEntries, subtask, task.getParallelism(), maxParallelism);
        mapsMarked = restoredEntries == null || restored.mapsMarked();
        restoredEntries = null;
        List<KeyGroupState> workerStates = new ArrayList<>(restored.workerStates());
        if (keyedWorkerState != null) {
            workerStates.addAll(keyedWorkerState);
            keyedWorkerState = null;
        }
        session = new ReplaceableSession(spec, SessionIdentity.newBuilder()
                .setJobName(spec.jobName())
                .setOperatorName(task.getTaskName())
                .setSubtaskIndex(subtask)
                .setParallelism(task.getParallelism())
                .setAttempt(task.getAttemptNumber())
                .build(), workerStates);
        sent = countSent ? JobCounters.Count.SENT.in(accumulators) : null;
        received = countReceived ? JobCounters.Count.RECEIVED.in(accumulators) : null;
        JobCounters.countRestarts(accumulators);
        metrics = new SessionMetrics(ctx.getMetricGroup(), accumulators, spec.maxInFlight(),
                () -> exchange == null ? 0 : exchange.inFlight(), session::toWorkerRingBytes,
                session::fromWorkerRingBytes, spec.deadLetterSteps(), spec.windowSteps());
        WorkerLoss loss = spec.recovery().inPlace()
                ? new InPlaceRecovery(journal(), workerStates)
                : WorkerLoss.FAILOVER;
        exchange = new SessionExchange(session, System::currentTimeMillis, spec.maxInFlight(),
                spec.workerTimeoutMillis(), loss, spec.deadLetterSteps().isEmpty() ? null : new DeadLetters(
                        spec.jobName(), spec.segmentId() + " " + spec.segmentName()), new Downstream(ctx),
                new SessionExchange.Pending(restored.outputs(), restored.deadLetters()),
                keyed ? record -> keyOf(record) : null, cells(), spec.cellsBudgetBytes(), timers());
        if (!session.cells().isEmpty()) {
            metrics.watchResidentCells(ctx.getMetricGroup(), exchange::residentKeys, exchange::residentCellBytes);
        }
    }

    /** The session's cells in the keyed operator's state backend, once the worker declared them. */
    private SessionExchange.Cells cells() throws IOException {
        if (session.cells().isEmpty()) {
            return SessionExchange.Cells.NONE;
        }
        return new CellStates(keyedBackend("its steps declare cells " + session.cells().stream()
                .map(cell -> cell.getStep() + "/" + cell.getName()).toList()), session.name(), session.cells(),
                mapsMarked);
    }

    /** The session's timers in the keyed operator's state backend, once the worker said its steps set them. */
    private SessionExchange.Timers timers() throws IOException {
        if (!session.timers()) {
            return SessionExchange.Timers.NONE;
        }
        return new FlinkTimers(keyedBackend("its steps set timers"), maxParallelism, processingTimeService,
                this::processingTimeReached, session.name(), spec.steps().size());
    }

    /** The keyed operator's synchronous state backend, which {@code what} needs; else an IOException says why not. */
    private KeyedStateBackend<?> keyedBackend(String what) throws IOException {
        if (keyedBackend == null) {
            throw new IOException(session.name() + ": " + what + ", " + (keyed
                    ? "but the job's state backend gives this operator no synchronous access to keyed state"
                            + " (ForSt gives a DataStream V2 keyed operator only its asynchronous backend): use"
                            + " state.backend.type rocksdb or hashmap"
                    : "but its stream is not keyed (the worker should have refused the session)"));
        }
        return keyedBackend;
    }

    /** The processing time service reached a timer, on the task thread. */
    private void processingTimeReached(long now) throws IOException {
        if (closed) {
            return;
        }
        if (output == null) {
            output = operatorOutput;
        }
        exchange.processingTime(now);
    }

    private String keyOf(BridgeRecord record) throws IOException {
        try {
            return (String) keySelector.getKey(record);
        } catch (Exception e) {
            throw new IOException(session.name() + ": cannot find the key of a replayed record: " + e, e);
        }
    }

    /** The journal of recovery in place, counted in {@link #journalMemory}, which may bound it lower. */
    private ReplayJournal journal() {
        ReplayJournal journal = new ReplayJournal(spec.recovery().journalBytes(), spec.maxInFlight(),
                journalMemory == null ? JournalMemory.UNCOUNTED : journalMemory);
        if (journal.boundByMemory()) {
            LOG.info("{}: the journal of recovery in place holds at most {} bytes, {} (less than"
                            + " flink-bridge.worker.journal-size, {} bytes); a worker lost after more inputs than that"
                            + " since the last barrier fails the task", session.name(), journal.capacityBytes(),
                    ManagedJournalMemory.NAME, spec.recovery().journalBytes());
        }
        return journal;
    }

    /**
     * Called by {@link BridgeOperators} before {@link #open}: where the journal's memory is counted (the operator's
     * share of the slot's managed memory).
     */
    void countJournalIn(JournalMemory memory) {
        journalMemory = memory;
    }

    /**
     * The weight of the operator's use of managed memory, which {@link BridgeStreams} declares: the most its journal
     * holds, in MiB (at least 1), or 0 when it keeps no journal.
     */
    int journalWeight() {
        return spec.recovery().inPlace() ? (int) Math.max(1, Math.min(Integer.MAX_VALUE,
                spec.recovery().journalBytes() >> 20)) : 0;
    }

    /** Called by {@link BridgeOperators} before {@link #open}: where the job's counts go ({@link JobCounters}). */
    void countJobIn(RuntimeContext operatorContext) {
        accumulators = operatorContext;
    }

    /**
     * Called by {@link BridgeOperators} before {@link #open}: the keyed operator's state backend (null where it gives
     * no synchronous access), key selector and processing time service.
     */
    void keepCellsIn(KeyedStateBackend<?> backend, KeySelector<BridgeRecord, ?> selector,
                     ProcessingTimeService processingTimes) {
        keyedBackend = backend;
        keySelector = selector;
        processingTimeService = processingTimes;
    }

    /** Called by {@link BridgeOperators} before {@link #open}, with a keyed segment's restored worker state. */
    void restoreKeyedWorkerState(List<KeyGroupState> pieces) {
        keyedWorkerState = pieces;
    }

    /** Called by {@link BridgeOperators} after {@link #snapshotState}: a keyed segment's worker state to store. */
    List<KeyGroupState> takeKeyedWorkerState() {
        List<KeyGroupState> pieces = keyedWorkerState;
        keyedWorkerState = null;
        return pieces;
    }

    /**
     * Called by {@link BridgeOperators} once the function is open, with its operator's own output, and where dead
     * letters go (the operator's side output {@link BridgeStreams#DEAD_LETTERS}).
     */
    void emitThrough(Collector<BridgeRecord> operatorOutput, Consumer<BridgeRecord> deadLetterOutput) {
        this.operatorOutput = operatorOutput;
        this.deadLetterOutput = deadLetterOutput;
    }

    /**
     * Called by {@link BridgeOperators} once the function is open: from now on the channel wakes the task's
     * mailbox when answers arrive, and a mail takes them (and sends inputs still batched, since an answer
     * means the worker has room for them).
     */
    void takeAnswersAsTheyArrive(MailboxExecutor mailbox) {
        answersMailQueued = new AtomicBoolean();
        session.onAnswersWaiting(() -> {
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
            exchange.takeArrived();
        }
    }

    @Override
    public void processRecord(BridgeRecord record, Collector<BridgeRecord> out, PartitionedContext<BridgeRecord> ctx)
            throws Exception {
        output = out;
        Object key = keyed ? ctx.getStateManager().getCurrentKey() : null;
        int keyGroup = keyed ? KeyGroupRangeAssignment.assignToKeyGroup(key, maxParallelism) : KeyGroups.NONE;
        exchange.record(keyGroup, (String) key, record);
        if (sent != null) {
            sent.add(1L);
        }
    }

    @Override
    public WatermarkHandlingResult onWatermark(Watermark watermark, Collector<BridgeRecord> out,
                                               NonPartitionedContext<BridgeRecord> ctx) throws Exception {
        if (!EventTimeExtension.isEventTimeWatermark(watermark)) {
            return WatermarkHandlingResult.PEEK;
        }
        output = out;
        exchange.watermark(((LongWatermark) watermark).getValue());
        return WatermarkHandlingResult.POLL;
    }

    @Override
    public void endInput(NonPartitionedContext<BridgeRecord> ctx) throws Exception {
        // With no record or watermark, the V2 API handed no collector (and on a keyed stream would hand one only
        // for keys seen since open): what a restored checkpoint held goes out through the operator's own.
        if (output == null) {
            output = operatorOutput;
        }
        exchange.endOfInput();
    }

    @Override
    public void snapshotState(FunctionSnapshotContext ctx) throws Exception {
        long started = System.nanoTime();
        SessionExchange.Checkpoint checkpoint = exchange.checkpoint(ctx.getCheckpointId());
        metrics.checkpointDrained(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started));
        List<byte[]> entries = new ArrayList<>();
        entries.add(CheckpointEntries.mapMarks(subtask, mapsMarked));
        if (keyed) {
            keyedWorkerState = checkpoint.workerState();
        } else {
            for (KeyGroupState state : checkpoint.workerState()) {
                entries.add(CheckpointEntries.workerState(subtask, state));
            }
        }
        for (BridgeRecord record : checkpoint.pending().outputs()) {
            entries.add(CheckpointEntries.output(subtask, record));
        }
        for (BridgeRecord letter : checkpoint.pending().deadLetters()) {
            entries.add(CheckpointEntries.deadLetter(subtask, letter));
        }
        checkpointed.update(entries);
    }

    /** Emits what the checkpoint held back: with no further input (an idle source) nothing else would. */
    @Override
    public void notifyCheckpointComplete(long checkpointId) {
        exchange.checkpointFinished();
        session.notifyCheckpoint(checkpointId, true);
    }

    @Override
    public void notifyCheckpointAborted(long checkpointId) {
        exchange.checkpointFinished();
        session.notifyCheckpoint(checkpointId, false);
    }

    @Override
    public void close() throws Exception {
        closed = true;
        if (session != null) {
            session.close();
        }
        if (exchange != null) {
            exchange.close();
        }
    }

    /** Where the exchange's answers go: the collector of the current input, and the watermark manager. */
    private final class Downstream implements SessionExchange.Downstream {

        private final NonPartitionedContext<BridgeRecord> context;

        Downstream(NonPartitionedContext<BridgeRecord> context) {
            this.context = context;
        }

        @Override
        public void recovered(InPlaceRecovery.Recovery recovery) {
            metrics.recovered(recovery);
        }

        @Override
        public void sent(long sequence, BridgeRecord input) {
            metrics.recordSent(sequence, input.payload.length);
        }

        @Override
        public void answered(long sequence) {
            metrics.answered(sequence);
        }

        @Override
        public void emit(BridgeRecord record) {
            if (output == null) {
                throw new SessionExchange.WorkerFailure(session.name() + ": an output arrived with nowhere to go");
            }
            metrics.outputEmitted(record);
            output.collectAndOverwriteTimestamp(record, record.timestamp);
        }

        @Override
        public void deadLetter(BridgeRecord letter) {
            metrics.deadLetter(letter.headers.get(DeadLetters.STEP));
            deadLetterOutput.accept(letter);
        }

        @Override
        public void emitWatermark(long watermark) {
            context.getWatermarkManager().emitWatermark(
                    EventTimeExtension.EVENT_TIME_WATERMARK_DECLARATION.newWatermark(watermark));
        }

        @Override
        public void arrived(BridgeRecord output) {
            metrics.outputReceived(output.payload.length);
            if (received != null) {
                received.add(1L);
            }
        }
    }
}
