package org.flinkbridge.transport.shm;

import java.lang.foreign.MemorySegment;
import java.util.function.BooleanSupplier;

/**
 * Watches a ring on behalf of its consumer, from another thread: sleeps (no spinning) until frames are
 * published that the consumer has not taken. It only reads the two positions, so it never races the
 * consumer; it lets a consumer that is busy elsewhere, or idle in someone else's loop, be told to come back.
 */
public final class RingWatch {

    private final RingControl control;
    private final WaitStrategy sleeping = new WaitStrategy(0);
    private final BooleanSupplier untaken = this::hasUntakenFrames;

    RingWatch(MemorySegment file, long controlOffset) {
        this.control = new RingControl(file, controlOffset);
    }

    /** Whether the producer has published frames the consumer has not released yet. */
    public boolean hasUntakenFrames() {
        return control.producerPositionForWait() != control.consumerPositionForWait();
    }

    /** Sleeps until there are untaken frames, {@link #wake} is called, or about {@code nanos} passed. */
    public boolean awaitUntakenFrames(long nanos) {
        control.awaitFrames(sleeping, untaken, nanos);
        return hasUntakenFrames();
    }

    /** Ends a sleep in {@link #awaitUntakenFrames} now, so the watching thread can stop. */
    public void wake() {
        control.wakeFrameWaiters();
    }
}
