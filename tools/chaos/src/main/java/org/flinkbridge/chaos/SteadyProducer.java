package org.flinkbridge.chaos;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;

import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;

/**
 * Writes keyed JSON records ({@code {"key":"key-K","id":I}}, keyed by {@code key-K}, K = I mod keys) into a topic
 * at a steady rate, and counts them per key for the oracle; with {@code poisonEvery} above 0, record I is
 * {@code not json I} instead where I + 1 is a multiple of it (and counts for no key). Between records, while it is ahead of the rate, it
 * flushes and calls {@code whileAhead} with the milliseconds since it began (the chaos run kills then), then sleeps.
 */
final class SteadyProducer {

    interface WhileAhead {
        void at(long elapsedMillis) throws Exception;
    }

    private SteadyProducer() {}

    /** @return the records written per key index */
    static int[] produce(KafkaProducer<byte[], byte[]> producer, String topic, long records, int recordsPerSecond,
                         int keys, WhileAhead whileAhead) throws Exception {
        return produce(producer, topic, records, recordsPerSecond, keys, 0, whileAhead);
    }

    static int[] produce(KafkaProducer<byte[], byte[]> producer, String topic, long records, int recordsPerSecond,
                         int keys, int poisonEvery, WhileAhead whileAhead) throws Exception {
        int[] perKey = new int[keys];
        long started = System.nanoTime();
        for (long i = 0; i < records; i++) {
            int key = (int) (i % keys);
            boolean poisoned = poisonEvery > 0 && (i + 1) % poisonEvery == 0;
            String payload = poisoned ? "not json " + i : "{\"key\":\"key-" + key + "\",\"id\":" + i + "}";
            if (!poisoned) {
                perKey[key]++;
            }
            producer.send(new ProducerRecord<>(topic, ("key-" + key).getBytes(StandardCharsets.UTF_8),
                    payload.getBytes(StandardCharsets.UTF_8)));
            long due = TimeUnit.SECONDS.toNanos(i + 1L) / recordsPerSecond;
            long ahead = due - (System.nanoTime() - started);
            if (ahead > 1_000_000) {
                producer.flush();
                whileAhead.at(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started));
                TimeUnit.NANOSECONDS.sleep(due - (System.nanoTime() - started));
            }
        }
        producer.flush();
        return perKey;
    }
}
