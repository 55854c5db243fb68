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
import java.util.List;
import java.util.Locale;

/**
 * The report's chart: records per second on a log scale, one group of bars per payload size and one bar per
 * series (transport, ring alone, copy limit), drawn with Java2D so the benchmark needs no charting library.
 */
final class Chart {

    private static final int WIDTH = 1000;
    private static final int HEIGHT = 560;
    private static final int LEFT = 90;
    private static final int RIGHT = 190;
    private static final int TOP = 50;
    private static final int BOTTOM = 60;
    private static final Color[] COLORS = {new Color(0x1f77b4), new Color(0xff7f0e), new Color(0x7f7f7f),
            new Color(0x2ca02c), new Color(0xd62728)};

    private Chart() {}

    static void write(Path png, List<String> series, Report.Scores scores) throws IOException {
        BufferedImage image = new BufferedImage(WIDTH, HEIGHT, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = image.createGraphics();
        try {
            g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
            g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
            g.setColor(Color.WHITE);
            g.fillRect(0, 0, WIDTH, HEIGHT);
            draw(g, series, scores);
        } finally {
            g.dispose();
        }
        ImageIO.write(image, "png", png.toFile());
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
        for (int bar = 0; bar < series.size(); bar++) {
            int y = TOP + 20 + bar * 24;
            g.setColor(COLORS[bar % COLORS.length]);
            g.fillRect(WIDTH - RIGHT + 20, y - 12, 16, 16);
            g.setColor(Color.BLACK);
            g.drawString(series.get(bar), WIDTH - RIGHT + 44, y);
        }
    }
}
