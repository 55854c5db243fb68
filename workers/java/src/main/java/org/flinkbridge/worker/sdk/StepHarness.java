package org.flinkbridge.worker.sdk;

import org.flinkbridge.proto.control.StepSpec;
import org.flinkbridge.protocol.KeyGroups;
import org.flinkbridge.worker.KeyGroupInstances;
import org.flinkbridge.worker.SessionClock;
import org.flinkbridge.worker.cells.SessionCells;
import org.flinkbridge.worker.steps.SegmentChain;

import java.util.ArrayList;
import java.util.List;
import java.util.SortedMap;

/**
 * Runs a step as a worker session runs it, for a test without Flink or a worker: built from its type and config
 * JSON, one instance per key group, watermarks to every instance in key group order, processing time only as
 * {@link #setProcessingTime} stamps it (until then this process's clock), and checkpoints as the session's
 * SnapshotState gives them. Each input returns its outputs; an exception fails it with the step's own exception,
 * and, as in a session, every later input is refused. Not thread-safe (a session is fed from one thread).
 */
public final class StepHarness implements AutoCloseable {

    private static final String SESSION_NAME = "step harness";

    private final SessionClock clock = new SessionClock();
    private final KeyGroupInstances instances;
    private String failure;
    private boolean closed;

    private StepHarness(String stepName, String type, String configJson) throws Exception {
        StepSpec step = StepSpec.newBuilder().setName(stepName).setType(type).setConfigJson(configJson).build();
        instances = KeyGroupInstances.of(List.of(step), SESSION_NAME, clock, new SessionCells(clock));
    }

    /**
     * A step whose {@code step_name} is {@code stepName}, of {@code type} (a built-in step's name or a user step's
     * class name), its {@code config} block as JSON ("" for none). It is opened once now, so an invalid config
     * fails here as it refuses a session.
     */
    public static StepHarness named(String stepName, String type, String configJson) throws Exception {
        return new StepHarness(stepName, type, configJson);
    }

    /** A step named after its type: see {@link #named}. */
    public static StepHarness of(String type, String configJson) throws Exception {
        return named(type, type, configJson);
    }

    /** A user step: loaded by its class name as a worker loads it, so it needs a public no-argument constructor. */
    public static StepHarness of(Class<? extends Step> type, String configJson) throws Exception {
        return of(type.getName(), configJson);
    }

    /** Hands each key group its state (what {@link #checkpoint} gave), as RestoreState does: before any input. */
    public void restore(SortedMap<Integer, byte[]> states) throws Exception {
        instances.restore(states);
    }

    /** A record of a stream that is not keyed: its outputs. */
    public List<Record> process(Record input) throws Exception {
        return process(KeyGroups.NONE, input);
    }

    /** A record of Flink key group {@code keyGroup} (0 to 32767), to that key group's instance: its outputs. */
    public List<Record> process(int keyGroup, Record input) throws Exception {
        return serve(outputs -> instances.forKeyGroup(keyGroup).process(input, outputs));
    }

    /** A watermark, to every instance in key group order: the outputs of all. */
    public List<Record> watermark(long timestamp) throws Exception {
        return serve(outputs -> instances.onWatermark(timestamp, outputs));
    }

    /** The end of input (a watermark of {@link Long#MAX_VALUE}): whatever the steps still held. */
    public List<Record> endInput() throws Exception {
        return watermark(Long.MAX_VALUE);
    }

    /** Processing time is {@code millis} from now on, as a CLOCK input stamps it: what steps read as now. */
    public void setProcessingTime(long millis) {
        clock.stamp(millis);
    }

    /** Each instance's state by key group ({@link KeyGroups#NONE}: not keyed), empty ones left out. */
    public SortedMap<Integer, byte[]> checkpoint() throws Exception {
        return instances.snapshot();
    }

    @Override
    public void close() throws Exception {
        closed = true;
        instances.close();
    }

    @FunctionalInterface
    private interface Input {
        void apply(Emitter outputs) throws Exception;
    }

    private List<Record> serve(Input input) throws Exception {
        if (failure != null || closed) {
            throw new IllegalStateException(closed ? "harness closed" : "the step already failed: " + failure);
        }
        List<Record> outputs = new ArrayList<>();
        try {
            input.apply(outputs::add);
        } catch (Exception e) {
            Exception reported = SegmentChain.StepFailure.stepException(e);
            failure = reported.toString();
            throw reported;
        }
        return outputs;
    }
}
