package dev.sdrt.cli.bench;

import dev.sdrt.cli.bench.BenchResult.Cell;
import dev.sdrt.cli.bench.BenchResult.VariantResult;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.FontMetrics;
import java.awt.Graphics2D;
import java.awt.Rectangle;
import java.awt.RenderingHints;
import java.awt.geom.AffineTransform;
import java.awt.geom.Ellipse2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import javax.imageio.ImageIO;

/**
 * bench.png: speed-up against fidelity, one labelled point per variant, drawn with java.awt in
 * headless mode. x = mean speed-up vs the baseline over the size × batch cells; y = the lowest
 * latent cosine similarity vs the baseline over those cells (the worst case a user would see).
 */
public final class BenchChart {
    /** The chart's short name of each backend. */
    private static final Map<String, String> BACKEND_LABELS = Map.of("cpu", "ONNX Runtime CPU",
            "cpu-loop", "device loop on ONNX Runtime CPU", "tensorrt", "TensorRT");

    static final int WIDTH = 960;
    static final int HEIGHT = 640;
    private static final Color[] PALETTE = {
        new Color(0x1f77b4), new Color(0xd62728), new Color(0x2ca02c), new Color(0xff7f0e), new Color(0x9467bd),
        new Color(0x8c564b), new Color(0xe377c2), new Color(0x17becf), new Color(0xbcbd22), new Color(0x7f7f7f)};

    /** One plotted variant. */
    record Point(String label, double speedupPct, double cosine) {
    }

    private BenchChart() {
    }

    /** The points of the variants that ran with at least one comparable cell, and the names of the others. */
    static List<Point> points(BenchResult r, List<String> notPlotted) {
        List<Point> points = new ArrayList<>();
        String baseline = r.settings().baseline();
        for (VariantResult v : r.variants()) {
            String name = v.variant().name();
            double sum = 0;
            int n = 0;
            double worst = Double.POSITIVE_INFINITY;
            for (Cell c : v.cells()) {
                if (!c.ok() || c.speedupPct() == null) {
                    continue;
                }
                sum += c.speedupPct();
                n++;
                double cos = name.equals(baseline) ? 1.0 : c.fidelity() == null ? Double.NaN : c.fidelity().latentCosine();
                if (Double.isFinite(cos)) {
                    worst = Math.min(worst, cos);
                }
            }
            if (n == 0 || !Double.isFinite(worst)) {
                notPlotted.add(name + " (" + (v.ran() ? "no cell comparable with the baseline" : v.status()) + ")");
            } else {
                points.add(new Point(name, sum / n, worst));
            }
        }
        return points;
    }

    public static void write(BenchResult r, Path file) throws IOException {
        System.setProperty("java.awt.headless", "true");
        List<String> notPlotted = new ArrayList<>();
        List<Point> points = points(r, notPlotted);
        BufferedImage image = new BufferedImage(WIDTH, HEIGHT, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = image.createGraphics();
        try {
            draw(g, r, points, notPlotted);
        } finally {
            g.dispose();
        }
        Files.createDirectories(file.toAbsolutePath().getParent());
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        if (!ImageIO.write(image, "png", tmp.toFile())) {
            throw new IOException("no PNG writer in this Java runtime");
        }
        Files.move(tmp, file, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    }

    private static void draw(Graphics2D g, BenchResult r, List<Point> points, List<String> notPlotted) {
        g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
        g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, WIDTH, HEIGHT);
        int left = 100;
        int right = WIDTH - 40;
        int top = 70;
        int bottom = HEIGHT - 90;

        double xLo = 0;
        double xHi = 0;
        double yLo = 1;
        double yHi = 1;
        for (Point p : points) {
            xLo = Math.min(xLo, p.speedupPct());
            xHi = Math.max(xHi, p.speedupPct());
            yLo = Math.min(yLo, p.cosine());
            yHi = Math.max(yHi, p.cosine());
        }
        double[] xr = padded(xLo, xHi, 5);
        double[] yr = padded(yLo, yHi, 1e-4);
        Axis x = new Axis(xr[0], xr[1], left, right);
        Axis y = new Axis(yr[0], yr[1], bottom, top);

        g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 18));
        g.setColor(Color.BLACK);
        BenchSettings s = r.settings();
        g.drawString("sdrt bench: speed-up vs fidelity — " + s.source(), left, 30);
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
        g.drawString(String.format(Locale.ROOT, "%s, %d steps, sizes %s, batch %s; baseline %s. x: mean over cells, "
                + "y: lowest over cells", BACKEND_LABELS.getOrDefault(s.backend(), s.backend()), s.steps(), s.sizes(), s.batches(),
                s.baseline()), left, 50);

