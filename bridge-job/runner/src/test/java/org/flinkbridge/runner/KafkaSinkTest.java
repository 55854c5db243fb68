package org.flinkbridge.runner;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.TransactionListing;
import org.apache.kafka.clients.admin.TransactionState;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.flinkbridge.testing.KafkaBroker;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.LongStream;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Kafka sink against a real broker, end to end through a spawned worker: at-least-once with every field of
 * the record; exactly-once with checkpoints, aborting a lingering transaction of a subtask the job no longer
 * has; exactly-once across a worker killed mid-run and the restart from the last checkpoint, and across a
 * failed run restored from its last checkpoint at a smaller parallelism.
 */
class KafkaSinkTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static KafkaBroker broker;

    @BeforeAll
    static void startBroker() throws Exception {
        broker = KafkaBroker.start();
    }

    @AfterAll
    static void stopBroker() {
        broker.close();
    }

    @Test
    void atLeastOnceWritesEveryRecordWithItsKeyHeadersAndTimestamp(@TempDir Path dir) throws Exception {
        int records = 2_000;
        long epoch = 1_700_000_000_000L;
        broker.createTopic("alo-in", 2);
        broker.createTopic("alo-out", 3);
        List<ProducerRecord<byte[], byte[]>> input = new ArrayList<>();
        for (int n = 0; n < records; n++) {
            input.add(new ProducerRecord<>("alo-in", null, epoch + n, utf8("user-" + n % 17), utf8("{\"n\":" + n + "}"),
                    List.of(new RecordHeader("tenant", utf8("tenant-ü")))));
        }
        broker.produce(input);
        Path pipeline = TestPipelines.write(dir, "alo", """
                name: alo
                sources:
                  in: {type: kafka, bootstrap_servers: %1$s, topic: alo-in, bounded: true}
                steps:
                  - {step_name: add_processed, type: append_field}
                sinks:
                  out: {type: kafka, bootstrap_servers: %1$s, topic: alo-out, key: {header: key}}
                bridge: {parallelism: 2}
                """.formatted(broker.bootstrapServers()));

        LocalRunner.run(new String[] {pipeline.toString()});

        List<ConsumerRecord<byte[], byte[]>> output = broker.readAll("alo-out", false);
        Set<Long> seen = new HashSet<>();
        for (ConsumerRecord<byte[], byte[]> record : output) {
            JsonNode event = JSON.readTree(record.value());
            long n = event.get("n").asLong();
            assertTrue(seen.add(n), "duplicate " + event);
            assertTrue(event.get("processed").asBoolean(), event.toString());
            assertEquals("user-" + n % 17, new String(record.key(), StandardCharsets.UTF_8));
            assertEquals("tenant-ü",
                    new String(record.headers().lastHeader("tenant").value(), StandardCharsets.UTF_8));
            assertEquals(epoch + n, record.timestamp());
        }
        assertEquals(records, seen.size());
    }

    @Test
    void exactlyOnceCommitsEachRecordOnceAndAbortsALingeringTransaction(@TempDir Path dir) throws Exception {
        int records = 6_000;
        broker.createTopic("eo-out", 3);
        // As if an earlier run at parallelism 6 had died with a transaction of its subtask 5 open.
        String lingering = "flink-bridge-eo-out-5-3";
        try (KafkaProducer<byte[], byte[]> producer =
                     broker.producer(Map.of(ProducerConfig.TRANSACTIONAL_ID_CONFIG, lingering))) {
            producer.initTransactions();
            producer.beginTransaction();
            producer.send(new ProducerRecord<>("eo-out", utf8("lingering")));
            producer.flush();
            producer.close(Duration.ZERO); // at once, leaving the transaction open
        }
        Path pipeline = TestPipelines.write(dir, "eo", exactlyOnce("eo", "eo-out", records, 3_000, 2));

        LocalRunner.run(new String[] {pipeline.toString()});

        assertEachGeneratedEventOnce("eo-out", records);
        try (Admin admin = broker.admin()) {
            assertNotEquals(TransactionState.ONGOING,
                    admin.describeTransactions(List.of(lingering)).all().get().get(lingering).state());
            long checkpointTransactions = admin.listTransactions().all().get().stream()
                    .map(TransactionListing::transactionalId)
                    .filter(id -> id.startsWith("flink-bridge-eo-out-") && !id.equals(lingering))
                    .count();
            assertTrue(checkpointTransactions >= 2, "transactions of " + checkpointTransactions + " checkpoints");
        }
    }

    @Test
    void exactlyOnceHoldsAcrossAWorkerKilledMidRun(@TempDir Path dir) throws Exception {
        int records = 12_000;
        broker.createTopic("eo-restart", 3);
        // 6 s of input: the kill comes at the first commit, and must come while the source still reads, or the
        // restart has nothing to replay (at 3 s a slow start once left the kill after the source had finished).
        Path pipeline = TestPipelines.write(dir, "restart", exactlyOnce("restart", "eo-restart", records, 2_000, 2));
        RunningJob run = TestPipelines.runInBackground(pipeline.toString(), "-Drestart-strategy.type=fixed-delay",
                "-Drestart-strategy.fixed-delay.attempts=3", "-Drestart-strategy.fixed-delay.delay=100ms");

        int committedBeforeKill = awaitCommitted("eo-restart");
        ProcessHandle worker = TestPeers.spawnedWorker()
                .orElseThrow(() -> new AssertionError("no spawned worker running"));
        new ProcessBuilder("kill", "-KILL", Long.toString(worker.pid())).start().waitFor();
        run.get(120, TimeUnit.SECONDS);

        assertTrue(committedBeforeKill < records, "the worker was killed only after the last commit");
        assertTrue(run.restarts() >= 1, "the kill did not make the job restart from its checkpoint");
        assertEachGeneratedEventOnce("eo-restart", records);
    }

    @Test
    void exactlyOnceHoldsAcrossARestoreAtASmallerParallelism(@TempDir Path dir) throws Exception {
        // 8 s of input, so the kill after the first commit lands mid-run even when this test runs first in a cold
        // JVM (with 4 s it sometimes came after the end; restoring a checkpoint taken after the input ended is
        // another case, open in the hardening issue).
        int records = 16_000;
        broker.createTopic("eo-rescale", 3);
        Path pipeline = TestPipelines.write(dir, "rescale", exactlyOnce("rescale", "eo-rescale", records, 2_000, 3));
        Path checkpoints = dir.resolve("checkpoints");
        CompletableFuture<String> first = TestPipelines.runRetainingCheckpoints(pipeline, checkpoints);
        awaitCommitted("eo-rescale");
        ProcessHandle worker = TestPeers.spawnedWorker()
                .orElseThrow(() -> new AssertionError("no spawned worker running"));
        new ProcessBuilder("kill", "-KILL", Long.toString(worker.pid())).start().waitFor();
        ExecutionException failed = assertThrows(ExecutionException.class, () -> first.get(120, TimeUnit.SECONDS));
        assertTrue(LocalRunner.causeMessage(failed).contains("pid " + worker.pid()), LocalRunner.causeMessage(failed));
        Path latest = TestPipelines.latestCheckpoint(checkpoints);

        LocalRunner.run(new String[] {pipeline.toString(), "--parallelism", "1",
                "-Dexecution.state-recovery.path=" + latest.toUri()});

        assertEachGeneratedEventOnce("eo-rescale", records);
    }

    /** With failover: a killed worker restarts the job from its checkpoint, which is what these tests are about. */
    private static String exactlyOnce(String name, String topic, int count, int rate, int parallelism) {
        return """
                name: %s
                sources:
                  events: {type: generator, count: %d, rate: %d}
                steps:
                  - {step_name: add_processed, type: append_field}
                sinks:
                  out:
                    type: kafka
                    bootstrap_servers: %s
                    topic: %s
                    delivery: exactly_once
                    key: {json_field: key}
                bridge: {parallelism: %d, checkpoint_interval_ms: 200, worker_recovery: failover}
                """.formatted(name, count, rate, broker.bootstrapServers(), topic, parallelism);
    }

    /** Events 0 to count - 1 in the topic's committed records, each once and keyed by its key field. */
    private static void assertEachGeneratedEventOnce(String topic, int count) throws IOException {
        Map<Long, Integer> copies = new TreeMap<>();
        for (ConsumerRecord<byte[], byte[]> record : broker.readAll(topic, true)) {
            JsonNode event = JSON.readTree(record.value());
            copies.merge(event.get("id").asLong(), 1, Integer::sum);
            assertEquals(event.get("key").asText(), new String(record.key(), StandardCharsets.UTF_8));
        }
        List<Long> duplicates = copies.entrySet().stream().filter(e -> e.getValue() > 1).map(Map.Entry::getKey)
                .toList();
        List<Long> missing = LongStream.range(0, count).filter(id -> !copies.containsKey(id)).boxed().toList();
        assertTrue(duplicates.isEmpty() && missing.isEmpty(), () -> "in " + topic + ", " + duplicates.size()
                + " events more than once " + first(duplicates) + " and " + missing.size() + " missing "
                + first(missing) + ", of which " + inAbortedTransactions(topic, missing)
                + " were written in transactions that were aborted");
    }

    private static long inAbortedTransactions(String topic, List<Long> ids) {
        Set<Long> written = new HashSet<>();
        for (ConsumerRecord<byte[], byte[]> record : broker.readAll(topic, false)) {
            try {
                written.add(JSON.readTree(record.value()).get("id").asLong());
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return ids.stream().filter(written::contains).count();
    }

    private static String first(List<Long> ids) {
        return ids.subList(0, Math.min(10, ids.size())).toString();
    }

    /** The number of committed records once there are some: a checkpoint has completed and been committed. */
    private static int awaitCommitted(String topic) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (System.nanoTime() < deadline) {
            int committed = broker.readAll(topic, true).size();
            if (committed > 0) {
                return committed;
            }
            Thread.sleep(100);
        }
        throw new AssertionError("nothing committed to " + topic + " within 60 s");
    }

    private static byte[] utf8(String text) {
        return text.getBytes(StandardCharsets.UTF_8);
    }
}
