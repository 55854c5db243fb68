package org.flinkbridge.worker;

import org.flinkbridge.proto.control.StepSpec;
import org.flinkbridge.protocol.KeyGroups;
import org.flinkbridge.worker.cells.SessionCells;
import org.flinkbridge.worker.sdk.Emitter;
import org.flinkbridge.worker.sdk.Step;
import org.flinkbridge.worker.sdk.TimeDomain;
import org.flinkbridge.worker.steps.SegmentChain;
import org.flinkbridge.worker.timers.SessionTimers;

import java.util.List;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.function.Supplier;

/**
 * A session's logic: one instance of its segment per Flink key group the session has seen (one in all for a
 * stream that is not keyed). Each instance's state is then exactly the state of its key group's keys, so a
 * checkpoint splits by key group and a job restored at another parallelism hands every session the state of
 * the keys it now serves, with no help from the segment. Watermarks reach every instance in key group order.
 * Public for {@link org.flinkbridge.worker.sdk.StepHarness}, which runs steps as a session does.
 */
public final class KeyGroupInstances implements AutoCloseable {

    private final Supplier<SegmentChain> factory;
    private final TreeMap<Integer, SegmentChain> instances = new TreeMap<>();
    private int lastKeyGroup = Integer.MIN_VALUE;
    private SegmentChain last;

    /** @param factory makes and opens a new instance of the segment (throws when its steps are invalid) */
    private KeyGroupInstances(Supplier<SegmentChain> factory) {
        this.factory = factory;
    }

    /**
     * The instances of a segment of {@code steps}, built once now so that steps that cannot be built refuse the
     * session and so that {@code cells} holds every cell they declare and {@code timers} knows which steps set
     * timers; its instances come per key group later, on {@code clock}, and declare the same.
     */
    public static KeyGroupInstances of(List<StepSpec> steps, String sessionName, SessionClock clock,
                                       SessionCells cells, SessionTimers timers) throws Exception {
        SegmentInstances.create(steps, sessionName, clock, cells, timers).close();
        cells.declarations().seal();
        timers.seal();
        return new KeyGroupInstances(() -> SegmentInstances.create(steps, sessionName, clock, cells, timers));
    }

    /** The instance of {@code keyGroup}, made on first use. */
    public SegmentChain forKeyGroup(int keyGroup) {
        if (keyGroup != lastKeyGroup) {
            last = instances.computeIfAbsent(keyGroup, group -> factory.get());
            lastKeyGroup = keyGroup;
        }
        return last;
    }

    /** A timer of step {@code step} fires in {@code keyGroup}'s instance ({@link SegmentChain#onTimer}). */
    public void onTimer(int keyGroup, int step, long timestamp, TimeDomain domain, Emitter output) throws Exception {
        forKeyGroup(keyGroup).onTimer(step, timestamp, domain, output);
    }

    public void onWatermark(long timestamp, Emitter output) throws Exception {
        for (Step instance : instances.values()) {
            instance.onWatermark(timestamp, output);
        }
    }

    /**
     * Each instance's state by key group ({@link KeyGroups#NONE} for a stream that is not keyed); empty ones
     * left out.
     */
    public SortedMap<Integer, byte[]> snapshot() throws Exception {
        SortedMap<Integer, byte[]> states = new TreeMap<>();
        for (Map.Entry<Integer, SegmentChain> instance : instances.entrySet()) {
            byte[] state = instance.getValue().snapshotState();
            if (state.length > 0) {
                states.put(instance.getKey(), state);
            }
        }
        return states;
    }

    /** Hands each key group its state, before the first record; a key group given twice is refused. */
    public void restore(SortedMap<Integer, byte[]> states) throws Exception {
        for (Map.Entry<Integer, byte[]> state : states.entrySet()) {
            if (instances.containsKey(state.getKey())) {
                throw new IllegalStateException("key group " + state.getKey() + " already holds state");
            }
            forKeyGroup(state.getKey()).restoreState(state.getValue());
        }
    }

    void checkpointCompleted(long checkpointId) throws Exception {
        for (Step instance : instances.values()) {
            instance.onCheckpointCompleted(checkpointId);
        }
    }

    void checkpointAborted(long checkpointId) throws Exception {
        for (Step instance : instances.values()) {
            instance.onCheckpointAborted(checkpointId);
        }
    }

    @Override
    public void close() throws Exception {
        Exception first = null;
        for (Step instance : instances.values()) {
            try {
                instance.close();
            } catch (Exception e) {
                if (first == null) {
                    first = e;
                } else {
                    first.addSuppressed(e);
                }
            }
        }
        instances.clear();
        if (first != null) {
            throw first;
        }
    }
}
