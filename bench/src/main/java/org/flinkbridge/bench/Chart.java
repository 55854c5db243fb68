package org.flinkbridge.bench;

import javax.imageio.ImageIO;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Consumer;

/**
 * The benchmarks' charts, drawn with Java2D so the benchmark needs no charting library: the report's records per
 * second on a log scale, one group of bars per payload size and one bar per series (transport, ring alone, copy
 * limit); and panels of lines, one line per series of (x, y) points, such as the state benchmark's checkpoint
 * duration and upload against total state.
 */
final class Chart {

    private static final int WIDTH = 1000;
    private static final int HEIGHT = 560;
    private static final int LEFT = 90;
    private static final int RIGHT = 190;
    private static final int TOP = 50;
    private static final int BOTTOM = 60;
    private static final int PANEL_WIDTH = 520;
    private static final int PANEL_LEGEND_WIDTH = 340;
    private static final Color[] COLORS = {new Color(0x1f77b4), new Color(0xff7f0e), new Color(0x7f7f7f),
            new Color(0x2ca02c), new Color(0xd62728), new Color(0x9467bd), new Color(0x8c564b), new Color(0xe377c2),
            new Color(0x17becf)};

    private Chart() {}

    static void write(Path png, List<String> series, Report.Scores scores) throws IOException {
        write(png, WIDTH, g -> draw(g, series, scores));
    }

    /** One panel of lines: a title, the axes' names, and each series' points (x, y), drawn in order of x. */
    record Panel(String title, String xLabel, String yLabel, Map<String, List<double[]>> series) {}

    /** The panels side by side, each with linear axes from 0, the series in the same colours in each. */
    static void writePanels(Path png, List<Panel> panels) throws IOException {
        write(png, PANEL_WIDTH * panels.size() + PANEL_LEGEND_WIDTH, g -> {
            for (int i = 0; i < panels.size(); i++) {
                drawPanel(g, i * PANEL_WIDTH, panels.get(i));
            }
            List<String> names = panels.stream().flatMap(panel -> panel.series().keySet().stream()).distinct()
                    .toList();
            drawLegend(g, PANEL_WIDTH * panels.size() + 10, names);
        });
    }

