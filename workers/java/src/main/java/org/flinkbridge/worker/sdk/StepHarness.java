package org.flinkbridge.worker.sdk;

import org.flinkbridge.proto.control.CellKind;
import org.flinkbridge.proto.control.StepSpec;
import org.flinkbridge.proto.data.KeyCells;
import org.flinkbridge.protocol.KeyGroups;
import org.flinkbridge.worker.KeyGroupInstances;
import org.flinkbridge.worker.SessionClock;
import org.flinkbridge.worker.cells.CellDeclarations;
import org.flinkbridge.worker.cells.SessionCells;
import org.flinkbridge.worker.steps.SegmentChain;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Objects;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.function.Supplier;

/**
 * Runs a step as a worker session runs it, for a test without Flink or a worker: built from its type and config
 * JSON, one instance per key group, watermarks to every instance in key group order, processing time only as
 * {@link #setProcessingTime} stamps it (until then this process's clock), and checkpoints as the session's
 * SnapshotState gives them. Each input returns its outputs; an exception fails it with the step's own exception,
 * and, as in a session, every later input is refused. Not thread-safe (a session is fed from one thread).
 *
 * <p>A step's cells are its records' keys': a record given with its key ({@link #process(byte[], Record)}) reaches
 * that key's cells, which the harness keeps as the bridge's keyed state would (a key it has not seen starts empty).
 * {@link #value} and {@link #entries} read them as the step would now, {@link #setValue} and {@link #put} write them,
 * and {@link #snapshot} takes them with the instances' state, for {@link #restore(Checkpoint)} into a new harness, as
 * the bridge's LOADs would bring them back.
 */
public final class StepHarness implements AutoCloseable {

    private static final String SESSION_NAME = "step harness";

    private final SessionClock clock = new SessionClock();
    private final SessionCells cells = new SessionCells(clock);
    private final KeyGroupInstances instances;
    private String failure;
    private boolean closed;
    /** LOADs given by a restore, each its own input. */
    private long loads;

    private StepHarness(String stepName, String type, String configJson) throws Exception {
        StepSpec step = StepSpec.newBuilder().setName(stepName).setType(type).setConfigJson(configJson).build();
        instances = KeyGroupInstances.of(List.of(step), SESSION_NAME, clock, cells);
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

    /**
     * Brings back what {@link #snapshot} took, before any input: each key group's state as RestoreState does, and
     * every key's cells as the bridge's LOADs would.
     */
    public void restore(Checkpoint checkpoint) throws Exception {
        instances.restore(checkpoint.states);
        for (KeyCells key : checkpoint.cells) {
            cells.load(--loads, key);
        }
    }

    /** A record of a stream that is not keyed: its outputs. Its step cannot reach cells (it has no key). */
    public List<Record> process(Record input) throws Exception {
        return process(KeyGroups.NONE, input);
    }

    /** A record of Flink key group {@code keyGroup} (0 to 32767), to that key group's instance: its outputs. */
    public List<Record> process(int keyGroup, Record input) throws Exception {
        return serve(outputs -> instances.forKeyGroup(keyGroup).process(input, outputs));
    }

    /** A record of a keyed stream whose key is {@code key}, to key group 0's instance: its outputs. */
    public List<Record> process(byte[] key, Record input) throws Exception {
        return process(0, key, input);
    }

    /**
     * A record of a keyed stream whose key is {@code key}, of Flink key group {@code keyGroup}: its outputs. While
     * the step handles it, its cells are {@code key}'s.
     */
    public List<Record> process(int keyGroup, byte[] key, Record input) throws Exception {
        Objects.requireNonNull(key, "key");
        return serve(outputs -> {
            cells.makeResident(key);
            cells.enter(key);
            try {
                instances.forKeyGroup(keyGroup).process(input, outputs);
            } finally {
                cells.leave();
            }
        });
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

    /**
     * A checkpoint of everything: each instance's state by key group, as {@link #checkpoint} gives it, and every
     * key's cells (values past their TTL included, with their write times, as the bridge's keyed state holds them
     * until it drops them).
     */
    public Checkpoint snapshot() throws Exception {
        SortedMap<Integer, byte[]> states = instances.snapshot();
        cells.takeWrites();
        return new Checkpoint(states, cells.contents());
    }

    /**
     * The value of value cell {@code cell} of {@code key}, as the step would read it now: null when it holds none,
     * or when its TTL has passed.
     *
     * @throws IllegalArgumentException when the step declares no value cell of that name
     */
    public byte[] value(byte[] key, String cell) {
        int id = cell(cell, CellKind.CELL_KIND_VALUE);
        return inKey(key, () -> cells.valueCell(id).get());
    }

    /** The entries of map cell {@code cell} of {@code key} the step would see now, in unsigned byte order. */
    public SortedMap<byte[], byte[]> entries(byte[] key, String cell) {
        int id = cell(cell, CellKind.CELL_KIND_MAP);
        SortedMap<byte[], byte[]> entries = new TreeMap<>(Arrays::compareUnsigned);
        inKey(key, () -> {
            cells.mapCell(id).forEach(entries::put);
            return null;
        });
        return Collections.unmodifiableSortedMap(entries);
    }

    /** Sets value cell {@code cell} of {@code key} as a step would, written at the current processing time. */
    public void setValue(byte[] key, String cell, byte[] value) {
        int id = cell(cell, CellKind.CELL_KIND_VALUE);
        inKey(key, () -> {
            cells.valueCell(id).set(value);
            return null;
        });
    }

    /** Puts entry {@code entryKey} of map cell {@code cell} of {@code key} as a step would. */
    public void put(byte[] key, String cell, byte[] entryKey, byte[] value) {
        int id = cell(cell, CellKind.CELL_KIND_MAP);
        inKey(key, () -> {
            cells.mapCell(id).put(entryKey, value);
            return null;
        });
    }

    @Override
    public void close() throws Exception {
        closed = true;
        instances.close();
    }

    /** What {@link #snapshot} took: give it to {@link #restore(Checkpoint)} of a new harness of the same step. */
    public static final class Checkpoint {
        private final SortedMap<Integer, byte[]> states;
        private final List<KeyCells> cells;

        private Checkpoint(SortedMap<Integer, byte[]> states, List<KeyCells> cells) {
            this.states = Collections.unmodifiableSortedMap(states);
            this.cells = List.copyOf(cells);
        }

        /** Each instance's state by key group, as {@link StepHarness#checkpoint} gives it. */
        public SortedMap<Integer, byte[]> states() {
            return states;
        }

        /** How many keys hold anything in their cells. */
        public int keysWithCells() {
            return cells.size();
        }
    }

    /** {@code body}'s result with {@code key}'s cells current, as while a record of it is handled. */
    private <T> T inKey(byte[] key, Supplier<T> body) {
        cells.makeResident(key);
        cells.enter(key);
        try {
            return body.get();
        } finally {
            cells.leave();
        }
    }

    /** The id of the step's cell {@code name} of {@code kind}. */
    private int cell(String name, CellKind kind) {
        List<String> declared = new ArrayList<>();
        for (int id = 0; id < cells.declarations().size(); id++) {
            CellDeclarations.Declared cell = cells.declarations().get(id);
            if (cell.name().equals(name)) {
                if (cell.kind() != kind) {
                    throw new IllegalArgumentException("cell '" + name + "' is a " + (kind == CellKind.CELL_KIND_MAP
                            ? "value cell, not a map" : "map cell, not a value"));
                }
                return id;
            }
            declared.add(cell.name());
        }
        throw new IllegalArgumentException("the step declares no cell '" + name + "'; it declares " + declared);
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
