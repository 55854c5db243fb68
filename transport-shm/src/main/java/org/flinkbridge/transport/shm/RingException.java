package org.flinkbridge.transport.shm;

import java.io.IOException;

/** A ring that cannot be used: a corrupt frame, a bad header, a frame too large, a peer gone. */
public class RingException extends IOException {
    public RingException(String message) {
        super(message);
    }

    public RingException(String message, Throwable cause) {
        super(message, cause);
    }
}