    private static void write(Path png, int width, Consumer<Graphics2D> painter) throws IOException {
        BufferedImage image = new BufferedImage(width, HEIGHT, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = image.createGraphics();
        try {
            g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
            g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
            g.setColor(Color.WHITE);
            g.fillRect(0, 0, width, HEIGHT);
            painter.accept(g);
        } finally {
            g.dispose();
        }
        ImageIO.write(image, "png", png.toFile());
    }

    private static void drawPanel(Graphics2D g, int left, Panel panel) {
        int plotLeft = left + LEFT;
        int plotWidth = PANEL_WIDTH - LEFT - 30;
        int plotHeight = HEIGHT - TOP - BOTTOM;
        double maxX = panel.series().values().stream().flatMap(List::stream).mapToDouble(point -> point[0]).max()
                .orElse(1);
        double maxY = panel.series().values().stream().flatMap(List::stream).mapToDouble(point -> point[1]).max()
                .orElse(1);
        maxX = maxX > 0 ? maxX * 1.05 : 1;
        maxY = maxY > 0 ? maxY * 1.1 : 1;
        g.setColor(Color.BLACK);
        g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 14));
        g.drawString(panel.title(), plotLeft, 28);
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
        for (int tick = 0; tick <= 4; tick++) {
            int y = TOP + plotHeight - tick * plotHeight / 4;
            int x = plotLeft + tick * plotWidth / 4;
            g.setColor(new Color(0xdddddd));
            g.drawLine(plotLeft, y, plotLeft + plotWidth, y);
            g.setColor(Color.BLACK);
            g.drawString(String.format(Locale.ROOT, "%.4g", maxY * tick / 4), plotLeft - 70, y + 4);
            g.drawString(String.format(Locale.ROOT, "%.4g", maxX * tick / 4), x - 15, TOP + plotHeight + 18);
        }
        g.drawLine(plotLeft, TOP, plotLeft, TOP + plotHeight);
        g.drawLine(plotLeft, TOP + plotHeight, plotLeft + plotWidth, TOP + plotHeight);
        g.drawString(panel.xLabel(), plotLeft + plotWidth / 2 - 60, HEIGHT - 15);
        g.drawString(panel.yLabel(), plotLeft, TOP - 6);
        int colour = 0;
        g.setStroke(new BasicStroke(2));
        for (List<double[]> points : panel.series().values()) {
            g.setColor(COLORS[colour++ % COLORS.length]);
            List<double[]> sorted = points.stream().sorted(Comparator.comparingDouble(point -> point[0])).toList();
            int[] previous = null;
            for (double[] point : sorted) {
                int[] at = {plotLeft + (int) (point[0] / maxX * plotWidth),
                        TOP + plotHeight - (int) (point[1] / maxY * plotHeight)};
                g.fillOval(at[0] - 4, at[1] - 4, 8, 8);
                if (previous != null) {
                    g.drawLine(previous[0], previous[1], at[0], at[1]);
                }
                previous = at;
            }
        }
        g.setStroke(new BasicStroke(1));
    }

    private static void drawLegend(Graphics2D g, int left, List<String> names) {
        for (int i = 0; i < names.size(); i++) {
            int y = TOP + 20 + i * 24;
            g.setColor(COLORS[i % COLORS.length]);
            g.fillRect(left + 10, y - 12, 16, 16);
            g.setColor(Color.BLACK);
            g.drawString(names.get(i), left + 34, y);
        }
    }

    private static void draw(Graphics2D g, List<String> series, Report.Scores scores) {
        int plotWidth = WIDTH - LEFT - RIGHT;
        int plotHeight = HEIGHT - TOP - BOTTOM;
        double max = scores.bySeries().values().stream().flatMap(bySize -> bySize.values().stream())
                .mapToDouble(Report.Score::recordsPerSecond).max().orElse(10);
        int topDecade = (int) Math.ceil(Math.log10(Math.max(max, 10)));
        int bottomDecade = Math.max(0, topDecade - 7);

        g.setColor(Color.BLACK);
        g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 16));
        g.drawString("Round trip bridge -> worker process -> bridge: records/s (log scale)", LEFT, 28);
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
        for (int decade = bottomDecade; decade <= topDecade; decade++) {
            int y = TOP + plotHeight - (int) ((decade - bottomDecade) / (double) (topDecade - bottomDecade) * plotHeight);
            g.setColor(new Color(0xdddddd));
            g.drawLine(LEFT, y, LEFT + plotWidth, y);
            g.setColor(Color.BLACK);
            g.drawString(String.format(Locale.ROOT, "1e%d", decade), LEFT - 40, y + 4);
        }
        g.setStroke(new BasicStroke(1));
        g.drawLine(LEFT, TOP, LEFT, TOP + plotHeight);
        g.drawLine(LEFT, TOP + plotHeight, LEFT + plotWidth, TOP + plotHeight);

        List<Integer> sizes = List.copyOf(scores.payloadSizes());
        int groupWidth = plotWidth / Math.max(1, sizes.size());
        int barWidth = (groupWidth - 30) / Math.max(1, series.size());
        for (int group = 0; group < sizes.size(); group++) {
            int groupLeft = LEFT + group * groupWidth + 15;
            for (int bar = 0; bar < series.size(); bar++) {
                Report.Score score = scores.get(series.get(bar), sizes.get(group));
                if (score == null || score.recordsPerSecond() <= 0) {
                    continue;
                }
                double decades = Math.log10(score.recordsPerSecond()) - bottomDecade;
                int height = (int) Math.max(1, decades / (topDecade - bottomDecade) * plotHeight);
                g.setColor(COLORS[bar % COLORS.length]);
                g.fillRect(groupLeft + bar * barWidth, TOP + plotHeight - height, barWidth - 4, height);
            }
            g.setColor(Color.BLACK);
            g.drawString(sizes.get(group) + " B", groupLeft + groupWidth / 2 - 30, TOP + plotHeight + 20);
        }
        g.drawString("payload size", LEFT + plotWidth / 2 - 30, HEIGHT - 15);
        drawLegend(g, WIDTH - RIGHT + 10, series);
    }
}
