package org.flinkbridge.chaos;

import javax.imageio.ImageIO;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.ToDoubleFunction;

/**
 * The sandbox load test's report: report.md (the summary line, the faults with their moments and outcomes, and
 * throughput and latency per bucket) and timeline.png, throughput above and latency below over the run's time,
 * each fault a numbered vertical line. Drawn with Java2D, so nothing else is needed.
 */
final class LoadReport {

    private static final int WIDTH = 1100;
    private static final int PANEL_HEIGHT = 260;
    private static final int LEFT = 90;
    private static final int RIGHT = 40;
    private static final int TOP = 50;
    private static final int GAP = 60;
    private static final Color FAULT = new Color(0xd62728);
    private static final Color[] SERIES = {new Color(0x1f77b4), new Color(0xff7f0e)};

    private LoadReport() {}

    /** Writes the report into {@code dir} (created) and returns the Markdown file. */
    static Path write(Path dir, String summary, SandboxOptions options, long bucketSeconds,
                      List<Timeline.Bucket> buckets, List<SandboxLoad.Fault> faults, List<Cluster.Failure> failures,
                      Set<Cluster.Failure> retries, long startMillis, Map<String, Map<Integer, Double>> metrics) throws IOException {
        Files.createDirectories(dir);
        chart(dir.resolve("timeline.png"), options, bucketSeconds, buckets, faults);
        StringBuilder md = new StringBuilder();
        md.append("# Sandbox load test: ").append(options.transport()).append(", ").append(options.worker())
                .append(" worker\n\n`./flink-bridge sandbox load --minutes ").append(options.minutes())
                .append(" --rate ").append(options.recordsPerSecond()).append(" --transport ")
                .append(options.transport()).append(" --worker ").append(options.worker()).append("`\n\n```\n")
                .append(summary).append("\n```\n\n![throughput and latency over time](timeline.png)\n\n")
                .append("## Faults\n\n| # | at (s) | fault | outcome |\n| --- | --- | --- | --- |\n");
        for (int i = 0; i < faults.size(); i++) {
            SandboxLoad.Fault fault = faults.get(i);
            md.append("| ").append(i + 1).append(" | ").append(fault.atSecond()).append(" | ").append(fault.what())
                    .append(" | ").append(fault.outcome().replace("|", "/").replace("\n", " ")).append(" |\n");
        }
        md.append("\n## The job's failures\n\nFlink's exception history, oldest first, each with the fault before it."
                + " A failure naming a TaskManager an earlier one named (its loss, seen again by the resource manager),"
                + " and a restart attempt that could not deploy the job while a killed TaskManager was away (no slot,"
                + " or the dead TaskManager unreachable), repeat or retry the failover its loss began and are not"
                + " counted in `job_restarts`.\n\n| at (s) | after fault | counted | message |\n| --- | --- | --- | --- |\n");
        for (Cluster.Failure failure : failures.reversed()) {
            long at = (failure.timestampMillis() - startMillis) / 1000;
            int fault = 0;
            for (int i = 0; i < faults.size(); i++) {
                if (faults.get(i).atSecond() <= at) {
                    fault = i + 1;
                }
            }
            md.append("| ").append(at).append(" | ").append(fault == 0 ? "none" : "#" + fault).append(" | ")
                    .append(retries.contains(failure) ? "no (a retry)" : "yes").append(" | ")
                    .append(failure.message().replace("|", "/")).append(" |\n");
        }
        md.append("\n## The bridge's metrics at the end of the input\n\nFrom the TaskManagers' Prometheus reporters,"
                + " per subtask (one session each); counters start again with a task that restarted.\n\n"
                + "| metric | subtask 0 | subtask 1 |\n| --- | --- | --- |\n");
        metrics.forEach((name, bySubtask) -> md.append("| ").append(name).append(" | ")
                .append(String.format("%,.0f", bySubtask.getOrDefault(0, Double.NaN))).append(" | ")
                .append(String.format("%,.0f", bySubtask.getOrDefault(1, Double.NaN))).append(" |\n"));
        md.append("\n## Committed output over time\n\nRecords read back with read_committed per second, and how"
                        + " late (read time minus the input's Kafka timestamp), per bucket of ")
                .append(bucketSeconds)
                .append(" s.\n\n| from (s) | records/s | latency p50 (ms) | latency p99 (ms) |\n| --- | --- | --- | --- |\n");
        for (Timeline.Bucket bucket : buckets) {
            md.append("| ").append(bucket.startSecond()).append(" | ").append(Math.round(bucket.recordsPerSecond()))
                    .append(" | ").append(bucket.latencyP50Millis()).append(" | ").append(bucket.latencyP99Millis())
                    .append(" |\n");
        }
        Path report = dir.resolve("report.md");
        Files.writeString(report, md);
        return report;
    }

