package org.flinkbridge.worker.sdk;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** The README's test of a user step, as written there: a per-key session closed by an event-time timer. */
class ReadmeExampleTest {

    /** Emits a key's last record once 30 s of event time pass without another (docs/steps.md, "Timers"). */
    public static class Sessions implements Step {
        private ValueCell last;
        private Timers timers;

        @Override
        public void open(StepContext context) {
            last = context.valueCell("last");
            timers = context.timers();
        }

        @Override
        public void process(Record input, Emitter output) {
            last.set(input.payload());
            timers.setEventTime(input.timestamp() + 30_000);
        }

        @Override
        public void onTimer(long timestamp, TimeDomain domain, Emitter output) {
            output.emit(new Record(last.get(), Map.of("closed", "true"), timestamp));
            last.clear();
        }
    }

    @Test
    void aQuietKeyClosesItsSession() throws Exception {
        byte[] key = "a".getBytes(UTF_8);
        try (StepHarness harness = StepHarness.of(Sessions.class, "{}")) {
            harness.process(key, new Record("hi".getBytes(UTF_8), Map.of(), 1_000));
            assertEquals(List.of(new StepHarness.Timer(TimeDomain.EVENT_TIME, 31_000)), harness.timers(key));
            List<Record> closed = harness.watermark(31_000);                 // the timer fires first
            assertEquals("hi", new String(closed.getFirst().payload(), UTF_8));
        }
    }
}
