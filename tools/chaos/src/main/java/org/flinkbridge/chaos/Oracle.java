package org.flinkbridge.chaos;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.kafka.clients.consumer.ConsumerRecord;

import java.io.IOException;
import java.util.BitSet;
import java.util.HashMap;
import java.util.Map;

/**
 * What exactly-once means for the chaos job: key k had n_k input records, so the per-key running count must have
 * written {"key": k, "count": c} for every c in 1..n_k, each once, and nothing else. Outputs are tallied as they are
 * read, a bit per key and count, so millions of them fit in a small heap; thread-safe.
 */
final class Oracle implements OutputReader.Tally {

    private static final ObjectMapper JSON = new ObjectMapper();

    record Result(long outputs, long duplicates, long losses) implements OutputReader.Outcome {
        @Override
        public boolean exactlyOnce() {
            return duplicates == 0 && losses == 0;
        }
    }

    private final Map<String, BitSet> seen = new HashMap<>();
    private long outputs;
    private long repeated;
    /** Outputs with a count no input can give (below 1, or past what a bit set holds). */
    private long impossible;

    /** Reads a count's record, {@code {"key": K, "count": C}}. */
    @Override
    public void add(ConsumerRecord<byte[], byte[]> record) throws IOException {
        JsonNode count = JSON.readTree(record.value());
        add(count.path("key").asText(), count.path("count").asLong());
    }

    synchronized void add(String key, long count) {
        outputs++;
        if (count < 1 || count > Integer.MAX_VALUE) {
            impossible++;
            return;
        }
        BitSet counts = seen.computeIfAbsent(key, k -> new BitSet());
        if (counts.get((int) count)) {
            repeated++;
        } else {
            counts.set((int) count);
        }
    }

    /** Each count accounts for one input record (and so {@link #read()} is this too). */
    @Override
    public synchronized long accounted() {
        return outputs;
    }

    @Override
    public synchronized Result compare(int[] perKey) {
        long losses = 0;
        for (int key = 0; key < perKey.length; key++) {
            BitSet counts = seen.getOrDefault("key-" + key, new BitSet());
            losses += perKey[key] - counts.get(1, perKey[key] + 1).cardinality();
        }
        // A count past a key's input, or of a key with no input, can only come from input counted twice.
        long unexpected = impossible;
        for (Map.Entry<String, BitSet> key : seen.entrySet()) {
            int inputs = inputsOf(perKey, key.getKey());
            unexpected += key.getValue().get(inputs + 1, Math.max(inputs + 1, key.getValue().length())).cardinality();
        }
        return new Result(outputs, repeated + unexpected, losses);
    }

    private static int inputsOf(int[] perKey, String key) {
        try {
            int index = key.startsWith("key-") ? Integer.parseInt(key.substring(4)) : -1;
            return index >= 0 && index < perKey.length ? perKey[index] : 0;
        } catch (NumberFormatException e) {
            return 0;
        }
    }
}
