package org.flinkbridge.bridge.function;

import org.apache.flink.api.common.operators.ProcessingTimeService;
import org.apache.flink.api.common.typeutils.TypeSerializer;
import org.apache.flink.api.common.typeutils.base.IntSerializer;
import org.apache.flink.runtime.checkpoint.CheckpointType;
import org.apache.flink.runtime.state.AbstractKeyedStateBackend;
import org.apache.flink.runtime.state.KeyGroupRangeAssignment;
import org.apache.flink.runtime.state.KeyedStateBackend;
import org.apache.flink.runtime.state.PriorityQueueSetFactory;
import org.apache.flink.streaming.api.operators.TimerHeapInternalTimer;
import org.apache.flink.streaming.api.operators.TimerSerializer;
import org.flinkbridge.proto.data.TimeDomain;
import org.flinkbridge.proto.data.TimerChange;
import org.flinkbridge.proto.data.TimerChanges;
import org.flinkbridge.proto.data.TimerFiring;

import java.io.IOException;
import java.util.concurrent.ScheduledFuture;

/**
 * A keyed session's timers in Flink's keyed state backend: one priority queue per time domain of timers, each its
 * key, its timestamp and, as namespace, the index of the step that set it. The backend checkpoints them with the
 * keyed state (incrementally with RocksDB) and hands each key group's to the subtask that owns it on a restore at
 * any parallelism, as it does for Flink's own timers; the bridge fires event-time ones as watermarks pass them and
 * processing-time ones from the task's processing time service, which calls back on the task thread. Each queue
 * remembers the timers recently set in it ({@link TimerQueue}), so that setting one again does not reach the backend.
 */
final class FlinkTimers implements SessionExchange.Timers {

    /** Called on the task thread when the bridge's clock reaches the earliest processing-time timer. */
    @FunctionalInterface
    interface ProcessingTimeReached {
        void reached(long now) throws Exception;
    }

    /**
     * How many recently set timers each queue remembers ({@link TimerQueue}): one per key for the keys of the last few
     * thousand records, as a window sets them, at about 100 bytes of heap each plus its key.
     */
    static final int REMEMBERED_TIMERS = 4_096;

    private final TimerQueue eventTime;
    private final TimerQueue processingTime;
    private final ProcessingTimeService clock;
    private final ProcessingTimeReached reached;
    private final String sessionName;
    private final int steps;
    private final int maxParallelism;
    /** The time the processing time service is to call back at, Long.MAX_VALUE when it is not to. */
    private long wakeUpAt = Long.MAX_VALUE;
    private ScheduledFuture<?> wakeUp;
    private boolean stopped;

    /**
     * @param steps the session's step count: a timer's step is an index below it
     * @throws IOException when the backend would not keep the timers in its snapshots (RocksDB with timers on the
     *                     heap)
     */
    @SuppressWarnings("unchecked")
    FlinkTimers(KeyedStateBackend<?> backend, int maxParallelism, ProcessingTimeService clock,
                ProcessingTimeReached reached, String sessionName, int steps) throws IOException {
        if (backend instanceof AbstractKeyedStateBackend<?> checkpointed
                && checkpointed.requiresLegacySynchronousTimerSnapshots(CheckpointType.CHECKPOINT)) {
            throw new IOException(sessionName + ": its steps set timers, which this state backend keeps on the heap "
                    + "apart from its snapshots (state.backend.rocksdb.timer-service.factory: HEAP): use ROCKSDB, "
                    + "the default");
        }
        this(backend, (TypeSerializer<String>) backend.getKeySerializer(), maxParallelism, clock, reached,
                sessionName, steps);
    }

