package org.flinkbridge.bridge.function;

import org.flinkbridge.bridge.journal.ReplayJournal;
import org.flinkbridge.proto.data.TimeDomain;
import org.flinkbridge.proto.data.TimerChange;
import org.flinkbridge.proto.data.TimerChanges;
import org.flinkbridge.proto.data.TimerFiring;
import org.flinkbridge.proto.data.TimerOp;
import org.flinkbridge.protocol.WorkerLostException;
import org.flinkbridge.records.BridgeRecord;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Timers as the exchange moves them (docs/protocol.md, "Timers"), without Flink: an answer's timer changes are
 * applied for its input's key; before a watermark every earlier input is answered and the event-time timers it
 * passes fire, in timestamp order, as TIMER inputs of their key; processing-time timers fire when the clock reaches
 * them; a replay sends the fired timers again and applies no change twice.
 */
class TimersExchangeTest {

    private final TimerWorker worker = new TimerWorker();
    private final MemoryTimers timers = new MemoryTimers();
    private final DownstreamLog downstream = new DownstreamLog();

    private SessionExchange exchange(WorkerLoss loss, SessionExchange.Session session) {
        return new SessionExchange(session, () -> 1_000, 8, 50, loss, null, downstream, SessionExchange.Pending.NONE,
                record -> text(record).split("@")[0], SessionExchange.Cells.NONE, 0, timers);
    }

    private SessionExchange exchange() {
        return exchange(WorkerLoss.FAILOVER, new FixedSession(worker));
    }

    @Test
    void aWatermarkFiresTheEventTimeTimersItPassesInTimestampOrderBeforeItGoesOn() throws IOException {
        SessionExchange exchange = exchange();
        // each record sets an event-time timer of its key at its own time
        exchange.record(0, "b", record("b@20"));
        exchange.record(0, "a", record("a@10"));
        exchange.record(0, "c", record("c@40"));

        exchange.watermark(30);

        assertEquals(List.of("CLOCK 0", "RECORD 1 b", "RECORD 2 a", "RECORD 3 c",
                "TIMER 4 a@10 step 0 TIME_DOMAIN_EVENT_TIME",
                "TIMER 5 b@20 step 0 TIME_DOMAIN_EVENT_TIME", "WATERMARK 6 30"), worker.inputs);
        assertEquals(List.of("fired a@10", "fired b@20", "watermark 30"), downstream.lines);
        assertEquals("[c@40 EVENT]", timers.pending.toString(), "the timer past the watermark waits");
    }

    @Test
    void theEndOfInputFiresEveryEventTimeTimerLeftAndStopsProcessingTime() throws IOException {
        SessionExchange exchange = exchange();
        exchange.record(0, "a", record("a@" + Long.MAX_VALUE));
        exchange.record(0, "b", record("b@5"));

        exchange.endOfInput();

        assertEquals(List.of("fired b@5", "fired a@" + Long.MAX_VALUE), downstream.lines);
        assertTrue(timers.stopped);
    }

    @Test
    void aDeletedTimerDoesNotFire() throws IOException {
        SessionExchange exchange = exchange();
        exchange.record(0, "a", record("a@10"));
        exchange.record(0, "a", record("a@10 delete"));

        exchange.watermark(100);

        assertEquals(List.of("watermark 100"), downstream.lines);
    }

    @Test
    void processingTimeTimersFireWhenTheClockReachesThem() throws IOException {
        worker.domain = TimeDomain.TIME_DOMAIN_PROCESSING_TIME;
        SessionExchange exchange = exchange();
        exchange.record(0, "a", record("a@2000"));
        exchange.record(0, "b", record("b@3000"));
        exchange.takeArrived();

        exchange.processingTime(2500);

        assertEquals(List.of("fired a@2000"), downstream.lines);
        assertEquals("TIMER 3 a@2000 step 0 TIME_DOMAIN_PROCESSING_TIME", worker.inputs.getLast());
    }