        // grid and ticks
        g.setStroke(new BasicStroke(1f));
        FontMetrics fm = g.getFontMetrics();
        for (double t : ticks(x.lo, x.hi)) {
            int px = x.map(t);
            g.setColor(new Color(0xe6e6e6));
            g.drawLine(px, top, px, bottom);
            g.setColor(Color.DARK_GRAY);
            String label = format(t, step(x.lo, x.hi)) + "%";
            g.drawString(label, px - fm.stringWidth(label) / 2, bottom + 18);
        }
        for (double t : ticks(y.lo, y.hi)) {
            int py = y.map(t);
            g.setColor(new Color(0xe6e6e6));
            g.drawLine(left, py, right, py);
            g.setColor(Color.DARK_GRAY);
            String label = format(t, step(y.lo, y.hi));
            g.drawString(label, left - 8 - fm.stringWidth(label), py + 4);
        }
        g.setColor(Color.GRAY);
        if (x.lo < 0 && x.hi > 0) {
            g.setStroke(new BasicStroke(1f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10f, new float[] {5f, 4f}, 0f));
            g.drawLine(x.map(0), top, x.map(0), bottom);
        }
        g.setStroke(new BasicStroke(1.5f));
        g.setColor(Color.BLACK);
        g.drawRect(left, top, right - left, bottom - top);
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 14));
        String xLabel = "speed-up vs baseline (%, seconds per image)";
        g.drawString(xLabel, (left + right - g.getFontMetrics().stringWidth(xLabel)) / 2, bottom + 42);
        String yLabel = "latent cosine similarity vs baseline";
        AffineTransform saved = g.getTransform();
        g.rotate(-Math.PI / 2);
        g.drawString(yLabel, -(top + bottom + g.getFontMetrics().stringWidth(yLabel)) / 2, 24);
        g.setTransform(saved);

        // points with labels that avoid each other
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 13));
        fm = g.getFontMetrics();
        List<Rectangle> taken = new ArrayList<>();
        int[][] at = new int[points.size()][];
        for (int i = 0; i < points.size(); i++) {
            Point p = points.get(i);
            at[i] = new int[] {x.map(p.speedupPct()), y.map(p.cosine())};
            taken.add(new Rectangle(at[i][0] - 7, at[i][1] - 7, 14, 14)); // labels keep off every marker
        }
        for (int i = 0; i < points.size(); i++) {
            int px = at[i][0];
            int py = at[i][1];
            g.setColor(PALETTE[i % PALETTE.length]);
            g.fill(new Ellipse2D.Double(px - 6, py - 6, 12, 12));
            g.setColor(Color.BLACK);
            g.draw(new Ellipse2D.Double(px - 6, py - 6, 12, 12));
        }
        Rectangle plot = new Rectangle(left + 2, top + 2, right - left - 4, bottom - top - 4);
        for (int i = 0; i < points.size(); i++) {
            Point p = points.get(i);
            String label = String.format(Locale.ROOT, "%s (%+.1f%%, %.6f)", p.label(), p.speedupPct(), p.cosine());
            Rectangle box = placeLabel(at[i][0], at[i][1], fm.stringWidth(label), fm.getHeight(), plot, taken);
            taken.add(box);
            g.setColor(PALETTE[i % PALETTE.length].darker());
            g.drawString(label, box.x, box.y + fm.getAscent());
        }
        if (!notPlotted.isEmpty()) {
            g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
            g.setColor(new Color(0x8b0000));
            String text = "not plotted: " + String.join(", ", notPlotted);
            while (g.getFontMetrics().stringWidth(text) > WIDTH - left - 20 && text.length() > 20) {
                text = text.substring(0, text.length() - 5) + "…";
            }
            g.drawString(text, left, HEIGHT - 18);
        }
    }

    /**
     * A free spot for a label of size w × h near the point (px, py): right, left, above or below it,
     * then further up or down; the plain right-hand spot when all are taken.
     */
    private static Rectangle placeLabel(int px, int py, int w, int h, Rectangle plot, List<Rectangle> taken) {
        int[][] offsets = {{10, -h / 2}, {-10 - w, -h / 2}, {-w / 2, -h - 8}, {-w / 2, 8}, {10, -h - 6}, {10, 6},
            {-10 - w, -h - 6}, {-10 - w, 6}};
        for (int shift = 0; shift < 8; shift++) {
            for (int[] o : offsets) {
                for (int sign : new int[] {1, -1}) {
                    Rectangle box = new Rectangle(px + o[0], py + o[1] + sign * shift * h, w, h);
                    if (plot.contains(box) && !intersects(box, taken)) {
                        return box;
                    }
                    if (shift == 0) {
                        break;
                    }
                }
            }
        }
        return new Rectangle(Math.min(px + 10, plot.x + plot.width - w), py - h / 2, w, h);
    }

    private static boolean intersects(Rectangle box, List<Rectangle> taken) {
        for (Rectangle t : taken) {
            if (t.intersects(box)) {
                return true;
            }
        }
        return false;
    }

    /** A range around [lo, hi] with 10 % margin, at least {@code minSpan} wide. */
    static double[] padded(double lo, double hi, double minSpan) {
        double span = hi - lo;
        if (span < minSpan) {
            double mid = (lo + hi) / 2;
            lo = mid - minSpan / 2;
            hi = mid + minSpan / 2;
            span = minSpan;
        }
        return new double[] {lo - 0.1 * span, hi + 0.1 * span};
    }

    /** A 1, 2 or 5 × 10^k step giving about six ticks. */
    static double step(double lo, double hi) {
        double raw = (hi - lo) / 6;
        double mag = Math.pow(10, Math.floor(Math.log10(raw)));
        double f = raw / mag;
        return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
    }

    static List<Double> ticks(double lo, double hi) {
        double step = step(lo, hi);
        List<Double> ticks = new ArrayList<>();
        for (double t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) {
            ticks.add(Math.abs(t) < step * 1e-9 ? 0.0 : t);
        }
        return ticks;
    }

    private static String format(double v, double step) {
        int decimals = Math.max(0, (int) -Math.floor(Math.log10(step) + 1e-9));
        return String.format(Locale.ROOT, "%." + decimals + "f", v);
    }

    /** Linear map from data to pixels. */
    private record Axis(double lo, double hi, int from, int to) {
        int map(double v) {
            return (int) Math.round(from + (v - lo) / (hi - lo) * (to - from));
        }
    }
}