    /** @param queues where the two queues are made: the keyed backend, whose keys {@code keySerializer} writes */
    FlinkTimers(PriorityQueueSetFactory queues, TypeSerializer<String> keySerializer, int maxParallelism,
                ProcessingTimeService clock, ProcessingTimeReached reached, String sessionName, int steps) {
        TimerSerializer<String, Integer> serializer = new TimerSerializer<>(keySerializer, IntSerializer.INSTANCE);
        this.eventTime = new TimerQueue(queues.create("flink-bridge-event-time-timers", serializer),
                REMEMBERED_TIMERS);
        this.processingTime = new TimerQueue(queues.create("flink-bridge-processing-time-timers", serializer),
                REMEMBERED_TIMERS);
        this.clock = clock;
        this.reached = reached;
        this.sessionName = sessionName;
        this.steps = steps;
        this.maxParallelism = maxParallelism;
        wakeUpForEarliest();
    }

    @Override
    public boolean declared() {
        return true;
    }

    @Override
    public void apply(String key, TimerChanges changes) {
        for (TimerChange change : changes.getChangesList()) {
            if (change.getStep() >= steps) {
                throw violation("names step " + change.getStep() + " of " + steps, key);
            }
            TimerHeapInternalTimer<String, Integer> timer = new TimerHeapInternalTimer<>(change.getTimestamp(), key,
                    change.getStep());
            var queue = switch (change.getDomain()) {
                case TIME_DOMAIN_EVENT_TIME -> eventTime;
                case TIME_DOMAIN_PROCESSING_TIME -> processingTime;
                default -> throw violation("has the time domain " + change.getDomain(), key);
            };
            switch (change.getOp()) {
                case TIMER_OP_SET -> {
                    if (queue.set(timer) && queue == processingTime && change.getTimestamp() < wakeUpAt) {
                        wakeUpAt(change.getTimestamp());
                    }
                }
                case TIMER_OP_DELETE -> queue.delete(timer);
                default -> throw violation("has the operation " + change.getOp(), key);
            }
        }
    }

    private SessionExchange.WorkerFailure violation(String what, String key) {
        return new SessionExchange.WorkerFailure(sessionName + ": a timer change the worker sent for key '" + key
                + "' " + what + " (a protocol violation)");
    }

    @Override
    public SessionExchange.Due pollEventTime(long watermark) {
        return poll(eventTime, watermark, TimeDomain.TIME_DOMAIN_EVENT_TIME);
    }

    @Override
    public SessionExchange.Due pollProcessingTime(long now) {
        return poll(processingTime, now, TimeDomain.TIME_DOMAIN_PROCESSING_TIME);
    }

    private SessionExchange.Due poll(TimerQueue queue, long upTo, TimeDomain domain) {
        TimerHeapInternalTimer<String, Integer> earliest = queue.peek();
        if (earliest == null || earliest.getTimestamp() > upTo) {
            return null;
        }
        queue.poll();
        return new SessionExchange.Due(earliest.getKey(), KeyGroupRangeAssignment.assignToKeyGroup(earliest.getKey(),
                maxParallelism), TimerFiring.newBuilder()
                .setTimestamp(earliest.getTimestamp()).setStep(earliest.getNamespace()).setDomain(domain).build());
    }

    @Override
    public void stop() {
        stopped = true;
        if (wakeUp != null) {
            wakeUp.cancel(false);
        }
    }

    private void wakeUpForEarliest() {
        TimerHeapInternalTimer<String, Integer> earliest = processingTime.peek();
        if (earliest != null) {
            wakeUpAt(earliest.getTimestamp());
        }
    }

    /** One callback at a time, at the earliest timer; one that comes for a timer deleted since finds none due. */
    private void wakeUpAt(long timestamp) {
        if (stopped) {
            return;
        }
        if (wakeUp != null) {
            wakeUp.cancel(false);
        }
        wakeUpAt = timestamp;
        wakeUp = clock.registerTimer(timestamp, now -> {
            wakeUpAt = Long.MAX_VALUE;
            wakeUp = null;
            if (!stopped) {
                reached.reached(now);
                wakeUpForEarliest();
            }
        });
    }
}
