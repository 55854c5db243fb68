package org.flinkbridge.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import java.time.Instant;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ReportTest {

    @Test
    void linesUpTransportsAndCopyLimitPerPayloadSize() throws Exception {
        String json = "[" + String.join(",",
                roundTrip("shm", 100, 3_000_000, 300),
                roundTrip("grpc", 100, 500_000, 1_300),
                roundTrip("compat", 100, 6_000, 9_000),
                result("org.flinkbridge.bench.CopyLimit.copy", "{\"payloadBytes\": \"100\"}", 200_000_000, 0),
                result("org.flinkbridge.bench.RingHandoff.handOff", "{\"payloadBytes\": \"100\"}", 40_000_000, 0),
                roundTrip("shm", 1024, 1_000_000, 1_200)) + "]";

        String report = Report.render(new ObjectMapper().readTree(json), Instant.parse("2026-01-02T03:04:05Z"),
                "./flink-bridge bench --quick", "java -jar bench/target/benchmarks.jar");

        List<String> rows = report.lines().filter(line -> line.matches("\\| \\d.*")).toList();
        assertEquals(2, rows.size(), report);
        assertEquals("| 100 | 3,000,000 ±1% | 500,000 ±1% | 6,000 ±1% | 40,000,000 ±1% | 200,000,000 ±1% | 300.0 "
                + "| 50.0 | 0.6 | 4,000.0 | 20,000.0 | 300 | 1,300 | 9,000 | 0 | 6.00 | 500.00 | 0.0150 |", rows.get(0));
        assertEquals("| 1024 | 1,000,000 ±1% | – | – | – | – | 1,024.0 | – | – | – | – | 1,200 | – | – | – | – | – "
                + "| – |", rows.get(1));
        assertTrue(report.contains(", 2026-01-02T03:04:05Z\n"), report);
        assertTrue(report.contains("![records per second by transport and payload size](results.png)"), report);
        assertTrue(report.contains("Command: `./flink-bridge bench --quick`, which runs "
                + "`java -jar bench/target/benchmarks.jar`"), report);
    }

    @Test
    void putsTheRustWorkersRoundTripsBesideTheJavaWorkersOnEachTransport() throws Exception {
        String json = "[" + String.join(",",
                roundTrip("shm", 100, 3_000_000, 300),
                roundTrip("grpc", 100, 500_000, 1_300),
                roundTrip("rust", "shm", 100, 6_000_000, 300),
                roundTrip("rust", "grpc", 100, 400_000, 1_300)) + "]";

        String report = Report.render(new ObjectMapper().readTree(json), Instant.parse("2026-01-02T03:04:05Z"),
                "./flink-bridge bench", "java -jar bench/target/benchmarks.jar");

        String rust = report.substring(report.indexOf("## Rust worker"));
        assertTrue(rust.contains("| payload (B) | rust shm rec/s | rust grpc rec/s | rust shm/grpc | rust shm / Java shm "
                + "| rust grpc / Java grpc |"), rust);
        assertTrue(rust.contains("| 100 | 6,000,000 | 400,000 | 15.00 | 2.00 | 0.800 |"), rust);
        assertFalse(report.contains("## Python worker"), report);
    }

    @Test
    void drawsTheChartAsAPng(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws Exception {
        String json = "[" + String.join(",", roundTrip("shm", 100, 3_000_000, 300),
                roundTrip("grpc", 100, 500_000, 1_300)) + "]";
        java.nio.file.Path png = dir.resolve(Report.CHART);

        Chart.write(png, List.of("shm", "grpc"), Report.scores(new ObjectMapper().readTree(json)));

        java.awt.image.BufferedImage image = javax.imageio.ImageIO.read(png.toFile());
        assertEquals(1000, image.getWidth());
        assertEquals(560, image.getHeight());
    }

    private static String roundTrip(String transport, int payloadBytes, double score, double allocated) {
        return roundTrip("java", transport, payloadBytes, score, allocated);
    }

    private static String roundTrip(String worker, String transport, int payloadBytes, double score,
                                    double allocated) {
        return result("org.flinkbridge.bench.TransportRoundTrip.roundTrip", "{\"payloadBytes\": \"" + payloadBytes
                + "\", \"transport\": \"" + transport + "\", \"worker\": \"" + worker + "\"}", score, allocated);
    }

    private static String result(String benchmark, String params, double score, double allocated) {
        return """
                {"jmhVersion": "1.37", "benchmark": "%s", "jdkVersion": "25", "vmName": "VM", "vmVersion": "25",
                 "forks": 1, "warmupIterations": 2, "warmupTime": "1 s", "measurementIterations": 3,
                 "measurementTime": "1 s", "params": %s,
                 "primaryMetric": {"score": %s, "scoreError": %s, "scoreUnit": "ops/s"},
                 "secondaryMetrics": {"gc.alloc.rate.norm": {"score": %s, "scoreUnit": "B/op"}}}
                """.formatted(benchmark, params, score, score / 100, allocated);
    }
}