    private static void chart(Path png, SandboxOptions options, long bucketSeconds, List<Timeline.Bucket> buckets,
                              List<SandboxLoad.Fault> faults) throws IOException {
        int height = TOP + 2 * PANEL_HEIGHT + GAP + 50;
        BufferedImage image = new BufferedImage(WIDTH, height, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = image.createGraphics();
        try {
            g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
            g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
            g.setColor(Color.WHITE);
            g.fillRect(0, 0, WIDTH, height);
            g.setColor(Color.BLACK);
            g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 16));
            g.drawString("Sandbox load: " + options.transport() + ", " + options.worker() + " worker, input "
                    + options.recordsPerSecond() + " records/s; red lines: faults (numbered as in the report)", LEFT, 28);
            double seconds = Math.max(1, buckets.isEmpty() ? 1 : buckets.getLast().startSecond() + bucketSeconds);
            panel(g, TOP, "committed records/s", seconds, buckets, faults,
                    List.of(Timeline.Bucket::recordsPerSecond), List.of("records/s"));
            panel(g, TOP + PANEL_HEIGHT + GAP, "latency (ms)", seconds, buckets, faults,
                    List.of(b -> b.latencyP50Millis(), b -> b.latencyP99Millis()), List.of("p50", "p99"));
            g.setColor(Color.BLACK);
            g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
            g.drawString("seconds since the input began", WIDTH / 2 - 80, height - 12);
        } finally {
            g.dispose();
        }
        ImageIO.write(image, "png", png.toFile());
    }

    private static void panel(Graphics2D g, int top, String title, double seconds, List<Timeline.Bucket> buckets,
                              List<SandboxLoad.Fault> faults, List<ToDoubleFunction<Timeline.Bucket>> series,
                              List<String> names) {
        int width = WIDTH - LEFT - RIGHT;
        double max = 1;
        for (ToDoubleFunction<Timeline.Bucket> value : series) {
            max = Math.max(max, buckets.stream().mapToDouble(value).max().orElse(1));
        }
        max *= 1.1;
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
        g.setColor(new Color(0xdddddd));
        for (int tick = 0; tick <= 4; tick++) {
            int y = top + PANEL_HEIGHT - tick * PANEL_HEIGHT / 4;
            g.drawLine(LEFT, y, LEFT + width, y);
            g.setColor(Color.DARK_GRAY);
            g.drawString(String.format("%,.0f", max * tick / 4), 8, y + 4);
            g.setColor(new Color(0xdddddd));
        }
        g.setColor(Color.BLACK);
        g.drawRect(LEFT, top, width, PANEL_HEIGHT);
        g.drawString(title, LEFT + 4, top - 6);
        for (int tick = 0; tick <= 10; tick++) {
            int x = LEFT + tick * width / 10;
            g.drawString(String.format("%.0f", seconds * tick / 10), x - 8, top + PANEL_HEIGHT + 16);
        }
        for (int s = 0; s < series.size(); s++) {
            g.setColor(SERIES[s]);
            g.setStroke(new BasicStroke(2));
            int lastX = -1;
            int lastY = -1;
            for (Timeline.Bucket bucket : buckets) {
                int x = LEFT + (int) (bucket.startSecond() / seconds * width);
                int y = top + PANEL_HEIGHT - (int) (series.get(s).applyAsDouble(bucket) / max * PANEL_HEIGHT);
                if (lastX >= 0) {
                    g.drawLine(lastX, lastY, x, y);
                }
                lastX = x;
                lastY = y;
            }
            g.drawString(names.get(s), LEFT + width - 60, top + 16 + 16 * s);
        }
        g.setStroke(new BasicStroke(1));
        g.setColor(FAULT);
        for (int i = 0; i < faults.size(); i++) {
            int x = LEFT + (int) (faults.get(i).atSecond() / seconds * width);
            g.drawLine(x, top, x, top + PANEL_HEIGHT);
            g.drawString(Integer.toString(i + 1), x + 2, top + 12);
        }
    }
}
