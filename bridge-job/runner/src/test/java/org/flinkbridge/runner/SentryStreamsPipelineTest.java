package org.flinkbridge.runner;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.flinkbridge.bridge.BridgeOptions;
import org.flinkbridge.testing.KafkaBroker;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A pipeline file as the sentry_streams Flink adapter writes it (yaml.dump of its sources, sinks and segment
 * descriptors: no types, topics as {@code stream_name}, servers as a list) runs unchanged against a real broker,
 * its two segments served by a Python worker's own segments by their index, each with its {@code config}.
 */
class SentryStreamsPipelineTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int RECORDS = 400;
    private static final int BATCH_SIZE = 4;

    @Test
    void aSentryStreamsFileRunsUnchangedWithThePythonWorkersOwnSegments(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("sentry_app.py"), """
                import json

                from flink_bridge.sdk import Message


                class Parser:
                    def process(self, message):
                        event = json.loads(message.payload)
                        event["parsed"] = True
                        return [Message(json.dumps(event).encode(), message.headers, message.timestamp)]


                class Batcher:
                    \"""sentry_streams' batch step: batch_size records, or what is held when batch_timedelta passes.\"""

                    def __init__(self, batch_size, batch_timedelta):
                        assert batch_timedelta == {"seconds": 20}, batch_timedelta
                        self.batch_size = batch_size
                        self.held = []

                    def process(self, message):
                        self.held.append(json.loads(message.payload))
                        if len(self.held) < self.batch_size:
                            return []
                        batch, self.held = self.held, []
                        return [Message(json.dumps(batch).encode(), {}, message.timestamp)]


                SEGMENTS = [Parser, Batcher]
                """);
        try (KafkaBroker broker = KafkaBroker.start()) {
            broker.createTopic("events", 1);
            broker.createTopic("transformed-events", 1);
            List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
            for (int i = 0; i < RECORDS; i++) {
                records.add(new ProducerRecord<>("events", ("{\"n\":" + i + "}").getBytes(StandardCharsets.UTF_8)));
            }
            broker.produce(records);
            // Byte for byte what yaml.dump writes for the adapter's dict: keys sorted, lists as block items.
            Path pipeline = TestPipelines.write(dir, "sentry_pipeline", """
                    sinks:
                      mysink:
                        bootstrap_servers:
                        - %1$s
                        stream_name: transformed-events
                    sources:
                      myinput:
                        bootstrap_servers:
                        - %1$s
                        starts_segment: true
                        stream_name: events
                    steps:
                    - config: {}
                      step_name: parser
                    - config:
                        batch_size: %2$d
                        batch_timedelta:
                          seconds: 20
                      step_name: mybatch
                    """.formatted(broker.bootstrapServers(), BATCH_SIZE));
            int restPort = freePort();
            // The Kafka source of such a file is unbounded: the job runs until it is cancelled, as in production.
            CompletableFuture<String> run = TestPipelines.runInBackground(pipeline.toString(), "--worker=python",
                    "-D" + BridgeOptions.WORKER_SEGMENTS.key() + "=sentry_app.SEGMENTS",
                    "-Drest.bind-port=" + restPort, "-Drest.port=" + restPort);
            List<ConsumerRecord<byte[], byte[]>> batches;
            try {
                batches = awaitRecords(broker, "transformed-events", RECORDS / BATCH_SIZE, run);
            } finally {
                cancelJobs(restPort, run);
            }

            TreeSet<Long> seen = new TreeSet<>();
            for (ConsumerRecord<byte[], byte[]> batch : batches) {
                JsonNode events = JSON.readTree(batch.value());
                assertEquals(BATCH_SIZE, events.size(), events.toString());
                for (JsonNode event : events) {
                    assertTrue(event.get("parsed").asBoolean(), event.toString());
                    assertTrue(seen.add(event.get("n").asLong()), "twice: " + event);
                }
            }
            assertEquals(RECORDS, seen.size());
            assertEquals(RECORDS - 1, seen.last());
        }
    }

    /** Reads the topic until it holds {@code count} records; fails at once if the job ends meanwhile. */
    private static List<ConsumerRecord<byte[], byte[]>> awaitRecords(KafkaBroker broker, String topic, int count,
                                                                    CompletableFuture<String> run) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(2);
        while (true) {
            List<ConsumerRecord<byte[], byte[]>> records = broker.readAll(topic, false);
            if (records.size() >= count) {
                assertEquals(count, records.size(), "records in " + topic);
                return records;
            }
            if (run.isDone()) {
                run.get();
                throw new AssertionError("the job ended with " + records.size() + " of " + count + " records in "
                        + topic + ": " + run.get());
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError(topic + " holds " + records.size() + " of " + count + " records");
            }
            Thread.sleep(500);
        }
    }

    /** Cancels every running job through the embedded cluster's REST API and waits for the run to end. */
    private static void cancelJobs(int restPort, CompletableFuture<String> run) throws Exception {
        if (run.isDone()) {
            return;
        }
        HttpClient http = HttpClient.newHttpClient();
        URI jobs = URI.create("http://127.0.0.1:" + restPort + "/jobs");
        JsonNode listed = JSON.readTree(http.send(HttpRequest.newBuilder(jobs).timeout(Duration.ofSeconds(10)).build(),
                HttpResponse.BodyHandlers.ofString()).body());
        for (JsonNode job : listed.get("jobs")) {
            HttpResponse<String> cancelled = http.send(HttpRequest.newBuilder(
                            URI.create(jobs + "/" + job.get("id").asText() + "?mode=cancel"))
                    .method("PATCH", HttpRequest.BodyPublishers.noBody()).timeout(Duration.ofSeconds(10)).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(202, cancelled.statusCode(), cancelled.body());
        }
        ExecutionException ended = assertThrows(ExecutionException.class, () -> run.get(1, TimeUnit.MINUTES));
        assertTrue(TestPipelines.stackTrace(ended).contains("JobCancellationException"), TestPipelines.stackTrace(ended));
    }

    private static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0)) {
            return socket.getLocalPort();
        }
    }
}
