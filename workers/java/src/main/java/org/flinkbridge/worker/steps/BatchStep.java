package org.flinkbridge.worker.steps;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.flinkbridge.protocol.StateStrings;
import org.flinkbridge.worker.sdk.Emitter;
import org.flinkbridge.worker.sdk.Record;
import org.flinkbridge.worker.sdk.Step;
import org.flinkbridge.worker.sdk.StepContext;
import org.flinkbridge.worker.sdk.TimeDomain;
import org.flinkbridge.worker.sdk.Timers;
import org.flinkbridge.worker.sdk.ValueCell;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code batch}: groups records into one output whose payload is the JSON array of their payloads, with a
 * {@code batch_size} header. A batch closes at {@code max_count} records, when a record or watermark comes
 * after it has been open {@code max_wait_ms} (processing time, as the bridge stamps it: a replay closes the same
 * batches), and at the end of input. In a session that is not keyed the open batch is the step's state, one per
 * instance, so a checkpoint keeps it.
 *
 * <p>In a keyed session (protocol 6) it keeps one open batch per key in the value cell {@value #CELL}, encoded as the
 * whole-instance state encodes one batch, and keeps no whole-instance state; timers close it, on a quiet stream too.
 * The first record of a batch sets a processing-time timer at the bridge's clock + {@code max_wait_ms} and an
 * event-time timer at {@link Long#MAX_VALUE} (fired at the end of input); either firing emits the key's batch and
 * deletes the other timer, as {@code max_count} does both. Watermarks do nothing there, and a record that comes after
 * {@code max_wait_ms} but before the timer fired joins the batch.
 */
final class BatchStep implements Step {

    static final String BATCH_SIZE_HEADER = "batch_size";
    /** The value cell that holds a key's open batch in a keyed session. */
    static final String CELL = "batch";
    /** 2: header strings as a length and UTF-8 ({@link StateStrings}), where 1 had writeUTF (64 KiB at most). */
    private static final byte STATE_VERSION = 2;
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Whether the session is keyed: the open batches are in {@link #cell}, closed by {@link #timers}. */
    private final boolean keyed;
    private String stepName;
    private int maxCount;
    private long maxWaitMillis;
    private StepContext context;
    /** The open batch of a session that is not keyed. */
    private final List<Record> batch = new ArrayList<>();
    private long openedAtMillis;
    /** The key's open batch in a keyed session; null in one that is not. */
    private ValueCell cell;
    private Timers timers;

    /** @param keyed the session is keyed: a batch per key, in a value cell, closed by timers */
    BatchStep(boolean keyed) {
        this.keyed = keyed;
    }

    @Override
    public void open(StepContext context) {
        StepConfig config = new StepConfig(context);
        long count = config.positiveLong("max_count", 100);
        if (count > 1_000_000) {
            throw config.invalid("max_count", "at most 1000000", context.config().get("max_count"));
        }
        maxCount = (int) count;
        maxWaitMillis = config.positiveLong("max_wait_ms", 1000);
        this.context = context;
        stepName = context.stepName();
        if (keyed) {
            cell = context.valueCell(CELL);
            timers = context.timers();
        }
    }

    @Override
    public void process(Record input, Emitter output) throws IOException {
        if (keyed) {
            processKeyed(input, output);
            return;
        }
        if (!batch.isEmpty() && aged()) {
            emit(output);
        }
        if (batch.isEmpty()) {
            openedAtMillis = context.currentTimeMillis();
        }
        batch.add(input);
        if (batch.size() >= maxCount) {
            emit(output);
        }
    }

    /**
     * Adds the record to its key's batch: the first one opens it and sets its timers, the {@code max_count}th
     * emits it and deletes them.
     */
    private void processKeyed(Record input, Emitter output) throws IOException {
        byte[] held = cell.get();
        long openedAt;
        List<Record> records = new ArrayList<>();
        if (held == null) {
            openedAt = context.currentTimeMillis();
        } else {
            openedAt = readCell(held, records);
        }
        records.add(input);
        if (records.size() >= maxCount) {
            if (held != null) {
                cell.clear();
                timers.deleteProcessingTime(deadline(openedAt));
                timers.deleteEventTime(Long.MAX_VALUE);
            }
            emit(records, output);
            return;
        }
        if (held == null) {
            timers.setProcessingTime(deadline(openedAt));
            timers.setEventTime(Long.MAX_VALUE);
        }
        cell.set(write(openedAt, records));
    }

    /** Reads the key's batch from the cell into {@code records}: when it opened. */
    private long readCell(byte[] held, List<Record> records) throws IOException {
        try {
            return read(held, records);
        } catch (IOException e) {
            throw new IOException("step '" + stepName + "' (batch): cell '" + CELL + "' holds no batch it can read: "
                    + e.getMessage(), e);
        }
    }

    /** When a batch opened at {@code openedAt} closes: {@code max_wait_ms} later, at most the end of time. */
    private long deadline(long openedAt) {
        return openedAt > Long.MAX_VALUE - maxWaitMillis ? Long.MAX_VALUE : openedAt + maxWaitMillis;
    }

    /** A timer of the key's batch fires: the batch, if open, is emitted and the other timer deleted. */
    @Override
    public void onTimer(long timestamp, TimeDomain domain, Emitter output) throws IOException {
        byte[] held = cell.get();
        if (held == null) {
            return;
        }
        List<Record> records = new ArrayList<>();
        long openedAt = readCell(held, records);
        cell.clear();
        if (domain == TimeDomain.PROCESSING_TIME) {
            timers.deleteEventTime(Long.MAX_VALUE);
        } else {
            timers.deleteProcessingTime(deadline(openedAt));
        }
        if (!records.isEmpty()) {
            emit(records, output);
        }
    }

    @Override
    public void onWatermark(long timestamp, Emitter output) throws IOException {
        if (keyed) {
            return;
        }
        if (!batch.isEmpty() && (timestamp == Long.MAX_VALUE || aged())) {
            emit(output);
        }
    }

    private boolean aged() {
        return context.currentTimeMillis() - openedAtMillis >= maxWaitMillis;
    }

    private void emit(Emitter output) throws IOException {
        List<Record> records = List.copyOf(batch);
        batch.clear();
        emit(records, output);
    }

    /** Emits {@code records} as one batch. */
    private static void emit(List<Record> batch, Emitter output) throws IOException {
        ByteArrayOutputStream payload = new ByteArrayOutputStream();
        try (JsonGenerator json = JSON.createGenerator(payload)) {
            json.writeStartArray();
            for (Record record : batch) {
                try {
                    json.writeTree(JSON.readTree(record.payload()));
                } catch (IOException notJson) {
                    json.writeString(new String(record.payload(), java.nio.charset.StandardCharsets.UTF_8));
                }
            }
            json.writeEndArray();
        }
        Map<String, String> headers = new HashMap<>(batch.getFirst().headers());
        headers.put(BATCH_SIZE_HEADER, Integer.toString(batch.size()));
        Record last = batch.getLast();
        output.emit(new Record(payload.toByteArray(), headers, last.timestamp()));
    }

    @Override
    public byte[] snapshotState() throws IOException {
        if (keyed) {
            return new byte[0];
        }
        return write(openedAtMillis, batch);
    }

    @Override
    public void restoreState(byte[] state) throws IOException {
        batch.clear();
        if (state.length == 0) {
            return;
        }
        if (keyed) {
            List<Record> held = new ArrayList<>();
            read(state, held);
            if (!held.isEmpty()) {
                throw new IOException("step '" + stepName + "' (batch) is given an open batch of " + held.size()
                        + " records as whole-instance state, a checkpoint taken before batch kept its batches in"
                        + " cells: in a keyed session they live in value cell '" + CELL + "' per key, so such a"
                        + " checkpoint cannot be restored into it; its open batch would be lost");
            }
            return;
        }
        try {
            openedAtMillis = read(state, batch);
        } catch (IOException e) {
            batch.clear();
            throw e;
        }
    }

    /**
     * One batch as the whole-instance state and the cell hold it: the version, when it opened, how many records,
     * then each record's timestamp, headers and payload.
     */
    private static byte[] write(long openedAt, List<Record> batch) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        DataOutputStream out = new DataOutputStream(bytes);
        out.writeByte(STATE_VERSION);
        out.writeLong(openedAt);
        out.writeInt(batch.size());
        for (Record record : batch) {
            out.writeLong(record.timestamp());
            out.writeInt(record.headers().size());
            for (Map.Entry<String, String> header : record.headers().entrySet()) {
                StateStrings.write(out, header.getKey());
                StateStrings.write(out, header.getValue());
            }
            out.writeInt(record.payload().length);
            out.write(record.payload());
        }
        out.flush();
        return bytes.toByteArray();
    }

    /** Reads what {@link #write} wrote into {@code batch}: when the batch opened. */
    private long read(byte[] state, List<Record> batch) throws IOException {
        try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(state))) {
            byte version = in.readByte();
            if (version != STATE_VERSION) {
                throw new IOException("batch state version " + version + " is not " + STATE_VERSION);
            }
            long openedAt = in.readLong();
            int size = in.readInt();
            if (size < 0 || size > maxCount) {
                throw new IOException("batch state holds " + size + " records; max_count is " + maxCount);
            }
            for (int i = 0; i < size; i++) {
                long timestamp = in.readLong();
                int headerCount = in.readInt();
                Map<String, String> headers = new HashMap<>();
                for (int h = 0; h < headerCount; h++) {
                    headers.put(StateStrings.read(in), StateStrings.read(in));
                }
                batch.add(new Record(StateStrings.readBytes(in, "payload"), headers, timestamp));
            }
            return openedAt;
        } catch (java.io.EOFException e) {
            batch.clear();
            throw new IOException("batch state ends early", e);
        }
    }
}
