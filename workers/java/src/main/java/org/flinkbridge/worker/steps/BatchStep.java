package org.flinkbridge.worker.steps;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.flinkbridge.protocol.StateStrings;
import org.flinkbridge.worker.sdk.Emitter;
import org.flinkbridge.worker.sdk.Record;
import org.flinkbridge.worker.sdk.Step;
import org.flinkbridge.worker.sdk.StepContext;

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
 * batches), and at the end of input. The open batch is the step's state, so a checkpoint keeps it.
 */
final class BatchStep implements Step {

    static final String BATCH_SIZE_HEADER = "batch_size";
    /** 2: header strings as a length and UTF-8 ({@link StateStrings}), where 1 had writeUTF (64 KiB at most). */
    private static final byte STATE_VERSION = 2;
    private static final ObjectMapper JSON = new ObjectMapper();

    private int maxCount;
    private long maxWaitMillis;
    private StepContext context;
    private final List<Record> batch = new ArrayList<>();
    private long openedAtMillis;

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
    }

    @Override
    public void process(Record input, Emitter output) throws IOException {
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

    @Override
    public void onWatermark(long timestamp, Emitter output) throws IOException {
        if (!batch.isEmpty() && (timestamp == Long.MAX_VALUE || aged())) {
            emit(output);
        }
    }

    private boolean aged() {
        return context.currentTimeMillis() - openedAtMillis >= maxWaitMillis;
    }

    private void emit(Emitter output) throws IOException {
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
        batch.clear();
        output.emit(new Record(payload.toByteArray(), headers, last.timestamp()));
    }

    @Override
    public byte[] snapshotState() throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        DataOutputStream out = new DataOutputStream(bytes);
        out.writeByte(STATE_VERSION);
        out.writeLong(openedAtMillis);
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

    @Override
    public void restoreState(byte[] state) throws IOException {
        batch.clear();
        if (state.length == 0) {
            return;
        }
        try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(state))) {
            byte version = in.readByte();
            if (version != STATE_VERSION) {
                throw new IOException("batch state version " + version + " is not " + STATE_VERSION);
            }
            openedAtMillis = in.readLong();
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
        } catch (java.io.EOFException e) {
            batch.clear();
            throw new IOException("batch state ends early", e);
        } catch (IOException e) {
            batch.clear();
            throw e;
        }
    }
}