    @Test
    void timerChangesAnsweringAWatermarkFailTheTask() {
        worker.setTimersOnWatermarks = true;
        SessionExchange exchange = exchange();

        SessionExchange.WorkerFailure failure = assertThrows(SessionExchange.WorkerFailure.class,
                () -> exchange.watermark(5));

        assertTrue(failure.getMessage().contains("with timer changes, which only answer a keyed RECORD or TIMER"),
                failure.getMessage());
    }

    @Test
    void timerChangesInASessionThatDeclaredNoneFailTheTask() {
        SessionExchange exchange = new SessionExchange(new FixedSession(worker), () -> 1_000, 8, 50,
                WorkerLoss.FAILOVER, null, downstream, SessionExchange.Pending.NONE, record -> "a",
                SessionExchange.Cells.NONE, 0, SessionExchange.Timers.NONE);

        SessionExchange.WorkerFailure failure = assertThrows(SessionExchange.WorkerFailure.class,
                () -> exchange.record(0, "a", record("a@1")));

        assertTrue(failure.getMessage().contains("of a session whose steps declared no timers"),
                failure.getMessage());
    }

    /**
     * A worker lost after a timer fired: the replay sends the record and the timer again, the answers given before
     * are checked and dropped, and no timer change is applied twice.
     */
    @Test
    void aReplaySendsFiredTimersAgainAndAppliesNoChangeTwice() throws IOException {
        List<TimerWorker> workers = List.of(worker, new TimerWorker());
        SessionsInTurn sessions = new SessionsInTurn(workers);
        SessionExchange exchange = exchange(new InPlaceRecovery(new ReplayJournal(1 << 20, 8), List.of()), sessions);
        exchange.record(0, "a", record("a@10"));
        exchange.record(0, "b", record("b@50"));
        exchange.watermark(20);
        worker.loseOnNextInput = true;

        exchange.record(0, "c", record("c@30"));

        assertEquals(List.of("RECORD 1 a", "RECORD 2 b", "TIMER 3 a@10 step 0 TIME_DOMAIN_EVENT_TIME",
                "WATERMARK 4 20", "RECORD 5 c"), workers.get(1).inputs.subList(1, 6), "the replay, after its CLOCK");
        assertEquals(List.of("fired a@10", "watermark 20"), downstream.lines, "nothing twice");
        assertEquals("[c@30 EVENT, b@50 EVENT]", timers.pending.toString());
        assertEquals(3, timers.applied, "the changes of a, b and c, each once");
    }

    private static BridgeRecord record(String text) {
        return new BridgeRecord(text.getBytes(StandardCharsets.UTF_8), Map.of(), 0);
    }

    private static String text(BridgeRecord record) {
        return new String(record.payload, StandardCharsets.UTF_8);
    }

    /** Timers in memory, ordered by time then key, as Flink's timer service orders them. */
    private static final class MemoryTimers implements SessionExchange.Timers {
        record Timer(long timestamp, String key, int step, TimeDomain domain) {
            @Override
            public String toString() {
                return key + "@" + timestamp + " " + domain.name().replace("TIME_DOMAIN_", "").replace("_TIME", "");
            }
        }

        final TreeSet<Timer> pending = new TreeSet<>(Comparator.comparingLong(Timer::timestamp)
                .thenComparing(Timer::key).thenComparing(Timer::domain));
        int applied;
        boolean stopped;

        @Override
        public boolean declared() {
            return true;
        }

        @Override
        public void apply(String key, TimerChanges changes) {
            applied++;
            for (TimerChange change : changes.getChangesList()) {
                Timer timer = new Timer(change.getTimestamp(), key, change.getStep(), change.getDomain());
                if (change.getOp() == TimerOp.TIMER_OP_SET) {
                    pending.add(timer);
                } else {
                    pending.remove(timer);
                }
            }
        }

