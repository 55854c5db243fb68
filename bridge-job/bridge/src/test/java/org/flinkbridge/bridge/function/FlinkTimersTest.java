package org.flinkbridge.bridge.function;

import org.apache.flink.api.common.operators.ProcessingTimeService;
import org.apache.flink.api.common.typeutils.TypeSerializer;
import org.apache.flink.api.common.typeutils.base.StringSerializer;
import org.apache.flink.runtime.state.KeyGroupRange;
import org.apache.flink.runtime.state.KeyGroupedInternalPriorityQueue;
import org.apache.flink.runtime.state.PriorityComparable;
import org.apache.flink.runtime.state.PriorityQueueSetFactory;
import org.apache.flink.runtime.state.Keyed;
import org.apache.flink.runtime.state.heap.HeapPriorityQueueElement;
import org.apache.flink.runtime.state.heap.HeapPriorityQueueSetFactory;
import org.flinkbridge.proto.data.TimeDomain;
import org.flinkbridge.proto.data.TimerChange;
import org.flinkbridge.proto.data.TimerChanges;
import org.flinkbridge.proto.data.TimerOp;
import org.junit.jupiter.api.Test;

import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ScheduledFuture;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

/**
 * A session's event-time timers in Flink's priority queues (the heap backend's, made as the backend makes them): a
 * timer set again while it is set does not reach the queue again, and one set again after it fired, was deleted or
 * was forgotten among more recent ones is set in the queue again.
 */
class FlinkTimersTest {

    private static final int MAX_PARALLELISM = 128;
    private static final String EVENT_TIME_QUEUE = "flink-bridge-event-time-timers";
    /** Event-time timers only: nothing here may ask the processing time service for a callback. */
    private static final ProcessingTimeService NO_CALLBACKS = new ProcessingTimeService() {
        @Override
        public long getCurrentProcessingTime() {
            return 0;
        }

        @Override
        public ScheduledFuture<?> registerTimer(long timestamp, ProcessingTimeCallback target) {
            throw new AssertionError("a processing-time callback, at " + timestamp);
        }
    };

    /** The queues the backend made, by name: the test reaches into them behind the timers' back. */
    private final Map<String, KeyGroupedInternalPriorityQueue<?>> queues = new HashMap<>();
    private final FlinkTimers timers = new FlinkTimers(new PriorityQueueSetFactory() {
        private final HeapPriorityQueueSetFactory heap =
                new HeapPriorityQueueSetFactory(KeyGroupRange.of(0, MAX_PARALLELISM - 1), MAX_PARALLELISM, 16);

        @Override
        public <T extends HeapPriorityQueueElement & PriorityComparable<? super T> & Keyed<?>>
                KeyGroupedInternalPriorityQueue<T> create(String name, TypeSerializer<T> serializer) {
            KeyGroupedInternalPriorityQueue<T> queue = heap.create(name, serializer);
            queues.put(name, queue);
            return queue;
        }
    }, StringSerializer.INSTANCE, MAX_PARALLELISM, NO_CALLBACKS, now -> { }, "session", 2);

    private static TimerChanges change(TimerOp op, long timestamp) {
        return TimerChanges.newBuilder().addChanges(TimerChange.newBuilder().setOp(op).setStep(0)
                .setDomain(TimeDomain.TIME_DOMAIN_EVENT_TIME).setTimestamp(timestamp)).build();
    }

    private void set(String key, long timestamp) {
        timers.apply(key, change(TimerOp.TIMER_OP_SET, timestamp));
    }

    /** Takes the earliest event-time timer out of the backend's queue without the timers knowing. */
    private void takeOutBehindTheirBack() {
        assertNotNull(queues.get(EVENT_TIME_QUEUE).poll());
    }

    @Test
    void aTimerSetAgainWhileItIsSetDoesNotReachTheQueueAgain() {
        set("a", 1_000);
        takeOutBehindTheirBack();

        set("a", 1_000);

        assertNull(timers.pollEventTime(Long.MAX_VALUE), "the second set was not added to the queue");
    }

    @Test
    void aTimerSetAgainAfterItFiredIsSetAgain() {
        set("a", 1_000);
        set("a", 1_000);
        assertEquals("a", timers.pollEventTime(1_000).key());

        set("a", 1_000);

        SessionExchange.Due again = timers.pollEventTime(1_000);
        assertNotNull(again, "the timer set after its firing fires");
        assertEquals(1_000, again.firing().getTimestamp());
        assertNull(timers.pollEventTime(Long.MAX_VALUE));
    }

    @Test
    void aTimerSetAgainAfterItWasDeletedIsSetAgain() {
        set("a", 1_000);
        timers.apply("a", change(TimerOp.TIMER_OP_DELETE, 1_000));
        assertNull(timers.pollEventTime(Long.MAX_VALUE), "deleted");

        set("a", 1_000);

        assertEquals("a", timers.pollEventTime(1_000).key());
    }

    @Test
    void aTimerForgottenAmongMoreRecentOnesReachesTheQueueWhenSetAgain() {
        set("a", 1);
        takeOutBehindTheirBack();
        for (int i = 0; i < FlinkTimers.REMEMBERED_TIMERS; i++) {
            set("key-" + i, 2);
        }

        set("a", 1);

        assertEquals("a", timers.pollEventTime(1).key(), "forgotten, so added to the queue again");
    }

    @Test
    void timersOfOtherKeysStepsOrTimesAreTheirOwn() {
        set("a", 1_000);
        set("b", 1_000);
        set("a", 2_000);
        timers.apply("a", TimerChanges.newBuilder().addChanges(TimerChange.newBuilder().setOp(TimerOp.TIMER_OP_SET)
                .setStep(1).setDomain(TimeDomain.TIME_DOMAIN_EVENT_TIME).setTimestamp(1_000)).build());

        int fired = 0;
        while (timers.pollEventTime(Long.MAX_VALUE) != null) {
            fired++;
        }

        assertEquals(4, fired);
    }
}
