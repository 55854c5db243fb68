package org.flinkbridge.worker.timers;

import org.flinkbridge.worker.sdk.TimeDomain;
import org.flinkbridge.worker.sdk.Timers;

/**
 * One step instance's timers: declared while it opens ({@link #declare}), then the handle through which it sets and
 * deletes timers of the current input's key, each change recorded with the step's place in the session.
 */
public final class StepTimers implements Timers {

    private final SessionTimers timers;
    private final int stepIndex;
    private final String step;
    private boolean opened;
    private boolean declared;

    /** @param stepIndex the step's place in its segment, from 0 */
    public StepTimers(SessionTimers timers, int stepIndex, String step) {
        this.timers = timers;
        this.stepIndex = stepIndex;
        this.step = step;
    }

    /** The step declares that it sets timers: what {@code StepContext.timers()} gives, in open() only. */
    public Timers declare() {
        if (opened) {
            throw new IllegalStateException("step '" + step + "' declares timers after it opened: a step declares "
                    + "its timers in open()");
        }
        if (!declared) {
            timers.declare(stepIndex, step);
            declared = true;
        }
        return this;
    }

    /** The step has opened: it declares no more. */
    public void opened() {
        opened = true;
    }

    @Override
    public void setEventTime(long timestamp) {
        timers.change(true, stepIndex, step, TimeDomain.EVENT_TIME, timestamp);
    }

    @Override
    public void deleteEventTime(long timestamp) {
        timers.change(false, stepIndex, step, TimeDomain.EVENT_TIME, timestamp);
    }

    @Override
    public void setProcessingTime(long timestamp) {
        timers.change(true, stepIndex, step, TimeDomain.PROCESSING_TIME, timestamp);
    }

    @Override
    public void deleteProcessingTime(long timestamp) {
        timers.change(false, stepIndex, step, TimeDomain.PROCESSING_TIME, timestamp);
    }

    @Override
    public long currentWatermark() {
        return timers.watermark();
    }

    @Override
    public long currentProcessingTime() {
        return timers.processingTime();
    }
}
