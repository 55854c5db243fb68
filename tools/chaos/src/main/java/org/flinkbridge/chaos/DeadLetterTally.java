package org.flinkbridge.chaos;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.header.Header;

import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The committed dead letters of a run with {@code --dead-letters}: every input record that was not JSON (those
 * whose index I has I + 1 a multiple of the poison interval) must be there once, as it was written, naming the
 * step that failed on it, and nothing else.
 */
record DeadLetterTally(long letters, long duplicates, long losses, long strangers) {

    static final DeadLetterTally NONE = new DeadLetterTally(0, 0, 0, 0);
    private static final String STEP = "count_per_key";

    static DeadLetterTally of(List<ConsumerRecord<byte[], byte[]>> committed, long records, int poisonEvery) {
        Map<String, Integer> copies = new HashMap<>();
        long strangers = 0;
        for (ConsumerRecord<byte[], byte[]> letter : committed) {
            Header step = letter.headers().lastHeader("flink-bridge.dead-letter.step");
            if (step == null || !STEP.equals(new String(step.value(), StandardCharsets.UTF_8))) {
                strangers++;
            }
            copies.merge(new String(letter.value(), StandardCharsets.UTF_8), 1, Integer::sum);
        }
        long duplicates = 0;
        long losses = 0;
        for (long i = poisonEvery - 1; i < records; i += poisonEvery) {
            Integer seen = copies.remove("not json " + i);
            if (seen == null) {
                losses++;
            } else {
                duplicates += seen - 1;
            }
        }
        // What is left was never written as poison: a count's record sent aside, or one mangled on its way.
        strangers += copies.values().stream().mapToLong(Integer::longValue).sum();
        return new DeadLetterTally(committed.size(), duplicates, losses, strangers);
    }

    boolean exactlyOnce() {
        return duplicates == 0 && losses == 0 && strangers == 0;
    }

    @Override
    public String toString() {
        return "dead_letters=" + letters + " dead_letter_duplicates=" + duplicates + " dead_letter_losses=" + losses
                + " dead_letter_strangers=" + strangers;
    }
}
