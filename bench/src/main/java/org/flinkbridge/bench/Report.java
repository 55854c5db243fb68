package org.flinkbridge.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;

import java.io.File;
import java.io.IOException;
import java.math.BigDecimal;
import java.math.MathContext;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeSet;
import java.util.stream.Stream;

/**
 * Turns the JMH results of a benchmark run into {@code results.md}: one row per payload size comparing the
 * transports with each other and with the copy limit. Also prints it.
 *
 * <p>Usage: {@code Report RESULTS_JSON OUTPUT_MD COMMAND JMH_COMMAND}: the command that ran the benchmarks
 * and the JMH command line it ran, both quoted into the report.
 */
public final class Report {

    private static final String ROUND_TRIP = TransportRoundTrip.class.getName() + ".roundTrip";
    private static final String COPY = CopyLimit.class.getName() + ".copy";
    private static final String HAND_OFF = RingHandoff.class.getName() + ".handOff";
    private static final List<String> TRANSPORTS = List.of("shm", "grpc", "compat");
    /** The Python and the Rust worker's round trips (TransportRoundTrip with worker=python or rust), by transport. */
    private static final String PYTHON = "python ";
    private static final String RUST = "rust ";
    private static final String RING_ALONE = "ring alone";
    private static final String COPY_LIMIT = "copy limit";
    private static final String ALLOCATION = "gc.alloc.rate.norm";
    private static final List<String> SERIES =
            Stream.concat(TRANSPORTS.stream(), Stream.of(RING_ALONE, COPY_LIMIT)).toList();
    /** The chart's file, written beside the Markdown report. */
    static final String CHART = "results.png";

    private Report() {}

    /** One benchmark's scores for one payload size: records/s, its error, bridge-side bytes allocated per record. */
    record Score(double recordsPerSecond, double error, double allocatedPerRecord) {}

    /** Every result of a run by column (series) and payload size. */
    record Scores(Map<String, Map<Integer, Score>> bySeries, TreeSet<Integer> payloadSizes) {
        Score get(String series, int payloadBytes) {
            return bySeries.getOrDefault(series, Map.of()).get(payloadBytes);
        }
    }

    public static void main(String[] args) throws IOException {
        if (args.length != 4) {
            System.err.println("usage: Report RESULTS_JSON[:MORE_RESULTS_JSON...] OUTPUT_MD COMMAND JMH_COMMAND");
            System.exit(2);
        }
        // The results of several JMH runs of one command (the Rust worker's runs after the others) make one report.
        ArrayNode results = JsonNodeFactory.instance.arrayNode();
        Path json = null;
        for (String file : args[0].split(File.pathSeparator)) {
            json = Path.of(file);
            JsonNode run = new ObjectMapper().readTree(json.toFile());
            if (!run.isArray() || run.isEmpty()) {
                throw new IllegalArgumentException(file + " holds no JMH results");
            }
            results.addAll((ArrayNode) run);
        }
        // JMH writes the file as the run ends, so its time dates the run even when the report is made again.
        String report = render(results, Files.getLastModifiedTime(json).toInstant(), args[2], args[3]);
        Path markdown = Path.of(args[1]);
        Files.writeString(markdown, report);
        Chart.write(markdown.resolveSibling(CHART), SERIES, scores(results));
        System.out.print(report);
    }

    static Scores scores(JsonNode results) {
        Map<String, Map<Integer, Score>> scores = new HashMap<>();
        TreeSet<Integer> payloadSizes = new TreeSet<>();
        for (JsonNode result : results) {
            String series = series(result);
            if (series == null) {
                continue;
            }
            int payloadBytes = result.path("params").path("payloadBytes").asInt();
            payloadSizes.add(payloadBytes);
            JsonNode primary = result.path("primaryMetric");
            scores.computeIfAbsent(series, s -> new HashMap<>()).put(payloadBytes, new Score(
                    primary.path("score").asDouble(), primary.path("scoreError").asDouble(Double.NaN),
                    result.path("secondaryMetrics").path(ALLOCATION).path("score").asDouble(Double.NaN)));
        }
        return new Scores(scores, payloadSizes);
    }

