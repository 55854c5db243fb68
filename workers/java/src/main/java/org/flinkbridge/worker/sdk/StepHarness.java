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
import org.flinkbridge.worker.timers.SessionTimers;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.TreeSet;
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
 *
 * <p>A step's timers are its keyed inputs' keys': the harness keeps those pending per key as the bridge's timer
 * service would ({@link #timers}), and fires them as the bridge does: the event-time ones a {@link #watermark} passes,
 * in timestamp order, before that watermark reaches the step (each firing its own input, the step's watermark still
 * the previous one); the processing-time ones {@link #setProcessingTime} passes, once the clock reads that time. Each
 * firing goes to the instance of the key group whose input set the timer, with the key's cells current.
 */
public final class StepHarness implements AutoCloseable {

    private static final String SESSION_NAME = "step harness";

    private final SessionClock clock = new SessionClock();
    private final SessionCells cells;
    private final SessionTimers timers = new SessionTimers(clock);
    /** The pending timers of each domain, in the order they fire: by timestamp, then key (unsigned bytes). */
    private final TreeSet<Pending> eventTime = new TreeSet<>(Pending.ORDER);
    private final TreeSet<Pending> processingTime = new TreeSet<>(Pending.ORDER);
    private final KeyGroupInstances instances;
    private String failure;
    private boolean closed;
    /** LOADs given by a restore, each its own input. */
    private long loads;

    private StepHarness(String stepName, String type, String configJson, boolean keyed) throws Exception {
        cells = new SessionCells(clock, keyed);
        StepSpec step = StepSpec.newBuilder().setName(stepName).setType(type).setConfigJson(configJson).build();
        instances = KeyGroupInstances.of(List.of(step), SESSION_NAME, clock, cells, timers);
    }

    /**
     * A step whose {@code step_name} is {@code stepName}, of {@code type} (a built-in step's name or a user step's
     * class name), its {@code config} block as JSON ("" for none). It is opened once now, so an invalid config
     * fails here as it refuses a session.
     */
    public static StepHarness named(String stepName, String type, String configJson) throws Exception {
        return new StepHarness(stepName, type, configJson, false);
    }

    /**
     * As {@link #named}, the step built as a keyed session builds it: a built-in step that keeps its per-key state in
     * cells only there ({@code running_count}; {@code batch} and {@code count}, with timers) keeps it in cells, and
     * its records are given with their keys ({@link #process(byte[], Record)}). A user step is built the same either
     * way.
     */
    public static StepHarness keyed(String stepName, String type, String configJson) throws Exception {
        return new StepHarness(stepName, type, configJson, true);
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
     * Brings back what {@link #snapshot} took, before any input: each key group's state as RestoreState does,
     * every key's cells as the bridge's LOADs would, and the pending timers as Flink's timer service restores them.
     */
    public void restore(Checkpoint checkpoint) throws Exception {
        instances.restore(checkpoint.states);
        for (KeyCells key : checkpoint.cells) {
            cells.load(--loads, key);
        }
        for (Pending timer : checkpoint.timers) {
            (timer.domain() == TimeDomain.EVENT_TIME ? eventTime : processingTime).add(timer);
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
     * the step handles it, its cells and timers are {@code key}'s.
     */
    public List<Record> process(int keyGroup, byte[] key, Record input) throws Exception {
        Objects.requireNonNull(key, "key");
        byte[] own = key.clone();
        return keyed(keyGroup, own, outputs -> instances.forKeyGroup(keyGroup).process(input, outputs));
    }

    /**
     * A watermark: first the event-time timers at or before it fire, in timestamp order (those the firings set at or
     * before it too), then it goes to every instance in key group order. The outputs of all, in that order.
     */
    public List<Record> watermark(long timestamp) throws Exception {
        List<Record> outputs = new ArrayList<>();
        fireUpTo(eventTime, timestamp, outputs);
        outputs.addAll(serve(emitted -> {
            timers.watermark(timestamp);
            instances.onWatermark(timestamp, emitted);
        }));
        return outputs;
    }

    /** Fires the timers of {@code pending} at or before {@code timestamp}, in order, each its own input. */
    private void fireUpTo(TreeSet<Pending> pending, long timestamp, List<Record> outputs) throws Exception {
        while (!pending.isEmpty() && pending.first().timestamp() <= timestamp) {
            Pending timer = pending.pollFirst();
            outputs.addAll(keyed(timer.keyGroup(), timer.key(), emitted -> instances.onTimer(timer.keyGroup(), 0,
                    timer.timestamp(), timer.domain(), emitted)));
        }
    }

    /**
     * An input of {@code key} (a record or a firing): its cells and timers current while it is handled, and the timer
     * changes it made applied to the pending timers once it succeeded.
     */
    private List<Record> keyed(int keyGroup, byte[] key, Input input) throws Exception {
        List<Record> outputs = serve(emitted -> {
            timers.clear();
            cells.makeResident(key);
            cells.enter(key);
            timers.enter();
            try {
                input.apply(emitted);
            } finally {
                cells.leave();
                timers.leave();
            }
        });
        for (int i = 0; i < timers.changes(); i++) {
            Pending timer = new Pending(key, keyGroup, timers.domain(i), timers.timestamp(i));
            TreeSet<Pending> pending = timer.domain() == TimeDomain.EVENT_TIME ? eventTime : processingTime;
            if (timers.sets(i)) {
                pending.add(timer);
            } else {
                pending.remove(timer);
            }
        }
        timers.clear();
        return outputs;
    }

    /**
     * The timers of {@code key} the step has set and that have not fired nor been deleted, as the bridge's timer
     * service holds them: by timestamp, an event-time timer before a processing-time one of the same time.
     */
    public List<Timer> timers(byte[] key) {
        List<Timer> found = new ArrayList<>();
        for (TreeSet<Pending> pending : List.of(eventTime, processingTime)) {
            for (Pending timer : pending) {
                if (Arrays.equals(timer.key(), key)) {
                    found.add(new Timer(timer.domain(), timer.timestamp()));
                }
            }
        }
        found.sort(Comparator.comparingLong(Timer::timestamp).thenComparing(Timer::domain));
        return List.copyOf(found);
    }

    /** A pending timer of a key, as {@link #timers} lists them. */
    public record Timer(TimeDomain domain, long timestamp) {}

    /** A timer the harness holds: its key, the key group whose input set it, its domain and timestamp. */
    private record Pending(byte[] key, int keyGroup, TimeDomain domain, long timestamp) {
        /** A domain's firing order; a timer is its key and timestamp there, whichever key group set it. */
        static final Comparator<Pending> ORDER = Comparator.comparingLong(Pending::timestamp)
                .thenComparing(Pending::key, Arrays::compareUnsigned);
    }

    /** The end of input (a watermark of {@link Long#MAX_VALUE}): whatever the steps still held. */
    public List<Record> endInput() throws Exception {
        return watermark(Long.MAX_VALUE);
    }

    /**
     * Processing time is {@code millis} from now on, as a CLOCK input stamps it: what steps read as now. Then the
     * processing-time timers at or before it fire, in timestamp order, as the bridge fires them once its clock
     * reaches them: their outputs.
     */
    public List<Record> setProcessingTime(long millis) throws Exception {
        clock.stamp(millis);
        List<Record> outputs = new ArrayList<>();
        fireUpTo(processingTime, millis, outputs);
        return outputs;
    }

    /** Each instance's state by key group ({@link KeyGroups#NONE}: not keyed), empty ones left out. */
    public SortedMap<Integer, byte[]> checkpoint() throws Exception {
        return instances.snapshot();
    }

    /**
     * A checkpoint of everything: each instance's state by key group, as {@link #checkpoint} gives it, every key's
     * cells (values past their TTL included, with their write times, as the bridge's keyed state holds them until it
     * drops them), and the pending timers.
     */
    public Checkpoint snapshot() throws Exception {
        SortedMap<Integer, byte[]> states = instances.snapshot();
        cells.takeWrites();
        List<Pending> pending = new ArrayList<>(eventTime);
        pending.addAll(processingTime);
        return new Checkpoint(states, cells.contents(), pending);
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
        private final List<Pending> timers;

        private Checkpoint(SortedMap<Integer, byte[]> states, List<KeyCells> cells, List<Pending> timers) {
            this.states = Collections.unmodifiableSortedMap(states);
            this.cells = List.copyOf(cells);
            this.timers = List.copyOf(timers);
        }

        /** How many timers are pending, of every key. */
        public int pendingTimers() {
            return timers.size();
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
