package ferrolens;

import ij.IJ;
import ij.ImagePlus;
import ij.WindowManager;
import ij.gui.Plot;
import ij.gui.Roi;
import ij.macro.Interpreter;
import ij.measure.Calibration;
import ij.plugin.MontageMaker;
import ij.plugin.frame.RoiManager;
import ij.process.ByteProcessor;
import ij.process.ImageProcessor;

import java.awt.Color;
import java.awt.GraphicsEnvironment;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Shared skeleton of the thin menu commands of the families 2..5 (decompose, latent, loops, 4D-STEM,
 * im2spec/spec2im, diffraction AE, walls): checks in Java, then dialog -> saveInput -> args -> execute ->
 * showResult/showCsv -> finish. Subclasses implement body(); errors go through fail() (one sentence).
 */
abstract class EngineCommand extends CliCommand {
    @Override
    public void run(String arg) {
        guarded(new Runnable() {
            @Override
            public void run() {
                try {
                    body();
                } finally {
                    finish();
                }
            }
        });
    }

    abstract void body();

    /** Dialog / macro options; headless calls without options are refused with an example. */
    Options options(String example) {
        Options o = new Options(commandName());
        if (o.headlessWithoutOptions()) throw fail("Headless use needs macro options, e.g. \"" + example + "\".");
        return o;
    }

    void check(Options o) {
        if (o.error() != null) throw fail(o.error());
    }

    // ---- inputs ----------------------------------------------------------------------------------

    /** The current image (title empty) or the image with that title; never RGB. */
    ImagePlus image(String title, String role) {
        ImagePlus imp;
        if (title == null || title.isEmpty()) {
            imp = WindowManager.getCurrentImage();
            if (imp == null) throw fail("No image is open: open the " + role + " first.");
        } else {
            imp = imageByTitle(title, role);
        }
        if (imp.getBitDepth() == 24)
            throw fail("'" + imp.getTitle() + "' (" + role + ") is an RGB image: convert it to 8, 16 or 32-bit first.");
        return imp;
    }

    /** The current image, which must hold a stack of at least minPlanes planes (Z, T or C). */
    ImagePlus currentStack(String role, int minPlanes) {
        ImagePlus imp = image("", role);
        requirePlanes(imp, role, minPlanes);
        return imp;
    }

    void requirePlanes(ImagePlus imp, String role, int minPlanes) {
        if (imp.getStackSize() < minPlanes)
            throw fail("'" + imp.getTitle() + "' has " + imp.getStackSize() + " plane" + (imp.getStackSize() == 1 ? "" : "s")
                    + ": the " + role + " must be a stack of at least " + minPlanes + " planes.");
    }

    void requireSinglePlane(ImagePlus imp, String role) {
        if (imp.getStackSize() != 1)
            throw fail("'" + imp.getTitle() + "' (" + role + ") must be a single image, not a stack of " + imp.getStackSize() + ".");
    }

    void requireSameSize(ImagePlus a, ImagePlus b, String roleB) {
        if (a.getWidth() != b.getWidth() || a.getHeight() != b.getHeight())
            throw fail("'" + b.getTitle() + "' (" + roleB + ") is " + b.getWidth() + " x " + b.getHeight() + " but '" + a.getTitle()
                    + "' is " + a.getWidth() + " x " + a.getHeight() + ": the sizes must match.");
    }

    /** An existing file (model, data) or fail. */
    String existingFile(String path, String role) {
        if (path == null || path.isEmpty()) throw fail("No " + role + " given.");
        if (!new File(path).isFile()) throw fail(role.substring(0, 1).toUpperCase(Locale.ROOT) + role.substring(1) + " not found: " + path);
        return path;
    }

    int threadsArg(int t) {
        if (t < 0) throw fail("Threads must be >= 0 (0 = ImageJ's setting).");
        return threads(t);
    }

    /** Rectangle of a non-empty area ROI or null when there is none. */
    java.awt.Rectangle rectRoi(ImagePlus imp) {
        Roi r = imp.getRoi();
        if (r == null || !r.isArea()) return null;
        java.awt.Rectangle b = r.getBounds().intersection(new java.awt.Rectangle(0, 0, imp.getWidth(), imp.getHeight()));
        if (b.width <= 0 || b.height <= 0) throw fail("The selection on '" + imp.getTitle() + "' is empty or outside the image.");
        return b;
    }

    /** Writes a 0/255 8-bit mask of roi (size w x h) to the scratch folder; fails when it is empty. */
    String writeMask(Roi roi, int w, int h, String name, String role) {
        ByteProcessor bp = new ByteProcessor(w, h);
        bp.setColor(255);
        if (roi.isArea()) bp.fill(roi);
        else if (roi.isLine()) bp.fill(ij.plugin.Selection.lineToArea(roi));
        else {
            java.awt.Polygon p = roi.getPolygon();
            for (int i = 0; i < p.npoints; i++) if (p.xpoints[i] >= 0 && p.ypoints[i] >= 0 && p.xpoints[i] < w && p.ypoints[i] < h) bp.set(p.xpoints[i], p.ypoints[i], 255);
        }
        return writeMask(bp, name, role);
    }

