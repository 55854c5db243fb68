package org.flinkbridge.chaos;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
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
 * committed transactions are seen, as a downstream consumer of an exactly-once pipeline sees them.
 */
final class OutputReader implements AutoCloseable {

    private static final ObjectMapper JSON = new ObjectMapper();

    private final KafkaConsumer<byte[], byte[]> consumer;
    private final String topic;
    private final Oracle oracle = new Oracle();
    private final Thread thread;
    private volatile boolean stopping;
    private volatile Exception failure;

    /** Where each record's read time and latency go, or null. */
    private final Timeline timeline;

    OutputReader(String bootstrapServers, String topic) {
        this(bootstrapServers, topic, null);
    }

    OutputReader(String bootstrapServers, String topic, Timeline timeline) {
        this.timeline = timeline;
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
                    JsonNode count = JSON.readTree(record.value());
                    oracle.add(count.path("key").asText(), count.path("count").asLong());
                }
            }
        } catch (IOException | RuntimeException e) {
            failure = e;
        }
    }

    /**
     * Waits until at least {@code expected} records were read and no more came for a few checkpoints (late
     * duplicates would show then), or until {@code timeoutMillis} passed; returns the tally of what was read.
     */
    Oracle awaitSettled(long expected, long timeoutMillis) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
        long last = -1;
        long quietSince = System.nanoTime();
        while (System.nanoTime() < deadline) {
            if (failure != null) {
                throw new IOException("reading the output failed", failure);
            }
            long now = oracle.outputs();
            if (now != last) {
                last = now;
                quietSince = System.nanoTime();
            } else if (now >= expected && System.nanoTime() - quietSince > TimeUnit.SECONDS.toNanos(5)) {
                break;
            }
            Thread.sleep(200);
        }
        return oracle;
    }

    @Override
    public void close() throws InterruptedException {
        stopping = true;
        thread.join(TimeUnit.SECONDS.toMillis(5));
        consumer.close();
    }
}