    static String render(JsonNode results, Instant ranAt, String command, String jmhCommand) throws IOException {
        Scores scores = scores(results);

        List<String> header = new ArrayList<>(List.of("payload (B)"));
        List<String> series = SERIES;
        List<String> allocating = Stream.concat(TRANSPORTS.stream(), Stream.of(RING_ALONE)).toList();
        series.forEach(s -> header.add(s + " rec/s"));
        series.forEach(s -> header.add(s + " MB/s"));
        allocating.forEach(t -> header.add(t + " alloc B/rec"));
        header.addAll(List.of("shm/grpc", "shm/compat", "shm/copy limit"));

        StringBuilder out = new StringBuilder();
        JsonNode first = results.get(0);
        out.append("# Transport round trip\n\n");
        out.append("Machine: nproc ").append(Runtime.getRuntime().availableProcessors())
                .append(", ").append(cpuModel())
                .append(", JDK ").append(first.path("jdkVersion").asText())
                .append(" (").append(first.path("vmName").asText()).append(' ')
                .append(first.path("vmVersion").asText()).append("), ")
                .append(ranAt.truncatedTo(ChronoUnit.SECONDS)).append("\n\n");
        out.append("Command: `").append(command).append("`, which runs `").append(jmhCommand).append("`\n\n");
        out.append("JMH ").append(first.path("jmhVersion").asText()).append(": ")
                .append(first.path("forks").asInt()).append(" fork(s), warmup ")
                .append(first.path("warmupIterations").asInt()).append(" × ")
                .append(first.path("warmupTime").asText())
                .append(", measurement ").append(first.path("measurementIterations").asInt()).append(" × ")
                .append(first.path("measurementTime").asText())
                .append(" per benchmark and parameter combination.\n\n");

        out.append("![records per second by transport and payload size](").append(CHART).append(")\n\n");
        out.append(row(header));
        out.append(row(header.stream().map(h -> "---:").toList()));
        for (int payloadBytes : scores.payloadSizes()) {
            List<String> cells = new ArrayList<>(List.of(String.valueOf(payloadBytes)));
            for (String s : series) {
                Score score = score(scores, s, payloadBytes);
                cells.add(score == null ? "–" : String.format(Locale.ROOT, "%,.0f", score.recordsPerSecond)
                        + (Double.isNaN(score.error) ? ""
                        : String.format(Locale.ROOT, " ±%.0f%%", 100 * score.error / score.recordsPerSecond)));
            }
            for (String s : series) {
                Score score = score(scores, s, payloadBytes);
                cells.add(score == null ? "–"
                        : String.format(Locale.ROOT, "%,.1f", score.recordsPerSecond * payloadBytes / 1e6));
            }
            for (String t : allocating) {
                Score score = score(scores, t, payloadBytes);
                cells.add(score == null || Double.isNaN(score.allocatedPerRecord) ? "–"
                        : String.format(Locale.ROOT, "%,.0f", score.allocatedPerRecord));
            }
            for (String other : List.of("grpc", "compat", COPY_LIMIT)) {
                cells.add(ratio(score(scores, "shm", payloadBytes), score(scores, other, payloadBytes)));
            }
            out.append(row(cells));
        }
        out.append("""

                - rec/s: records per second, JMH's mean ± its 99.9%% confidence interval. A transport's record goes \
                from the bridge to a worker process, through an echo segment, and back, pipelined as the bridge \
                function does (default window of %d records, default session settings).
                - ring alone: one thread encoding a batch of %d records into a session's ring, publishing it and \
                reading it back in place (no process boundary, no objects for Flink): the ring's own cost.
                - copy limit: one thread copying the payload from a heap array into off-heap memory with \
                MemorySegment.copy, the most one copy per record allows.
                - MB/s: payload bytes only (rec/s × payload size / 10^6), one way.
                - alloc B/rec: bytes the benchmark JVM (the bridge side; not the worker) allocates per record, from \
                JMH's gc profiler (gc.alloc.rate.norm).
                """.formatted(TransportRoundTrip.WINDOW, RingHandoff.BATCH));
        out.append(workerTable(scores, PYTHON, TRANSPORTS, """

                ## Python worker

                The same round trip through the Python worker (workers/python/, one process per session) and its echo
                segment (bench/src/main/python/bench_echo.py), in the same run.

                """));
        out.append(workerTable(scores, RUST, List.of("shm", "grpc"), """

                ## Rust worker

                The same round trip through the Rust worker (workers/rust/, one thread per session) and its echo step,
                measured by a second JMH run of the same command, right after the first.

                """));
        return out.toString();
    }

