package org.flinkbridge.bench;

import org.flinkbridge.worker.sdk.Emitter;
import org.flinkbridge.worker.sdk.Record;
import org.flinkbridge.worker.sdk.Step;
import org.flinkbridge.worker.sdk.StepContext;
import org.flinkbridge.worker.sdk.TimeDomain;
import org.flinkbridge.worker.sdk.Timers;

import java.util.Map;

/**
 * Answers each input with itself, as {@link EchoStep} does; with config {@code {"timers": true}} it also sets one
 * event-time timer per input, at the input's timestamp + {@code delay_ms} (default 10), or with {@code round_ms} at
 * the last millisecond of the input's slice of that many ms (so a key's inputs in one slice set the same timer, which
 * fires once, as a window's do), and counts the firings. At the
 * end of input each instance (one per key group) emits one empty record whose header {@value #FIRED_HEADER} is the
 * count of its firings, so the benchmark can tell that the timers fired. A keyed segment only, when it sets timers.
 */
public final class TimerCountStep implements Step {

    /** The step type naming this class (a constant: the benchmark JVM must not load this class, see EchoStep). */
    public static final String TYPE = "org.flinkbridge.bench.TimerCountStep";
    /** The header of the end-of-input record: how many timers fired in that instance. */
    public static final String FIRED_HEADER = "bench-timers-fired";

    private Timers timers;
    private long delayMillis;
    private long roundMillis;
    private long fired;

    @Override
    public void open(StepContext context) {
        if (context.config().path("timers").asBoolean(false)) {
            timers = context.timers();
            delayMillis = context.config().path("delay_ms").asLong(10);
            roundMillis = context.config().path("round_ms").asLong(0);
        }
    }

    @Override
    public void process(Record input, Emitter output) {
        if (timers != null) {
            long at = roundMillis > 0
                    ? input.timestamp() - Math.floorMod(input.timestamp(), roundMillis) + roundMillis - 1
                    : input.timestamp() + delayMillis;
            timers.setEventTime(at);
        }
        output.emit(input);
    }

    @Override
    public void onTimer(long timestamp, TimeDomain domain, Emitter output) {
        fired++;
    }

    @Override
    public void onWatermark(long timestamp, Emitter output) {
        if (timestamp == Long.MAX_VALUE) {
            output.emit(new Record(new byte[0], Map.of(FIRED_HEADER, Long.toString(fired)), 0));
        }
    }
}
