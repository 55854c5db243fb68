package org.flinkbridge.worker.sdk;

/** The clock a timer goes by (docs/steps.md, "Timers"). */
public enum TimeDomain {
    /** Fires once the watermark reaches the timer's timestamp. */
    EVENT_TIME,
    /** Fires once the bridge's clock (the session's processing time) reaches the timer's timestamp. */
    PROCESSING_TIME
}
