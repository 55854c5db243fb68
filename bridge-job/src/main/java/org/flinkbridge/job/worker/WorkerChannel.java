package org.flinkbridge.job.worker;

import org.flinkbridge.job.BridgeRecord;

import java.io.IOException;

/**
 * The data path of one session, as the bridge function sees it, whatever the transport. Inputs carry a
 * sequence number; the worker answers each with its outputs and an end marker, in input order. Used by
 * one task thread only.
 */
public interface WorkerChannel extends AutoCloseable {

    void sendRecord(long sequence, BridgeRecord record) throws IOException;

    void sendWatermark(long sequence, long timestamp) throws IOException;

    /** Makes everything sent so far visible to the worker (sends a pending batch). */
    void flush() throws IOException;

    /**
     * Hands every answer already received to {@code answers}, first waiting up to {@code timeoutNanos} for
     * one if none is there (0 = do not wait).
     *
     * @return whether any answer was handed over
     */
    boolean poll(Answers answers, long timeoutNanos) throws IOException;

    /** A one-line description of the peer, for error messages. */
    String describePeer();

    @Override
    void close();

    /** The worker's answers, in order. */
    interface Answers {
        void output(long sequence, BridgeRecord output) throws IOException;

        void endOfOutputs(long sequence) throws IOException;

        void error(long sequence, String message) throws IOException;
    }
}