    /**
     * One worker's round trips ({@code prefix} names its series) beside each other and beside the Java worker's on
     * the same transport; empty when not run.
     */
    private static String workerTable(Scores scores, String prefix, List<String> transports, String about) {
        if (transports.stream().noneMatch(t -> scores.bySeries().containsKey(prefix + t))) {
            return "";
        }
        StringBuilder out = new StringBuilder(about);
        List<String> header = new ArrayList<>(List.of("payload (B)"));
        transports.forEach(t -> header.add(prefix + t + " rec/s"));
        transports.stream().skip(1).forEach(t -> header.add(prefix + "shm/" + t));
        transports.forEach(t -> header.add(prefix + t + " / Java " + t));
        out.append(row(header));
        out.append(row(header.stream().map(h -> "---:").toList()));
        for (int payloadBytes : scores.payloadSizes()) {
            List<String> cells = new ArrayList<>(List.of(String.valueOf(payloadBytes)));
            for (String t : transports) {
                Score score = score(scores, prefix + t, payloadBytes);
                cells.add(score == null ? "–" : String.format(Locale.ROOT, "%,.0f", score.recordsPerSecond));
            }
            Score shm = score(scores, prefix + "shm", payloadBytes);
            transports.stream().skip(1).forEach(t -> cells.add(ratio(shm, score(scores, prefix + t, payloadBytes))));
            transports.forEach(t -> cells.add(ratio(score(scores, prefix + t, payloadBytes),
                    score(scores, t, payloadBytes))));
            out.append(row(cells));
        }
        return out.toString();
    }

    /**
     * The column a result belongs to: a transport (the Java worker's; "python shm", "rust shm" and so on for the
     * Python and the Rust worker's), the ring alone, the copy limit, or null for another.
     */
    private static String series(JsonNode result) {
        String benchmark = result.path("benchmark").asText();
        if (benchmark.equals(ROUND_TRIP)) {
            if (!result.path("params").path("step").asText("echo").equals("echo")) {
                return null; // the JSON step's round trips are not the transport's: the report is of the echo's
            }
            String transport = result.path("params").path("transport").asText();
            return switch (result.path("params").path("worker").asText("java")) {
                case "python" -> PYTHON + transport;
                case "rust" -> RUST + transport;
                default -> transport;
            };
        }
        return benchmark.equals(HAND_OFF) ? RING_ALONE : benchmark.equals(COPY) ? COPY_LIMIT : null;
    }

    private static Score score(Scores scores, String series, int payloadBytes) {
        return scores.get(series, payloadBytes);
    }

    /** Below 1, three significant digits, so a ratio far below it (shm against the copy limit) still shows. */
    private static String ratio(Score numerator, Score denominator) {
        if (numerator == null || denominator == null) {
            return "–";
        }
        double ratio = numerator.recordsPerSecond / denominator.recordsPerSecond;
        return ratio >= 1 ? String.format(Locale.ROOT, "%.2f", ratio)
                : new BigDecimal(ratio).round(new MathContext(3)).toPlainString();
    }

    /** One row of a Markdown table. */
    static String row(List<String> cells) {
        return "| " + String.join(" | ", cells) + " |\n";
    }

    private static String cpuModel() throws IOException {
        Path cpuinfo = Path.of("/proc/cpuinfo");
        if (!Files.isReadable(cpuinfo)) {
            return "CPU model unknown";
        }
        try (Stream<String> lines = Files.lines(cpuinfo)) {
            return lines.filter(line -> line.startsWith("model name"))
                    .map(line -> line.substring(line.indexOf(':') + 1).trim())
                    .findFirst()
                    .orElse("CPU model unknown");
        }
    }
}
