package org.flinkbridge.bridge.session;

import org.flinkbridge.proto.data.KeyCells;
import org.flinkbridge.proto.data.TimerChanges;
import org.flinkbridge.proto.data.TimerFiring;
import org.flinkbridge.protocol.InputFailures;
import org.flinkbridge.protocol.KeyGroups;
import org.flinkbridge.transport.grpc.GrpcChannels;

import java.io.IOException;
import java.util.List;
import org.flinkbridge.records.BridgeRecord;

/**
 * The data path of one session, as the bridge function sees it, whatever the transport. Inputs carry a
 * sequence number; the worker answers each with its outputs and an end marker, in input order. Used by
 * one task thread only.
 */
public interface WorkerChannel extends AutoCloseable {

    /**
     * Sends an input record of Flink key group {@code keyGroup} ({@link KeyGroups#NONE} for a stream that is
     * not keyed). A transport that must wait for room hands the answers that arrive meanwhile to
     * {@code whileWaiting}, so a worker blocked on its own answers can go on.
     *
     * @param key the record's key in a keyed session (its bytes as the pipeline's key extracts them); null in a
     *            session that is not keyed
     */
    void sendRecord(long sequence, int keyGroup, byte[] key, BridgeRecord record, Answers whileWaiting)
            throws IOException;

    /**
     * Sends part of record input {@code sequence}, before its record: its key's cells, which make the key resident
     * in the session (docs/protocol.md, "Cells"). Waits for room as {@link #sendRecord} does.
     */
    default void sendLoad(long sequence, KeyCells cells, Answers whileWaiting) throws IOException {
        throw new UnsupportedOperationException("this transport carries no cells");
    }

    /**
     * The most bytes a LOAD frame's cells or a BARRIER's keys to evict may take, so that the frame fits the
     * transport.
     */
    default int maxCellFrameBytes() {
        return GrpcChannels.MESSAGE_BUDGET_BYTES;
    }

    /**
     * Sends a timer of {@code key} that fires (docs/protocol.md, "Timers"), after its key's cells when it is not
     * resident. Waits for room as {@link #sendRecord} does.
     */
    default void sendTimer(long sequence, int keyGroup, byte[] key, TimerFiring firing, Answers whileWaiting)
            throws IOException {
        throw new UnsupportedOperationException("this transport carries no timers");
    }

    /** Sends a watermark (or the end-of-input marker); waits for room as {@link #sendRecord} does. */
    void sendWatermark(long sequence, long timestamp, Answers whileWaiting) throws IOException;

    /**
     * Sends the bridge's processing time (ms since the epoch), which the worker's steps read until the next one;
     * the worker answers it with no outputs. Waits for room as {@link #sendRecord} does.
     */
    void sendClock(long sequence, long processingTimeMillis, Answers whileWaiting) throws IOException;

    /**
     * Sends a checkpoint's flush marker: the worker answers it (with no outputs) once every earlier input
     * is answered. Waits for room as {@link #sendRecord} does.
     */
    void sendBarrier(long sequence, long checkpointId, Answers whileWaiting) throws IOException;

    /**
     * Sends a checkpoint's flush marker naming keys whose cells the worker drops once it has answered it
     * (docs/protocol.md, "Cells"). Waits for room as {@link #sendRecord} does.
     */
    default void sendBarrier(long sequence, long checkpointId, List<byte[]> evict, Answers whileWaiting)
            throws IOException {
        if (!evict.isEmpty()) {
            throw new UnsupportedOperationException("this transport carries no cells");
        }
        sendBarrier(sequence, checkpointId, whileWaiting);
    }

    /**
     * Whether the worker ended this session's data plane as stopped (asked to stop, an upgrade): then a control
     * call that finds the session gone is that stop too, not a failure.
     */
    boolean workerStopped();

    /** Makes everything sent so far visible to the worker (sends a pending batch). */
    void flush() throws IOException;

    /**
     * Hands every answer already received to {@code answers}, first waiting up to {@code timeoutNanos} for
     * one if none is there (0 = do not wait).
     *
     * @return whether any answer was handed over
     */
    boolean poll(Answers answers, long timeoutNanos) throws IOException;

    /**
     * Asks to be told when answers arrive while nobody polls: {@code wakeUp} is called from another thread
     * once answers wait, and again only after {@link #poll} has run (or as answers keep arriving). It must
     * only hand work to the task thread, which then polls. A transport whose answers come back within
     * the call that sent the input has nothing to tell and ignores it.
     */
    void onAnswersWaiting(Runnable wakeUp);

    /**
     * Bytes of inputs queued for the worker in the transport's ring, as a metrics reporter reads them from its own
     * thread; a transport without rings queues none there.
     */
    default long toWorkerRingBytes() {
        return 0;
    }

    /** Bytes of answers queued for the bridge in the transport's ring; see {@link #toWorkerRingBytes}. */
    default long fromWorkerRingBytes() {
        return 0;
    }

    @Override
    void close();

    /** The worker's answers, in order. */
    interface Answers {
        void output(long sequence, BridgeRecord output) throws IOException;

        void endOfOutputs(long sequence) throws IOException;

        void error(long sequence, String message) throws IOException;

        /** Record input {@code sequence} failed in a dead-letter step: its one answer. */
        void inputFailed(long sequence, InputFailures.Failure failure) throws IOException;

        /** Part of the answer to BARRIER {@code sequence}: one key's cells changed since the last barrier. */
        default void cellWrites(long sequence, KeyCells writes) throws IOException {
            throw new IOException("the worker sent cell writes for input #" + sequence + ", where none were asked"
                    + " for");
        }

        /** Part of the answer to a RECORD or TIMER {@code sequence}: the timers its steps set or deleted. */
        default void timers(long sequence, TimerChanges changes) throws IOException {
            throw new IOException("the worker sent timer changes for input #" + sequence + ", where none were asked"
                    + " for");
        }
    }
}
