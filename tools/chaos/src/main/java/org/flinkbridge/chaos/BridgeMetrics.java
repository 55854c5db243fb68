package org.flinkbridge.chaos;

import java.io.IOException;
import java.math.BigDecimal;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The bridge's metrics as the TaskManagers' Prometheus reporters serve them on 127.0.0.1 (the first free ports of
 * 9249-9259): each bridge metric of each subtask, a histogram's quantiles as {@code NAME p50} and {@code NAME p99}.
 */
final class BridgeMetrics {

    private static final String PREFIX = "flink_taskmanager_job_task_operator_";
    private static final Pattern SAMPLE = Pattern.compile(
            "^" + PREFIX + "(bridge\\w+)\\{(.*)} (\\S+)$");
    private static final Pattern SUBTASK = Pattern.compile("subtask_index=\"(\\d+)\"");
    private static final Pattern QUANTILE = Pattern.compile("quantile=\"([0-9.]+)\"");

    private BridgeMetrics() {}

    /** Metric (with its quantile, if any) to subtask index to value, from every reporter that answers. */
    static Map<String, Map<Integer, Double>> scrape() {
        HttpClient http = HttpClient.newHttpClient();
        Map<String, Map<Integer, Double>> metrics = new TreeMap<>();
        for (int port = 9249; port <= 9259; port++) {
            String body;
            try {
                body = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/metrics"))
                        .timeout(Duration.ofSeconds(5)).build(), HttpResponse.BodyHandlers.ofString()).body();
            } catch (IOException | InterruptedException nothingThere) {
                continue;
            }
            body.lines().forEach(line -> add(metrics, line));
        }
        return metrics;
    }

    private static void add(Map<String, Map<Integer, Double>> metrics, String line) {
        Matcher sample = SAMPLE.matcher(line);
        if (!sample.matches()) {
            return;
        }
        Matcher subtask = SUBTASK.matcher(sample.group(2));
        if (!subtask.find()) {
            return;
        }
        Matcher quantile = QUANTILE.matcher(sample.group(2));
        String name = sample.group(1) + (quantile.find() ? " p" + quantileName(quantile.group(1)) : "");
        metrics.computeIfAbsent(name, n -> new TreeMap<>())
                .put(Integer.parseInt(subtask.group(1)), Double.parseDouble(sample.group(3)));
    }

    /** 0.5 as 50, 0.99 as 99, 0.999 as 99.9. */
    private static String quantileName(String quantile) {
        return new BigDecimal(quantile).movePointRight(2).stripTrailingZeros().toPlainString();
    }
}
