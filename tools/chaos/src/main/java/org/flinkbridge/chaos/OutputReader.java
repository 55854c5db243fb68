package org.flinkbridge.chaos;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

import java.io.IOException;
import java.time.Duration;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.TimeUnit;

/**
 * Reads the output topic with read_committed as the job writes it, on its own thread: only records of
 * committed transactions are seen, as a downstream consumer of an exactly-once pipeline sees them. Each goes to
 * a {@link Tally}: the count's {@link Oracle}, or the windows' {@link WindowOracle}.
 */
final class OutputReader<T extends OutputReader.Tally> implements AutoCloseable {

    /** What the output read so far says; thread-safe, as the reader's thread adds to it. */
    interface Tally {
        void add(ConsumerRecord<byte[], byte[]> record) throws IOException;

        /** The input records the output accounts for so far, each once. */
        long accounted();

        /** The output records read so far, repeated ones included: by default, where each accounts for one. */
        default long read() {
            return accounted();
        }

        /** @param perKey input records per key index ({@code key-<index>}) */
        Outcome compare(int[] perKey);
    }

    /** The verdict on the whole output. */
    interface Outcome {
        /** The input records the output accounts for (for the count, its outputs). */
        long outputs();

        long duplicates();

        long losses();

        boolean exactlyOnce();

        /** What the run's line adds after its own fields (with a leading space), or "". */
        default String details() {
            return "";
        }
    }

    private final KafkaConsumer<byte[], byte[]> consumer;
    private final String topic;
    private final T tally;
    private final Thread thread;
    private volatile boolean stopping;
    private volatile Exception failure;

    /** Where each record's read time and latency go, or null. */
    private final Timeline timeline;

    OutputReader(String bootstrapServers, String topic, T tally) {
        this(bootstrapServers, topic, null, tally);
    }

    OutputReader(String bootstrapServers, String topic, Timeline timeline, T tally) {
        this.timeline = timeline;
        this.tally = tally;
        Properties properties = new Properties();
        properties.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers);
        properties.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        properties.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        this.consumer = new KafkaConsumer<>(properties, new ByteArrayDeserializer(), new ByteArrayDeserializer());
        this.topic = topic;
        this.thread = new Thread(this::read, "chaos-output-reader");
        this.thread.setDaemon(true);
    }

    void start() {
        List<TopicPartition> partitions = consumer.partitionsFor(topic, Duration.ofSeconds(30)).stream()
                .map(p -> new TopicPartition(topic, p.partition())).toList();
        consumer.assign(partitions);
        consumer.seekToBeginning(partitions);
        thread.start();
    }

    private void read() {
        try {
            while (!stopping) {
                for (ConsumerRecord<byte[], byte[]> record : consumer.poll(Duration.ofMillis(200))) {
                    if (timeline != null) {
                        long now = System.currentTimeMillis();
                        timeline.add(now, now - record.timestamp());
                    }
                    tally.add(record);
                }
            }
        } catch (IOException | RuntimeException e) {
            failure = e;
        }
    }

    /**
     * Waits until the output accounts for at least {@code expected} input records and no more came for a few
     * checkpoints (late duplicates would show then), or until {@code timeoutMillis} passed; returns the tally of
     * what was read.
     */
    T awaitSettled(long expected, long timeoutMillis) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
        long last = -1;
        long quietSince = System.nanoTime();
        while (System.nanoTime() < deadline) {
            if (failure != null) {
                throw new IOException("reading the output failed", failure);
            }
            long now = tally.read();
            if (now != last) {
                last = now;
                quietSince = System.nanoTime();
            } else if (tally.accounted() >= expected
                    && System.nanoTime() - quietSince > TimeUnit.SECONDS.toNanos(5)) {
                break;
            }
            Thread.sleep(200);
        }
        return tally;
    }

    @Override
    public void close() throws InterruptedException {
        stopping = true;
        thread.join(TimeUnit.SECONDS.toMillis(5));
        consumer.close();
    }
}
