package org.flinkbridge.chaos;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.flinkbridge.testing.KafkaBroker;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The sandbox's load generator and oracle against a real broker, as their containers run them: the generator's
 * per-key counts reach the oracle through the shared folder, and the oracle's report names what the output lost and
 * repeated. The job between them is played here by writing its per-key counts into the output topic.
 */
class LoadTrafficTest {

    private static final int RECORDS = 3_000;
    private static final int KEYS = 3;

    @Test
    void theOracleReportsTheGeneratorsInputCheckedAgainstTheOutput(@TempDir Path dir) throws Exception {
        try (KafkaBroker broker = KafkaBroker.start()) {
            broker.createTopic("in", 2);
            broker.createTopic("out", 2);
            LoadTraffic.Settings settings = new LoadTraffic.Settings(Map.of("KAFKA", broker.bootstrapServers(),
                    "LOAD_DIR", dir.toString(), "LOAD_RECORDS", Integer.toString(RECORDS), "LOAD_RATE", "0",
                    "LOAD_KEYS", Integer.toString(KEYS), "LOAD_INPUT_TOPIC", "in", "LOAD_START_MILLIS",
                    Long.toString(System.currentTimeMillis()), "LOAD_BUCKET_MILLIS", "1000",
                    "LOAD_SETTLE_SECONDS", "60")::get);
            // The oracle starts first, as in the load test, and waits for the generator's counts.
            CompletableFuture<Boolean> oracle = CompletableFuture.supplyAsync(() -> {
                try {
                    return LoadTraffic.oracle(withTopic(settings, "out"));
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            });
            LoadTraffic.produce(withTopic(settings, "in"));
            assertArrayEquals(new int[] {1_000, 1_000, 1_000}, new ObjectMapper()
                    .readValue(dir.resolve("in" + LoadTraffic.PER_KEY).toFile(), int[].class));

            // Every key's counts 1..1000, except that key-1 loses count 7 and key-2 has count 9 twice.
            List<ProducerRecord<byte[], byte[]>> output = new ArrayList<>();
            for (int key = 0; key < KEYS; key++) {
                for (int count = 1; count <= RECORDS / KEYS; count++) {
                    if (key == 1 && count == 7) {
                        continue;
                    }
                    for (int copy = 0; copy < (key == 2 && count == 9 ? 2 : 1); copy++) {
                        output.add(new ProducerRecord<>("out", ("{\"key\":\"key-" + key + "\",\"count\":" + count
                                + "}").getBytes(StandardCharsets.UTF_8)));
                    }
                }
            }
            broker.produce(output);

            assertFalse(oracle.get(), "the oracle passed an output with a loss and a duplicate");
            LoadTraffic.Report report = LoadTraffic.readReport(dir.resolve("out" + LoadTraffic.REPORT));
            assertEquals(new Oracle.Result(RECORDS, 1, 1), report.result());
            assertEquals(RECORDS, report.buckets().stream().mapToLong(Timeline.Bucket::outputs).sum());
            assertTrue(report.lastReadMillis() >= report.firstReadMillis(), report.toString());
            assertFalse(Files.exists(dir.resolve("out" + LoadTraffic.REPORT + ".partial")));
        }
    }

    private static LoadTraffic.Settings withTopic(LoadTraffic.Settings settings, String topic) {
        return new LoadTraffic.Settings(name -> name.equals("LOAD_TOPIC") ? topic : settings.values().apply(name));
    }
}
