package org.flinkbridge.bridge.function;

import org.apache.flink.runtime.state.KeyGroupedInternalPriorityQueue;
import org.apache.flink.streaming.api.operators.TimerHeapInternalTimer;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One time domain's timers of a session in the backend's priority queue, with the timers most recently set through
 * it and neither fired nor deleted since (at most {@code remembered}, the least recently set forgotten first). A set
 * of a timer it remembers is already in the queue and skips the backend: a step that sets the same timer for each
 * record of its key, as {@code window} sets the end of the record's window, would otherwise have every set serialized
 * and sorted into RocksDB's queue on the task thread (docs/performance.md, "Timers"). Every change to the queue goes
 * through here, so a remembered timer is always one the queue holds; a forgotten one costs one more add to the queue,
 * which changes nothing there. It starts empty with its queue: after a restore, or in a new task.
 */
final class TimerQueue {

    private final KeyGroupedInternalPriorityQueue<TimerHeapInternalTimer<String, Integer>> queue;
    /** Timer (its key, timestamp and step) → itself, least recently set first. */
    private final LinkedHashMap<TimerHeapInternalTimer<String, Integer>, TimerHeapInternalTimer<String, Integer>>
            recentlySet;

    TimerQueue(KeyGroupedInternalPriorityQueue<TimerHeapInternalTimer<String, Integer>> queue, int remembered) {
        this.queue = queue;
        this.recentlySet = new LinkedHashMap<>(16, 0.75f, true) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<TimerHeapInternalTimer<String, Integer>,
                    TimerHeapInternalTimer<String, Integer>> eldest) {
                return size() > remembered;
            }
        };
    }

    /** Sets {@code timer}: whether it was not known to be set already (then it was added to the queue). */
    boolean set(TimerHeapInternalTimer<String, Integer> timer) {
        if (recentlySet.get(timer) != null) {
            return false;
        }
        queue.add(timer);
        recentlySet.put(timer, timer);
        return true;
    }

    void delete(TimerHeapInternalTimer<String, Integer> timer) {
        recentlySet.remove(timer);
        queue.remove(timer);
    }

    /** The earliest timer, or null when none is set. */
    TimerHeapInternalTimer<String, Integer> peek() {
        return queue.peek();
    }

    /** Takes the earliest timer out, to fire it: a step that wants it again sets it again. */
    TimerHeapInternalTimer<String, Integer> poll() {
        TimerHeapInternalTimer<String, Integer> earliest = queue.poll();
        if (earliest != null) {
            recentlySet.remove(earliest);
        }
        return earliest;
    }
}
