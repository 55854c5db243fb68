package org.flinkbridge.chaos;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.header.Header;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.BitSet;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

/**
 * What exactly-once means for the chaos run with {@code --timers}, whose output is batches (JSON arrays, header
 * {@code batch_size}) of the window step's results ({@code {"key", "window_start", "window_end", "count"}}) and
 * late records (input records as they came, {@code {"key", "id"}}; the batch keeps only its first element's
 * headers, so a late record is known by its shape). Each (key, window_start) may be read once and each late id
 * once; per key, the windows' counts plus its late records must be its input records: fewer is a loss, more a
 * duplicate. A batch whose array is not as long as its {@code batch_size} says is a mismatch, and any element of
 * neither shape (or a batch that is not an array) a duplicate, as no input can give it. Thread-safe.
 */
final class WindowOracle implements OutputReader.Tally {

    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * @param outputs the input records the output accounts for: the windows' counts and the late records, each
     *                window and late record once
     * @param batches the output records read
     * @param windows the windows read, each (key, window_start) once
     * @param late    the late records read, each id once
     * @param batchSizeMismatches batches whose array length differs from their {@code batch_size} header
     */
    record Result(long outputs, long batches, long windows, long late, long duplicates, long losses,
                  long batchSizeMismatches) implements OutputReader.Outcome {

        @Override
        public boolean exactlyOnce() {
            return duplicates == 0 && losses == 0 && batchSizeMismatches == 0;
        }

        /** Timers the job set: one event-time timer per key and window, a processing-time and an event-time one
         * per batch. */
        long timers() {
            return windows + 2 * batches;
        }

        @Override
        public String details() {
            return " windows=" + windows + " batches=" + batches + " late=" + late + " timers=" + timers()
                    + " batch_size_mismatches=" + batchSizeMismatches;
        }
    }

    /** Window starts read per key. */
    private final Map<String, Set<Long>> windows = new HashMap<>();
    /** Input records accounted for per key: window counts and late records, each read once. */
    private final Map<String, Long> counted = new HashMap<>();
    private final BitSet lateIds = new BitSet();
    private long batches;
    private long windowCount;
    private long lateCount;
    private long accounted;
    private long repeated;
    /** Elements no input can give: neither shape, a count below 1, an id out of range, not an array. */
    private long impossible;
    private long batchSizeMismatches;

    @Override
    public void add(ConsumerRecord<byte[], byte[]> record) throws IOException {
        Header size = record.headers().lastHeader("batch_size");
        add(JSON.readTree(record.value()), size == null ? null : new String(size.value(), StandardCharsets.UTF_8));
    }

    /** Reads one batch: its payload and its {@code batch_size} header (or null). */
    synchronized void add(JsonNode batch, String batchSize) {
        batches++;
        if (!batch.isArray()) {
            impossible++;
            return;
        }
        if (batchSize != null && !batchSize.equals(Integer.toString(batch.size()))) {
            batchSizeMismatches++;
        }
        for (JsonNode element : batch) {
            addElement(element);
        }
    }

    private void addElement(JsonNode element) {
        JsonNode key = element.path("key");
        if (!key.isTextual()) {
            impossible++;
        } else if (element.has("window_start")) {
            addWindow(key.asText(), element.path("window_start"), element.path("count"));
        } else if (element.size() == 2 && element.path("id").canConvertToInt() && element.path("id").asInt() >= 0) {
            int id = element.path("id").asInt();
            if (lateIds.get(id)) {
                repeated++;
            } else {
                lateIds.set(id);
                lateCount++;
                count(key.asText(), 1);
            }
        } else {
            impossible++;
        }
    }

    private void addWindow(String key, JsonNode start, JsonNode count) {
        if (!start.canConvertToLong() || !count.canConvertToLong() || count.asLong() < 1) {
            impossible++;
        } else if (!windows.computeIfAbsent(key, k -> new HashSet<>()).add(start.asLong())) {
            repeated++;
        } else {
            windowCount++;
            count(key, count.asLong());
        }
    }

    private void count(String key, long records) {
        counted.merge(key, records, Long::sum);
        accounted += records;
    }

    @Override
    public synchronized Result compare(int[] perKey) {
        long losses = 0;
        long over = 0;
        Map<String, Long> left = new HashMap<>(counted);
        for (int key = 0; key < perKey.length; key++) {
            Long records = left.remove("key-" + key);
            long difference = (records == null ? 0 : records) - perKey[key];
            if (difference < 0) {
                losses -= difference;
            } else {
                over += difference;
            }
        }
        // Records counted for a key with no input can only be input counted twice (or made up).
        over += left.values().stream().mapToLong(Long::longValue).sum();
        return new Result(accounted, batches, windowCount, lateCount, repeated + impossible + over, losses,
                batchSizeMismatches);
    }

    @Override
    public synchronized long accounted() {
        return accounted;
    }

    @Override
    public synchronized long read() {
        return batches;
    }
}
