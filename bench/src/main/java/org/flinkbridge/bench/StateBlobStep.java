package org.flinkbridge.bench;

import org.flinkbridge.worker.sdk.Emitter;
import org.flinkbridge.worker.sdk.Record;
import org.flinkbridge.worker.sdk.Step;
import org.flinkbridge.worker.sdk.StepContext;
import org.flinkbridge.worker.sdk.ValueCell;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Keeps {@value #VALUE_BYTES} bytes per key, for the state benchmark: each record sets its key's value to the key's
 * count of records so far (8 bytes, little-endian) followed by random bytes (so that no compression shrinks the
 * state), and is answered with itself, its header {@value #COUNT_HEADER} set to that count (the benchmark checks it
 * after a worker is killed: each key's records counted exactly once). With config {@code {"keep": "cells"}} the
 * values live in a value cell ({@value #CELL}), in Flink's keyed state; with {@code {"keep": "instance"}} in a map of the instance, keyed by the
 * record's header {@value StateLoad#KEY_HEADER}, taken whole at each checkpoint by {@link #snapshotState} (the
 * whole-instance state steps kept before cells). The Python worker's {@code bench_state.py} is the same step.
 */
public final class StateBlobStep implements Step {

    /** The step type naming this class (a constant: the benchmark JVM must not load this class, see EchoStep). */
    public static final String TYPE = "org.flinkbridge.bench.StateBlobStep";
    static final int VALUE_BYTES = 1024;
    static final String CELL = "blob";
    /** The header of an answer that carries its key's count, this record included. */
    static final String COUNT_HEADER = "count";

    private ValueCell cell;
    /** The values by key, where the instance keeps them (null where a cell does). */
    private Map<String, byte[]> values;

    @Override
    public void open(StepContext context) {
        String keep = context.config().path("keep").asText("");
        switch (keep) {
            case "cells" -> cell = context.valueCell(CELL);
            case "instance" -> values = new HashMap<>();
            default -> throw new IllegalArgumentException("step '" + context.stepName() + "' (" + TYPE
                    + "): config 'keep' must be \"cells\" or \"instance\", not \"" + keep + "\"");
        }
    }

    @Override
    public void process(Record input, Emitter output) {
        byte[] value;
        if (cell != null) {
            value = next(cell.get());
            cell.set(value);
        } else {
            String key = input.headers().get(StateLoad.KEY_HEADER);
            if (key == null) {
                throw new IllegalArgumentException("the record has no header '" + StateLoad.KEY_HEADER + "'");
            }
            value = next(values.get(key));
            values.put(key, value);
        }
        Map<String, String> headers = new HashMap<>(input.headers());
        headers.put(COUNT_HEADER, Long.toString(count(value)));
        output.emit(new Record(input.payload(), headers, input.timestamp()));
    }

    /** The count a value holds. */
    static long count(byte[] value) {
        return ByteBuffer.wrap(value).order(ByteOrder.LITTLE_ENDIAN).getLong();
    }

    /** The value after {@code held} (null: none yet). */
    private static byte[] next(byte[] held) {
        long count = held == null ? 1 : count(held) + 1;
        byte[] value = new byte[VALUE_BYTES];
        ThreadLocalRandom.current().nextBytes(value);
        ByteBuffer.wrap(value).order(ByteOrder.LITTLE_ENDIAN).putLong(count);
        return value;
    }

    /** Entries as an i32 count, then each key (i32 length, UTF-8) and value (i32 length, bytes), in one array. */
    @Override
    public byte[] snapshotState() {
        if (values == null || values.isEmpty()) {
            return new byte[0];
        }
        // Sized first: the whole state is in this array, which must not be copied again on the worker's heap.
        long size = Integer.BYTES;
        for (Map.Entry<String, byte[]> entry : values.entrySet()) {
            size += 2L * Integer.BYTES + entry.getKey().getBytes(StandardCharsets.UTF_8).length
                    + entry.getValue().length;
        }
        if (size > Integer.MAX_VALUE - 16) {
            throw new IllegalStateException("step " + TYPE + " holds " + size + " bytes, more than one array takes");
        }
        ByteBuffer out = ByteBuffer.allocate((int) size);
        out.putInt(values.size());
        for (Map.Entry<String, byte[]> entry : values.entrySet()) {
            byte[] key = entry.getKey().getBytes(StandardCharsets.UTF_8);
            out.putInt(key.length).put(key).putInt(entry.getValue().length).put(entry.getValue());
        }
        return out.array();
    }

    @Override
    public void restoreState(byte[] state) throws IOException {
        if (state.length == 0) {
            return;
        }
        if (values == null) {
            throw new IOException("step " + TYPE + " keeps its values in cells, but is given " + state.length
                    + " bytes of whole-instance state");
        }
        ByteBuffer in = ByteBuffer.wrap(state);
        int entries = in.getInt();
        for (int i = 0; i < entries; i++) {
            byte[] key = new byte[in.getInt()];
            in.get(key);
            byte[] value = new byte[in.getInt()];
            in.get(value);
            values.put(new String(key, StandardCharsets.UTF_8), value);
        }
    }
}
