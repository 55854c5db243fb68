package org.flinkbridge.protocol;

import java.io.IOException;

/** A record body whose lengths do not fit it: what a peer wrote cannot be decoded. */
public final class CorruptRecordException extends IOException {
    public CorruptRecordException(String message) {
        super(message);
    }
}
