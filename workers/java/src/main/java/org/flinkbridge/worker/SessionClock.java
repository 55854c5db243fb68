package org.flinkbridge.worker;

/**
 * A session's processing time: the bridge's clock as its CLOCK inputs stamp it, so that an input replayed in a
 * recovery in place sees the time it saw the first time. Until the bridge has sent one (a bridge always sends
 * one before a session's first other input) it is this process's clock. Read and set by the session's one
 * serving thread at a time.
 */
public final class SessionClock {

    private static final long NOT_STAMPED = Long.MIN_VALUE;

    private long stampedMillis = NOT_STAMPED;

    /** The bridge's clock reached {@code millis} (ms since the epoch). */
    public void stamp(long millis) {
        stampedMillis = millis;
    }

    /** Processing time in ms since the epoch. */
    public long millis() {
        return stampedMillis == NOT_STAMPED ? System.currentTimeMillis() : stampedMillis;
    }
}
