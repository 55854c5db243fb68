package org.flinkbridge.protocol;

import java.io.IOException;

/**
 * The session's worker is gone or unreachable: its process ended, it closed its end, its heartbeat or its answers
 * stopped past their limits, or its data stream broke. Unlike an answer that breaks the protocol or corrupt
 * frames, this is what recovery in place may mend with a new worker. A worker that {@linkplain #stoppedAsAsked()
 * stopped as asked} (an upgrade) left on purpose after answering every input it read.
 */
public final class WorkerLostException extends IOException {

    private final boolean stoppedAsAsked;

    public WorkerLostException(String message) {
        this(message, null, false);
    }

    public WorkerLostException(String message, Throwable cause) {
        this(message, cause, false);
    }

    private WorkerLostException(String message, Throwable cause, boolean stoppedAsAsked) {
        super(message, cause);
        this.stoppedAsAsked = stoppedAsAsked;
    }

    /** The worker was asked to stop (SIGTERM), answered every input it read and ended its session on purpose. */
    public static WorkerLostException stoppedAsAsked(String message, Throwable cause) {
        return new WorkerLostException(message, cause, true);
    }

    public boolean stoppedAsAsked() {
        return stoppedAsAsked;
    }
}