    String writeMask(ImageProcessor mask, String name, String role) {
        int n = 0;
        for (int i = 0; i < mask.getPixelCount(); i++) if (mask.getf(i) != 0f) n++;
        if (n == 0) throw fail("The " + role + " is empty (no selected pixel).");
        File f = new File(scratch, name + ".tif");
        if (!new ij.io.FileSaver(new ImagePlus(name, mask)).saveAsTiff(f.getPath()))
            throw fail("Cannot write a temporary mask " + f.getPath() + ".");
        return f.getPath();
    }

    static RoiManager roiManager(boolean create) {
        RoiManager rm = RoiManager.getInstance();
        if (rm == null && Interpreter.isBatchMode()) rm = Interpreter.getBatchModeRoiManager();
        if (rm == null && create) rm = RoiManager.getRoiManager();
        return rm;
    }

    // ---- outputs ---------------------------------------------------------------------------------

    /** Reads out/&lt;file&gt; (CSV with a header line, all numeric) or null when absent. */
    List<String[]> readCsv(String file) {
        File f = new File(out(), file);
        if (!f.isFile()) return null;
        try {
            List<String[]> rows = new ArrayList<String[]>();
            for (String line : Files.readAllLines(f.toPath(), java.nio.charset.StandardCharsets.UTF_8))
                if (!line.trim().isEmpty()) rows.add(line.split(",", -1));
            return rows;
        } catch (IOException e) {
            throw fail("Cannot read " + f.getPath() + ": " + e.getMessage());
        }
    }

    static double num(String s) {
        try {
            return Double.parseDouble(s.trim());
        } catch (NumberFormatException e) {
            return Double.NaN;
        }
    }

    /**
     * CSV (first column x, then one curve per column) as a Plot "&lt;base&gt; &lt;what&gt;": a live plot window
     * interactively, an image in batch mode / headless. Returns the plot image (or null).
     */
    ImagePlus plotCsv(String file, String base, String what, String yLabel, int skipColumns) {
        List<String[]> rows = readCsv(file);
        if (rows == null || rows.size() < 2) return null;
        String[] head = rows.get(0);
        int n = rows.size() - 1;
        double[] x = new double[n];
        for (int i = 0; i < n; i++) x[i] = num(rows.get(i + 1)[0]);
        Plot plot = new Plot(base + " " + what, head[0], yLabel);
        StringBuilder legend = new StringBuilder();
        int curves = head.length - 1 - skipColumns;
        for (int c = 1 + skipColumns; c < head.length; c++) {
            double[] y = new double[n];
            for (int i = 0; i < n; i++) y[i] = c < rows.get(i + 1).length ? num(rows.get(i + 1)[c]) : Double.NaN;
            float f = curves > 1 ? (float) (c - 1 - skipColumns) / (curves - 1) : 0f;
            plot.setColor(Color.getHSBColor(0.67f * (1 - f), 0.9f, 0.85f));
            plot.addPoints(x, y, Plot.LINE);
            legend.append(head[c]).append('\n');
        }
        plot.setColor(Color.black);
        plot.addLegend(legend.toString(), "top-right");
        plot.setFrameSize(480, 320);
        plot.setLimitsToFit(false);
        if (!Interpreter.isBatchMode() && !GraphicsEnvironment.isHeadless()) {
            plot.show();
            return plot.getImagePlus();
        }
        ImagePlus pi = plot.getImagePlus();
        pi.setTitle(base + " " + what);
        show(pi);
        return pi;
    }

    /** A montage of a P x P x K stack (one tile per slice), titled "&lt;base&gt; &lt;what&gt;". */
    ImagePlus montage(ImagePlus stack, String base, String what) {
        if (stack == null) return null;
        int k = stack.getStackSize();
        int cols = (int) Math.ceil(Math.sqrt(k)), rows = (k + cols - 1) / cols;
        double scale = Math.max(1, Math.floor(128.0 / Math.max(stack.getWidth(), stack.getHeight())));
        ImagePlus m = new MontageMaker().makeMontage2(stack, cols, rows, scale, 1, k, 1, 1, false);
        if (m == null) return null;
        m.setTitle(base + " " + what);
        show(m);
        return m;
    }

    /** Opens an output with a label LUT: glasbey (Fiji) when installed, else ImageJ's "3-3-2 RGB". */
    ImagePlus showLabels(String file, String base, String what, Calibration cal) {
        String lut = lut("glasbey") != null ? "glasbey" : lut("glasbey_on_dark") != null ? "glasbey_on_dark" : "3-3-2 RGB";
        ImagePlus r = showResult(file, base, what, cal, lut);
        if (r != null) {
            r.setDisplayRange(0, 255);
            r.updateAndDraw();
        }
        return r;
    }

    /** Closes a window opened by showResult (e.g. a helper image only used for a montage). */
    static void closeQuietly(ImagePlus imp) {
        if (imp == null) return;
        imp.changes = false;
        if (Interpreter.isBatchMode()) Interpreter.removeBatchModeImage(imp);
        imp.close();
    }

    void logDone(String what) {
        IJ.showStatus(what + ": done");
    }
}
