package org.flinkbridge.chaos;

import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What exactly-once means for the chaos job: key k had n_k input records, so the per-key running count
 * must have written {"key": k, "count": c} for every c in 1..n_k, each once, and nothing else.
 */
final class Oracle {

    /** An output record as read back: its key and count. */
    record Count(String key, long count) {}

    record Result(long outputs, long duplicates, long losses) {
        boolean exactlyOnce() {
            return duplicates == 0 && losses == 0;
        }
    }

    private Oracle() {}

    private static long inputsOf(int[] perKey, String key) {
        try {
            int index = key.startsWith("key-") ? Integer.parseInt(key.substring(4)) : -1;
            return index >= 0 && index < perKey.length ? perKey[index] : 0;
        } catch (NumberFormatException e) {
            return 0;
        }
    }

    /**
     * @param perKey input records per key index ({@code key-<index>})
     * @param outputs the committed output
     */
    static Result compare(int[] perKey, List<Count> outputs) {
        Map<String, Set<Long>> seen = new HashMap<>();
        long duplicates = 0;
        for (Count output : outputs) {
            boolean first = seen.computeIfAbsent(output.key(), key -> new HashSet<>()).add(output.count());
            if (!first) {
                duplicates++;
            }
        }
        long losses = 0;
        for (int key = 0; key < perKey.length; key++) {
            Set<Long> counts = seen.getOrDefault("key-" + key, Set.of());
            for (long count = 1; count <= perKey[key]; count++) {
                if (!counts.contains(count)) {
                    losses++;
                }
            }
        }
        // A count past a key's input, or a key with no input, can only come from input counted twice.
        long unexpected = 0;
        for (Map.Entry<String, Set<Long>> key : seen.entrySet()) {
            long inputs = inputsOf(perKey, key.getKey());
            unexpected += key.getValue().stream().filter(count -> count < 1 || count > inputs).count();
        }
        return new Result(outputs.size(), duplicates + unexpected, losses);
    }
}
