package org.flinkbridge.chaos;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.ByteArraySerializer;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/**
 * The sandbox's load generator and oracle, each a compose service of the image {@code flink-bridge/load}
 * ({@code load-generator} and {@code oracle} in deploy/sandbox/docker-compose.yml), configured by environment variables:
 * <ul>
 *   <li>{@code produce}: writes LOAD_RECORDS keyed records into LOAD_TOPIC at LOAD_RATE records/s (0: as fast as
 *       Kafka takes them) over LOAD_KEYS keys, then the records per key into LOAD_DIR/LOAD_TOPIC.per-key.json;</li>
 *   <li>{@code oracle}: reads LOAD_TOPIC with read_committed from the start, and once the generator's per-key file
 *       (LOAD_INPUT_TOPIC) is there and the output settled (LOAD_RECORDS read, then quiet; at most
 *       LOAD_SETTLE_SECONDS), writes its {@link Report} to LOAD_DIR/LOAD_TOPIC.oracle.json and exits 3 on any loss or
 *       duplicate. Latencies are bucketed by LOAD_BUCKET_MILLIS from LOAD_START_MILLIS.</li>
 * </ul>
 */
public final class LoadTraffic {

    private static final ObjectMapper JSON = new ObjectMapper();
    /** The file names in LOAD_DIR: the generator's records per key, and the oracle's report, after the topic's. */
    static final String PER_KEY = ".per-key.json";
    static final String REPORT = ".oracle.json";
    /** The oracle's exit status when the output lost or repeated a record (its report says which); 1 is a crash. */
    static final int LOSS_OR_DUPLICATE = 3;

    /** What the oracle found, as the load test's report takes it. */
    record Report(Oracle.Result result, List<Timeline.Bucket> buckets, long latencyP50Millis, long latencyP99Millis,
                  long firstReadMillis, long lastReadMillis) {}

    private LoadTraffic() {}

    public static void main(String[] args) throws Exception {
        String role = args.length == 1 ? args[0] : "";
        switch (role) {
            case "produce" -> produce(new Settings(System::getenv));
            case "oracle" -> System.exit(oracle(new Settings(System::getenv)) ? 0 : LOSS_OR_DUPLICATE);
            default -> {
                System.err.println("usage: LoadTraffic produce|oracle (configured by LOAD_* environment variables)");
                System.exit(2);
            }
        }
    }

    /** The LOAD_* settings (and KAFKA), each required. */
    record Settings(Function<String, String> values) {
        String get(String name) {
            String value = values.apply(name);
            if (value == null || value.isBlank()) {
                throw new IllegalArgumentException("the setting " + name + " is missing (an environment variable)");
            }
            return value;
        }

        long number(String name) {
            return Long.parseLong(get(name));
        }

        Path file(String name) {
            return Path.of(get("LOAD_DIR"), name);
        }
    }

    static void produce(Settings settings) throws Exception {
        String topic = settings.get("LOAD_TOPIC");
        long records = settings.number("LOAD_RECORDS");
        int rate = (int) settings.number("LOAD_RATE");
        int[] perKey;
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(Map.of(
                ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, settings.get("KAFKA"), ProducerConfig.ACKS_CONFIG, "all",
                ProducerConfig.LINGER_MS_CONFIG, 5), new ByteArraySerializer(), new ByteArraySerializer())) {
            perKey = SteadyProducer.produce(producer, topic, records, rate == 0 ? Integer.MAX_VALUE : rate,
                    (int) settings.number("LOAD_KEYS"), elapsedMillis -> { });
        }
        write(settings.file(topic + PER_KEY), perKey);
        log("wrote " + records + " records into " + topic);
    }

    /** @return whether every record came out exactly once */
    static boolean oracle(Settings settings) throws Exception {
        String topic = settings.get("LOAD_TOPIC");
        long records = settings.number("LOAD_RECORDS");
        long settleMillis = TimeUnit.SECONDS.toMillis(settings.number("LOAD_SETTLE_SECONDS"));
        Timeline timeline = new Timeline(settings.number("LOAD_START_MILLIS"), settings.number("LOAD_BUCKET_MILLIS"));
        Path perKeyFile = settings.file(settings.get("LOAD_INPUT_TOPIC") + PER_KEY);
        Oracle.Result result;
        try (OutputReader<Oracle> output = new OutputReader<>(settings.get("KAFKA"), topic, timeline, new Oracle())) {
            output.start();
            while (!Files.exists(perKeyFile)) {
                Thread.sleep(200);
            }
            int[] perKey = JSON.readValue(perKeyFile.toFile(), int[].class);
            result = output.awaitSettled(records, settleMillis).compare(perKey);
        }
        write(settings.file(topic + REPORT), new Report(result, timeline.buckets(),
                timeline.latencyPercentile(0.50), timeline.latencyPercentile(0.99), timeline.firstReadMillis(),
                timeline.lastReadMillis()));
        log("read " + result.outputs() + " records from " + topic + ": duplicates=" + result.duplicates()
                + " losses=" + result.losses());
        return result.exactlyOnce();
    }

    static Report readReport(Path file) throws Exception {
        return JSON.readValue(file.toFile(), Report.class);
    }

    /** Writes {@code value} as JSON to {@code file} at once: a reader waiting for the file never sees half of it. */
    private static void write(Path file, Object value) throws Exception {
        Path partial = file.resolveSibling(file.getFileName() + ".partial");
        JSON.writeValue(partial.toFile(), value);
        Files.move(partial, file, StandardCopyOption.ATOMIC_MOVE);
    }

    private static void log(String line) {
        System.err.println("flink-bridge load: " + line);
    }
}
