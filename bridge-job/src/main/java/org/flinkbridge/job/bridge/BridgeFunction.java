package org.flinkbridge.job.bridge;

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
import org.flinkbridge.job.BridgeRecord;
import org.flinkbridge.job.JobCounters;
import org.flinkbridge.job.worker.BridgeSession;
import org.flinkbridge.job.worker.SessionSpec;
import org.flinkbridge.job.worker.WorkerChannel;
import org.flinkbridge.proto.control.SessionIdentity;

import java.io.IOException;
import java.util.concurrent.TimeUnit;

/**
 * Runs one segment of the pipeline in a worker: one instance per subtask, each owning one session.
 *
 * <p>Pipelined: inputs are sent without waiting for their answers, up to {@code maxInFlight}; answers are
 * emitted on the task thread (Flink collectors are not thread-safe) as they arrive, in input order, since
 * the worker answers a session strictly in order. An event-time watermark goes to the worker in-band and is
 * forwarded downstream only once every earlier input's outputs are emitted. A full window waits (that is
 * backpressure); a worker that fails an input, dies or stays silent past the timeout fails the task with
 * an error naming the session and the cause.
 */
public final class BridgeFunction implements OneInputStreamProcessFunction<BridgeRecord, BridgeRecord> {

    private final SessionSpec spec;
    private final boolean countSent;
    private final boolean countReceived;

    private transient BridgeSession session;
    private transient WorkerChannel channel;
    private transient InFlight inFlight;
    private transient Collector<BridgeRecord> output;
    private transient NonPartitionedContext<BridgeRecord> context;
    private transient Answers answers;
    private transient Counter sent;
    private transient Counter received;

    /**
     * @param countSent whether this segment's inputs count as the job's records sent to workers
     * @param countReceived whether its outputs count as the job's records received back
     */
    public BridgeFunction(SessionSpec spec, boolean countSent, boolean countReceived) {
        this.spec = spec;
        this.countSent = countSent;
        this.countReceived = countReceived;
    }

    @Override
    public void open(NonPartitionedContext<BridgeRecord> ctx) throws Exception {
        context = ctx;
        TaskInfo task = ctx.getTaskInfo();
        session = BridgeSession.open(spec, SessionIdentity.newBuilder()
                .setJobName(spec.jobName())
                .setOperatorName(task.getTaskName())
                .setSubtaskIndex(task.getIndexOfThisSubtask())
                .setParallelism(task.getParallelism())
                .setAttempt(task.getAttemptNumber())
                .build());
        channel = session.channel();
        inFlight = new InFlight(spec.maxInFlight());
        answers = new Answers();
        sent = ctx.getMetricGroup().counter("bridgeRecordsSent");
        received = ctx.getMetricGroup().counter("bridgeRecordsReceived");
    }

    @Override
    public void processRecord(BridgeRecord record, Collector<BridgeRecord> out, PartitionedContext<BridgeRecord> ctx)
            throws Exception {
        output = out;
        if (inFlight.isFull()) {
            awaitAnswers(spec.maxInFlight() - 1);
        }
        long sequence = inFlight.add(InFlight.NO_WATERMARK);
        channel.sendRecord(sequence, record, answers);
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
        output = out;
        if (inFlight.isFull()) {
            awaitAnswers(spec.maxInFlight() - 1);
        }
        long timestamp = ((LongWatermark) watermark).getValue();
        channel.sendWatermark(inFlight.add(timestamp), timestamp, answers);
        channel.flush();
        channel.poll(answers, 0);
        return WatermarkHandlingResult.POLL;
    }

    @Override
    public void endInput(NonPartitionedContext<BridgeRecord> ctx) throws Exception {
        if (output == null) {
            // No record or watermark came, so no collector was handed to us yet; ask for one.
            ctx.applyToAllPartitions((collector, partitionContext) -> output = collector);
        }
        if (inFlight.isFull()) {
            awaitAnswers(spec.maxInFlight() - 1);
        }
        // The end marker lets stateful segments emit what they hold; it is not forwarded downstream.
        channel.sendWatermark(inFlight.add(InFlight.END_OF_INPUT), Long.MAX_VALUE, answers);
        awaitAnswers(0);
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
        if (session != null) {
            session.close();
        }
    }

    /** Emits the worker's answers, checking they come in input order. */
    private final class Answers implements WorkerChannel.Answers {

        @Override
        public void output(long sequence, BridgeRecord record) throws IOException {
            expectOldest(sequence, "an output");
            if (inFlight.size() == 0 || output == null) {
                throw new WorkerFailure(session.name() + ": output for input #" + sequence
                        + " arrived with nowhere to go");
            }
            output.collectAndOverwriteTimestamp(record, record.timestamp);
            received.inc();
            if (countReceived) {
                JobCounters.add(JobCounters.Count.RECEIVED, 1);
            }
        }

        @Override
        public void endOfOutputs(long sequence) throws IOException {
            expectOldest(sequence, "an end of outputs");
            long watermark = inFlight.removeOldest();
            if (watermark != InFlight.NO_WATERMARK && watermark != InFlight.END_OF_INPUT) {
                context.getWatermarkManager().emitWatermark(
                        EventTimeExtension.EVENT_TIME_WATERMARK_DECLARATION.newWatermark(watermark));
            }
        }

        @Override
        public void error(long sequence, String message) {
            throw new WorkerFailure(session.name() + ": the worker failed input #" + sequence + ": " + message);
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