        @Override
        public SessionExchange.Due pollEventTime(long watermark) {
            return poll(watermark, TimeDomain.TIME_DOMAIN_EVENT_TIME);
        }

        @Override
        public SessionExchange.Due pollProcessingTime(long now) {
            return poll(now, TimeDomain.TIME_DOMAIN_PROCESSING_TIME);
        }

        private SessionExchange.Due poll(long upTo, TimeDomain domain) {
            for (Timer timer : pending) {
                if (timer.timestamp() > upTo) {
                    return null;
                }
                if (timer.domain() == domain) {
                    pending.remove(timer);
                    return new SessionExchange.Due(timer.key(), timer.key().charAt(0), TimerFiring.newBuilder().setTimestamp(timer.timestamp())
                            .setStep(timer.step()).setDomain(domain).build());
                }
            }
            return null;
        }

        @Override
        public void stop() {
            stopped = true;
        }
    }

    /**
     * A worker in memory: a record {@code K@T} sets a timer of its key at T (one ending in " delete" deletes it),
     * a firing emits {@code fired K@T}; it answers at once.
     */
    private static final class TimerWorker extends AnsweringWorker {
        TimeDomain domain = TimeDomain.TIME_DOMAIN_EVENT_TIME;
        boolean setTimersOnWatermarks;
        boolean loseOnNextInput;

        private void lostIfAsked() throws WorkerLostException {
            if (loseOnNextInput) {
                throw new WorkerLostException("the worker is gone");
            }
        }

        @Override
        public void sendRecord(long sequence, int keyGroup, byte[] key, BridgeRecord record, Answers whileWaiting) throws IOException {
            lostIfAsked();
            inputs.add("RECORD " + sequence + " " + new String(key, StandardCharsets.UTF_8));
            String[] parts = text(record).split("[@ ]");
            TimerChanges changes = TimerChanges.newBuilder().addChanges(TimerChange.newBuilder()
                    .setOp(parts.length > 2 ? TimerOp.TIMER_OP_DELETE : TimerOp.TIMER_OP_SET).setStep(0)
                    .setDomain(domain).setTimestamp(Long.parseLong(parts[1]))).build();
            answer(to -> {
                to.timers(sequence, changes);
                to.endOfOutputs(sequence);
            });
        }

        @Override
        public void sendTimer(long sequence, int keyGroup, byte[] key, TimerFiring firing, Answers whileWaiting)
                throws IOException {
            lostIfAsked();
            assertEquals(key[0], keyGroup, "the key group the timers gave");
            String fired = new String(key, StandardCharsets.UTF_8) + "@" + firing.getTimestamp();
            inputs.add("TIMER " + sequence + " " + fired + " step " + firing.getStep() + " " + firing.getDomain());
            answer(to -> {
                to.output(sequence, record("fired " + fired));
                to.endOfOutputs(sequence);
            });
        }

        @Override
        public void sendWatermark(long sequence, long timestamp, Answers whileWaiting) throws IOException {
            lostIfAsked();
            if (timestamp != Long.MAX_VALUE) {
                inputs.add("WATERMARK " + sequence + " " + timestamp);
            }
            answer(to -> {
                if (setTimersOnWatermarks) {
                    to.timers(sequence, TimerChanges.newBuilder().addChanges(TimerChange.newBuilder()
                            .setOp(TimerOp.TIMER_OP_SET).setDomain(domain).setTimestamp(1)).build());
                }
                to.endOfOutputs(sequence);
            });
        }

        @Override
        public void sendBarrier(long sequence, long checkpointId, Answers whileWaiting) {
            answer(to -> to.endOfOutputs(sequence));
        }

        @Override
        public void sendClock(long sequence, long processingTimeMillis, Answers whileWaiting) throws IOException {
            lostIfAsked();
            inputs.add("CLOCK " + sequence);
            answer(to -> to.endOfOutputs(sequence));
        }
    }
}
