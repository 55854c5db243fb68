package org.flinkbridge.protocol;

import java.io.IOException;

/**
 * The session's worker is gone or unreachable: its process ended, it closed its end, its heartbeat or its answers
 * stopped past their limits, or its data stream broke. Unlike an answer that breaks the protocol or corrupt
 * frames, this is what recovery in place may mend with a new worker.
 */
public final class WorkerLostException extends IOException {

    public WorkerLostException(String message) {
        super(message);
    }

    public WorkerLostException(String message, Throwable cause) {
        super(message, cause);
    }
}
