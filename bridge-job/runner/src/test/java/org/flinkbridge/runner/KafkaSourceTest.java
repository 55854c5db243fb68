package org.flinkbridge.runner;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.flinkbridge.testing.KafkaBroker;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The official KafkaSource, fed by a real broker, through a worker, into files. */
class KafkaSourceTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int RECORDS = 3_000;

    @Test
    void everyKafkaRecordReachesTheOutputOnce(@TempDir Path dir) throws Exception {
        try (KafkaBroker broker = KafkaBroker.start()) {
            broker.createTopic("events", 3);
            List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
            for (int i = 0; i < RECORDS; i++) {
                records.add(new ProducerRecord<>("events", ("user-" + (i % 17)).getBytes(StandardCharsets.UTF_8),
                        ("{\"n\":" + i + "}").getBytes(StandardCharsets.UTF_8)));
            }
            broker.produce(records);
            Path pipeline = TestPipelines.write(dir, "kafka", """
                    name: from-kafka
                    sources:
                      topic:
                        type: kafka
                        bootstrap_servers: %s
                        topic: events
                        bounded: true
                    steps:
                      - {step_name: add_processed, type: append_field}
                    sinks:
                      files: {type: file, path: unused}
                    bridge: {transport: grpc, parallelism: 2, key: {header: key}}
                    """.formatted(broker.bootstrapServers()));
            Path out = dir.resolve("out");

            String summary = LocalRunner.run(new String[] {pipeline.toString(), "--output", out.toString()});

            Set<Long> seen = new HashSet<>();
            for (String line : TestPipelines.outputLines(out)) {
                JsonNode event = JSON.readTree(line);
                assertTrue(event.get("processed").asBoolean(), line);
                assertTrue(seen.add(event.get("n").asLong()), "duplicate " + line);
            }
            assertEquals(RECORDS, seen.size());
            assertTrue(summary.contains("read=" + RECORDS + " sent=" + RECORDS), summary);
        }
    }
}
