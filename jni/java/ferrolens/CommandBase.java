package ferrolens;

import ij.IJ;
import ij.ImagePlus;
import ij.ImageStack;
import ij.Macro;
import ij.Prefs;
import ij.WindowManager;
import ij.gui.Plot;
import ij.macro.Interpreter;
import ij.measure.Calibration;
import ij.measure.ResultsTable;
import ij.plugin.LutLoader;
import ij.plugin.PlugIn;
import ij.process.FloatProcessor;
import ij.process.ImageProcessor;
import ij.process.LUT;

import java.awt.Color;
import java.awt.GraphicsEnvironment;
import java.awt.image.IndexColorModel;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Shared helpers of the Ferrolens commands: errors, input validation, pixel copy, output windows. */
abstract class CommandBase implements PlugIn {
    /** Minimum number of points on the spectral axis. */
    static final int MIN_POINTS = 8;
    /** Largest thread count a dialog accepts (the engine's --threads range). */
    static final int MAX_THREADS = 256;
    /** Upper limits of the count fields where the engine has none of its own (EM / NMF iterations). */
    static final int MAX_ITERATIONS = 100000;

    /** Refuses an integer field outside lo..hi with one sentence naming the field. */
    void requireRange(String field, int v, int lo, int hi) {
        if (v < lo || v > hi) throw fail(field + " must be " + lo + ".." + hi + ", not " + v + ".");
    }

    /** Refuses a thread count outside 0..MAX_THREADS (0 = ImageJ's setting). */
    void requireThreads(int t) {
        if (t < 0 || t > MAX_THREADS) throw fail("Threads must be 0.." + MAX_THREADS + " (0 = ImageJ's setting), not " + t + ".");
    }

    /** Thrown by the helpers after fail() reported the problem; run() just returns. */
    static final class Abort extends RuntimeException {
        private static final long serialVersionUID = 1L;
        Abort(String m) { super(m); }
    }

    /** Last failure message, for callWithOptions (true-headless use). */
    private static final ThreadLocal<String> lastError = new ThreadLocal<String>();
    /** Set while callWithOptions runs: errors are returned to the caller, the calling macro is not aborted. */
    private static final ThreadLocal<Boolean> inCall = new ThreadLocal<Boolean>();

    abstract String commandName();

    /**
     * Reports an error and stops. In a batch macro (-batch, no ImageJ window) or headless: one line
     * "Ferrolens ERROR: ..." in the Log (stdout) and the macro is aborted quietly (no dialog). Interactive:
     * IJ.error with the same sentence.
     */
    Abort fail(String msg) {
        lastError.set(msg);
        if (GraphicsEnvironment.isHeadless() || (IJ.getInstance() == null && Interpreter.isBatchMode())) {
            IJ.log("Ferrolens ERROR: " + commandName() + ": " + msg);
            if (Interpreter.getInstance() != null && inCall.get() == null) Interpreter.abort();
        } else {
            IJ.log("Ferrolens ERROR: " + commandName() + ": " + msg);
            IJ.error("Ferrolens " + commandName(), msg);
            // a macro that called the command stops here (it would otherwise go on without the outputs)
            if (Interpreter.getInstance() != null && inCall.get() == null) Interpreter.abort();
        }
        return new Abort(msg);
    }

    /** Runs body; Abort (already reported) ends quietly; anything unexpected becomes a fail(). */
    final void guarded(Runnable body) {
        lastError.remove();
        try {
            body.run();
        } catch (Abort a) {
            // reported
        } catch (UnsatisfiedLinkError e) {
            fail(e.getMessage());
        } catch (OutOfMemoryError e) {
            fail("Out of memory: " + e.getMessage() + ". Use a smaller image or increase ImageJ's memory (Edit>Options>Memory).");
        } catch (RuntimeException e) {
            fail(e.getClass().getSimpleName() + ": " + e.getMessage());
        }
    }

    /** Engine exception -> user sentence. */
    Abort failEngine(String doing, Exception e) {
        if (e instanceof FerrolensException) {
            FerrolensException fe = (FerrolensException) e;
            return fail(doing + " failed (" + fe.getStatusName() + "): " + fe.getMessage());
        }
        return fail(doing + " failed: " + e.getMessage());
    }

    /**
     * Refuses, with the numbers, when the Java heap cannot take `bytes` more (result windows are Java
     * images; the engine's own memory is native and checked by the engine). The test hook
     * -Dferrolens.fakeFreeMemory=BYTES pretends that only BYTES are free.
     */
    void requireHeap(long bytes, String what) {
        long free = IJ.maxMemory() - IJ.currentMemory();
        String fake = System.getProperty("ferrolens.fakeFreeMemory");
        if (fake != null) {
            try {
                free = Long.parseLong(fake.trim());
            } catch (NumberFormatException e) {
                // ignore a malformed hook
            }
        }
        if (bytes > free)
            throw fail(String.format(Locale.ROOT, "%s needs about %.0f MB of Java memory, but ImageJ has only %.0f MB free. "
                    + "Close some images or raise the limit in Edit>Options>Memory & Threads.", what, bytes / 1048576.0,
                    free / 1048576.0));
    }

    static int threads(int requested) {
        return requested > 0 ? requested : Math.max(1, Prefs.getThreads());
    }

    /**
     * true-headless entry: {@code call("ferrolens.Spectral_AE_Train.callWithOptions", "latent=4 epochs=3")}.
     * Names the thread "Run$_..." and sets the macro options, as IJ.run does; returns "ok" or the error.
     */
    static String callWithOptions(PlugIn plugin, String options) {
        Thread t = Thread.currentThread();
        String old = t.getName();
        try {
            if (!old.startsWith("Run$_")) t.setName("Run$_" + old);
            Macro.setOptions(t, options == null ? "" : options);
            lastError.remove();
            inCall.set(Boolean.TRUE);
            plugin.run("");
            String err = lastError.get();
            return err == null ? "ok" : "ERROR: " + err;
        } finally {
            Macro.setOptions(t, null);
            inCall.remove();
            t.setName(old);
        }
    }

    // ---- input -------------------------------------------------------------------------------------

    /** The current image; never modified or closed by any command. */
    ImagePlus requireImage() {
        ImagePlus imp = WindowManager.getCurrentImage();
        if (imp == null) throw fail("No image is open. Open a spectroscopy grid (X x Y with the spectrum on Z or T) first.");
        if (imp.getBitDepth() == 24)
            throw fail("'" + imp.getTitle() + "' is an RGB image. Convert it to 32-bit (Image>Type>32-bit) first: "
                    + "the spectral autoencoder needs one number per point.");
        if (imp.getNSlices() <= 1 && imp.getNFrames() <= 1)
            throw fail("'" + imp.getTitle() + "' has a single plane: the spectral autoencoder needs a stack with one curve per pixel "
                    + "(spectral axis on Z or T, at least " + MIN_POINTS + " points).");
        return imp;
    }

    /** "Z" or "T" when only one is non-singleton, else null (ask). */
    static String autoAxis(ImagePlus imp) {
        boolean z = imp.getNSlices() > 1, t = imp.getNFrames() > 1;
        if (z && !t) return "Z";
        if (t && !z) return "T";
        return null;
    }

    /** Grid of curves copied from the input image (the image itself is only read). */
    static final class Spectra {
        String title, axis;              // axis "Z" or "T"
        int width, height, steps, n;
        int channel, otherIndex;         // 1-based fixed channel and position on the other axis
        float[] curves;                  // n x steps, curve i = pixel x + width*y
        double[] axisValues;
        String axisUnit = "", axisLabel = "", axisSource = "index";
        String[] sliceLabels;            // labels of the spectral planes (may hold nulls)
        Calibration cal;
    }

    Spectra extract(ImagePlus imp, String axis) {
        Spectra s = new Spectra();
        s.title = imp.getTitle();
        s.axis = axis;
        s.width = imp.getWidth();
        s.height = imp.getHeight();
        s.steps = axis.equals("Z") ? imp.getNSlices() : imp.getNFrames();
        s.channel = imp.getC();
        s.otherIndex = axis.equals("Z") ? imp.getT() : imp.getZ();
        s.cal = imp.getCalibration();
        if (s.steps < MIN_POINTS)
            throw fail("'" + s.title + "' has " + s.steps + " points along " + axis + "; at least " + MIN_POINTS
                    + " are needed for a curve.");
        long nn = (long) s.width * s.height;
        if (nn * s.steps > Integer.MAX_VALUE - 8)
            throw fail("The grid is too large: " + nn + " curves x " + s.steps + " points exceed one Java array. Crop it first.");
        s.n = (int) nn;
        s.curves = new float[s.n * s.steps];
        ImageStack st = imp.getStack();
        Calibration cal = imp.getCalibration();
        boolean calibrated = cal.calibrated() && imp.getBitDepth() != 32;
        s.sliceLabels = new String[s.steps];
        long bad = 0;
        for (int k = 0; k < s.steps; k++) {
            int z = axis.equals("Z") ? k + 1 : s.otherIndex, t = axis.equals("T") ? k + 1 : s.otherIndex;
            int idx = imp.getStackIndex(s.channel, z, t);
            ImageProcessor ip = st.getProcessor(idx);
            s.sliceLabels[k] = st.getSliceLabel(idx);
            for (int i = 0; i < s.n; i++) {
                float v = ip.getf(i);
                if (calibrated) v = (float) cal.getCValue(v);
                if (Float.isNaN(v) || Float.isInfinite(v)) bad++;
                s.curves[i * s.steps + k] = v;
            }
        }
        if (bad > 0)
            throw fail("'" + s.title + "' contains " + bad + " NaN or infinite value" + (bad == 1 ? "" : "s")
                    + ". Replace them first (e.g. Process>Math>Remove NaNs...).");
        axisValues(imp, s);
        return s;
    }

    private static final Pattern NUM_LABEL =
            Pattern.compile("^\\s*([-+]?(?:\\d+\\.?\\d*|\\.\\d+)(?:[eE][-+]?\\d+)?)\\s*([^\\s\\d][^\\n]*)?$");

    /** Axis values: numeric slice labels ("-2.5 V"), else the calibration, else the index. */
    static void axisValues(ImagePlus imp, Spectra s) {
        double[] v = new double[s.steps];
        String unit = null;
        boolean ok = true;
        for (int k = 0; k < s.steps && ok; k++) {
            String l = s.sliceLabels[k];
            if (l == null) { ok = false; break; }
            int nl = l.indexOf('\n');
            if (nl >= 0) l = l.substring(0, nl);
            Matcher m = NUM_LABEL.matcher(l);
            if (!m.matches()) { ok = false; break; }
            v[k] = Double.parseDouble(m.group(1));
            String u = m.group(2) == null ? "" : m.group(2).trim();
            if (unit == null) unit = u;
            else if (!unit.equals(u)) ok = false;
        }
        if (ok) {
            s.axisValues = v;
            s.axisUnit = unit == null ? "" : unit;
            s.axisLabel = unitLabel(s.axisUnit);
            s.axisSource = "slice labels";
            return;
        }
        Calibration c = imp.getCalibration();
        if (s.axis.equals("Z") && (c.pixelDepth != 1.0 || c.zOrigin != 0)) {
            for (int k = 0; k < s.steps; k++) v[k] = (k - c.zOrigin) * c.pixelDepth;
            s.axisUnit = c.getZUnit();
            s.axisLabel = "Z";
            s.axisSource = "calibration";
        } else if (s.axis.equals("T") && c.frameInterval > 0) {
            for (int k = 0; k < s.steps; k++) v[k] = k * c.frameInterval;
            s.axisUnit = c.getTimeUnit();
            s.axisLabel = "time";
            s.axisSource = "calibration";
        } else {
            for (int k = 0; k < s.steps; k++) v[k] = k;
            s.axisUnit = "";
            s.axisLabel = "index";
            s.axisSource = "index";
        }
        s.axisValues = v;
    }

    private static String unitLabel(String unit) {
        if (unit.equals("V") || unit.equals("mV")) return "bias";
        if (unit.equals("Hz") || unit.equals("kHz")) return "frequency";
        return "value";
    }

    static String axisTitle(Spectra s) {
        return s.axisUnit.isEmpty() ? s.axisLabel : s.axisLabel + " (" + s.axisUnit + ")";
    }

    // ---- outputs -----------------------------------------------------------------------------------

    static void spatialCalibration(ImagePlus out, Calibration in) {
        Calibration c = new Calibration();
        c.pixelWidth = in.pixelWidth;
        c.pixelHeight = in.pixelHeight;
        c.xOrigin = in.xOrigin;
        c.yOrigin = in.yOrigin;
        c.setXUnit(in.getXUnit());
        c.setYUnit(in.getYUnit());
        out.setCalibration(c);
    }

    /** Colour of curve i of n in a plot: blue (first) .. red (last). */
    static Color curveColor(int i, int n) {
        float f = n > 1 ? (float) i / (n - 1) : 0f;
        return Color.getHSBColor(0.67f * (1 - f), 0.9f, 0.85f);
    }

    static LUT lut(String name) {
        IndexColorModel cm = LutLoader.getLut(name);
        return cm == null ? null : new LUT(cm, 0, 255);
    }

    /** Embedding maps: one slice per latent channel; returns which channels are active (not all zero). */
    static ImagePlus embeddingImage(Spectra s, float[] emb, int latent, boolean[] activeOut) {
        ImageStack st = new ImageStack(s.width, s.height);
        double lo = Double.MAX_VALUE, hi = -Double.MAX_VALUE;
        for (int c = 0; c < latent; c++) {
            float[] p = new float[s.n];
            boolean active = false;
            for (int i = 0; i < s.n; i++) {
                float v = emb[i * latent + c];
                p[i] = v;
                if (v != 0f) active = true;
                lo = Math.min(lo, v);
                hi = Math.max(hi, v);
            }
            activeOut[c] = active;
            st.addSlice("latent " + c + (active ? "" : " (inactive)"), new FloatProcessor(s.width, s.height, p));
        }
        ImagePlus out = new ImagePlus(s.title + " embedding", st);
        spatialCalibration(out, s.cal);
        LUT l = lut("fire");
        if (l != null) out.setLut(l);
        if (hi > lo) out.setDisplayRange(lo, hi);
        out.setProperty("Info", "Ferrolens spectral autoencoder embedding of '" + s.title + "': " + latent
                + " latent channels (ReLU activations); inactive = zero at every pixel.");
        return out;
    }

    /** Reconstruction with the input's dims on the spectral axis, labels and calibration. */
    static ImagePlus reconstructionImage(Spectra s, float[] recon, ImagePlus input) {
        ImageStack st = new ImageStack(s.width, s.height);
        for (int k = 0; k < s.steps; k++) {
            float[] p = new float[s.n];
            for (int i = 0; i < s.n; i++) p[i] = recon[i * s.steps + k];
            String l = s.sliceLabels[k];
            st.addSlice(l != null ? l : "point " + k, new FloatProcessor(s.width, s.height, p));
        }
        ImagePlus out = new ImagePlus(s.title + " reconstruction", st);
        if (s.axis.equals("Z")) out.setDimensions(1, s.steps, 1);
        else out.setDimensions(1, 1, s.steps);
        if (s.axis.equals("T")) out.setOpenAsHyperStack(true);
        out.setCalibration(input.getCalibration().copy());
        if (input.getBitDepth() != 32) out.getCalibration().disableDensityCalibration();
        double lo = Double.MAX_VALUE, hi = -Double.MAX_VALUE;
        for (float v : s.curves) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
        if (hi > lo) out.setDisplayRange(lo, hi);
        return out;
    }

    /** Per-pixel MSE between input and reconstruction (input units squared). Returns the mean MSE in [0]. */
    static ImagePlus errorImage(Spectra s, float[] recon, double[] meanOut) {
        float[] p = new float[s.n];
        double sum = 0;
        for (int i = 0; i < s.n; i++) {
            double e = 0;
            int o = i * s.steps;
            for (int k = 0; k < s.steps; k++) {
                double d = (double) recon[o + k] - s.curves[o + k];
                e += d * d;
            }
            p[i] = (float) (e / s.steps);
            sum += p[i];
        }
        ImageStack st = new ImageStack(s.width, s.height);
        st.addSlice("reconstruction MSE", new FloatProcessor(s.width, s.height, p));
        ImagePlus out = new ImagePlus(s.title + " error", st);
        spatialCalibration(out, s.cal);
        LUT l = lut("fire");
        if (l != null) out.setLut(l);
        out.resetDisplayRange();
        meanOut[0] = sum / s.n;
        return out;
    }

    /**
     * Decoded curves of the latent traversal: one plot per active channel, curves coloured per level (live
     * Plot windows when interactive, else one image stack of the plots, returned), and a ResultsTable
     * with the axis values and channel_k_level_j columns.
     */
    static ImagePlus decodedCurves(Spectra s, SaeModel model, float[] emb, boolean[] active, int levels,
                                   boolean othersAtMean, int threads, ResultsTable rtOut) throws FerrolensException {
        int latent = active.length;
        ImageStack plots = null;
        rtOut.reset();
        rtOut.setPrecision(6);
        for (int k = 0; k < s.steps; k++) {
            rtOut.incrementCounter();
            rtOut.addValue("axis_value", s.axisValues[k]);
        }
        for (int c = 0; c < latent; c++) {
            if (!active[c]) continue;
            float[] vals = new float[levels];
            float[] curves = new float[levels * s.steps];
            model.traverse(emb, s.n, c, levels, othersAtMean, vals, curves, threads, null);
            Plot plot = new Plot(s.title + " decoded curves latent " + c, axisTitle(s), "response");
            double lo = Double.MAX_VALUE, hi = -Double.MAX_VALUE;
            for (float v : curves) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
            double x0 = Math.min(s.axisValues[0], s.axisValues[s.steps - 1]);
            double x1 = Math.max(s.axisValues[0], s.axisValues[s.steps - 1]);
            for (double v : s.axisValues) { x0 = Math.min(x0, v); x1 = Math.max(x1, v); }
            if (!(hi > lo)) { hi = lo + 1; }
            plot.setLimits(x0, x1 > x0 ? x1 : x0 + 1, lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo));
            StringBuilder legend = new StringBuilder();
            for (int j = 0; j < levels; j++) {
                float[] y = new float[s.steps];
                float[] x = new float[s.steps];
                for (int k = 0; k < s.steps; k++) {
                    y[k] = curves[j * s.steps + k];
                    x[k] = (float) s.axisValues[k];
                    rtOut.setValue("channel_" + c + "_level_" + j, k, y[k]);
                }
                plot.setColor(curveColor(j, levels));
                plot.addPoints(x, y, Plot.LINE);
                legend.append(String.format(Locale.ROOT, "%.3g", vals[j])).append('\n');
            }
            plot.setColor(Color.black);
            plot.addLegend(legend.toString(), "top-right");
            plot.setFrameSize(480, 320);
            if (!Interpreter.isBatchMode() && !GraphicsEnvironment.isHeadless()) {
                plot.show(); // interactive: live plot windows (rescalable, with List/Data buttons)
                IJ.log(String.format(Locale.ROOT, "  latent %d traversed over %s", c, join(vals)));
                continue;
            }
            ImagePlus pi = plot.getImagePlus();
            if (plots == null) plots = new ImageStack(pi.getWidth(), pi.getHeight());
            if (pi.getWidth() == plots.getWidth() && pi.getHeight() == plots.getHeight())
                plots.addSlice("latent " + c + String.format(Locale.ROOT, " (0..%.3g)", vals[levels - 1]), pi.getProcessor());
            IJ.log(String.format(Locale.ROOT, "  latent %d traversed over %s", c, join(vals)));
        }
        return plots == null ? null : new ImagePlus(s.title + " decoded curves", plots);
    }

    private static String join(float[] v) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < v.length; i++) sb.append(i > 0 ? ", " : "").append(String.format(Locale.ROOT, "%.4g", v[i]));
        return sb.toString();
    }

    /** Shows a result: a window normally; in headless or batch mode it becomes the current image. */
    static void show(ImagePlus out) {
        if (out == null) return;
        if (GraphicsEnvironment.isHeadless()) {
            WindowManager.setTempCurrentImage(out);
            Interpreter.addBatchModeImage(out);
        } else {
            out.show();
            // small grids (e.g. 32 x 32) open enlarged so the maps can be seen
            if (!Interpreter.isBatchMode() && out.getWindow() != null && Math.max(out.getWidth(), out.getHeight()) < 200) {
                double mag = Math.min(8, Math.floor(256.0 / Math.max(out.getWidth(), out.getHeight())));
                if (mag > 1) ij.plugin.Zoom.set(out, mag);
            }
        }
    }

    static void showTable(ResultsTable rt, String title) {
        if (GraphicsEnvironment.isHeadless()) return;
        rt.show(title);
    }

    /** IJ progress bar + status line; Esc cancels (training keeps the best model so far). */
    static ProgressListener ijProgress(final String what, final int epochs) {
        IJ.resetEscape();
        return new ProgressListener() {
            private long lastStatus;

            @Override
            public boolean progress(String stage, long done, long total, double loss, double val) {
                IJ.showProgress((double) done / Math.max(1, total));
                long now = System.currentTimeMillis();
                boolean epochEnd = stage.equals("epoch");
                if (epochEnd || now - lastStatus > 250) {
                    lastStatus = now;
                    if (epochs > 0 && (epochEnd || stage.equals("train"))) {
                        long e = epochEnd ? done : Math.min(epochs, (done - 1) * epochs / Math.max(1, total) + 1);
                        IJ.showStatus(String.format(Locale.ROOT, "%s: epoch %d/%d loss %.5g val %s%s", what, e, epochs, loss,
                                Double.isNaN(val) || Double.isInfinite(val) ? "-" : String.format(Locale.ROOT, "%.5g", val),
                                " (Esc: stop, keep the best)"));
                    } else {
                        IJ.showStatus(what + ": " + stage + " " + done + "/" + total);
                    }
                }
                return IJ.escapePressed();
            }
        };
    }

    static List<String> inactive(boolean[] active) {
        List<String> l = new ArrayList<String>();
        for (int i = 0; i < active.length; i++) if (!active[i]) l.add(String.valueOf(i));
        return l;
    }

    static int countActive(boolean[] a) {
        int n = 0;
        for (boolean b : a) if (b) n++;
        return n;
    }

    /** Checks the requested axis against the image; "Z"/"T" or fail. */
    String resolveAxis(ImagePlus imp, String auto, String chosen) {
        if (auto != null) return auto;
        if (chosen == null) throw fail("Choose the spectral axis: axis=Z or axis=T.");
        if (chosen.equals("Z") && imp.getNSlices() <= 1 || chosen.equals("T") && imp.getNFrames() <= 1)
            throw fail("'" + imp.getTitle() + "' has a single plane along " + chosen + ".");
        return chosen;
    }

    /** Applies the model to the spectra and shows embedding, reconstruction, error map, decoded curves. */
    void produceOutputs(ImagePlus imp, Spectra s, SaeModel model, int levels, boolean othersAtMean, int threads,
                        String what) throws FerrolensException {
        int latent = model.latent();
        float[] emb = new float[s.n * latent];
        float[] recon = new float[s.n * s.steps];
        IJ.showStatus(what + ": encoding and reconstructing " + s.n + " curves");
        model.apply(s.curves, s.n, s.steps, emb, recon, threads, ijProgress(what, 0));
        boolean[] active = new boolean[latent];
        ImagePlus embImp = embeddingImage(s, emb, latent, active);
        ImagePlus recImp = reconstructionImage(s, recon, imp);
        double[] mse = new double[1];
        ImagePlus errImp = errorImage(s, recon, mse);
        List<String> off = inactive(active);
        if (!off.isEmpty())
            IJ.log("Ferrolens: " + s.title + ": inactive latent channel(s) (zero at every pixel): " + String.join(", ", off));
        ResultsTable rt = new ResultsTable();
        ImagePlus curvesImp = null;
        if (countActive(active) > 0) {
            IJ.showStatus(what + ": decoding latent traversals");
            curvesImp = decodedCurves(s, model, emb, active, levels, othersAtMean, threads, rt);
        } else {
            IJ.log("Ferrolens: " + s.title + ": no active latent channel, so no decoded curves.");
        }
        show(embImp);
        show(recImp);
        show(errImp);
        if (curvesImp != null) {
            show(curvesImp);
            showTable(rt, s.title + " decoded curves");
        }
        IJ.showProgress(1.0);
        lastMeanMse = mse[0];
        lastActive = countActive(active);
        lastLatent = latent;
    }

    double lastMeanMse;
    int lastActive, lastLatent;

    /** Log line describing what was read from the input. */
    static void logInput(Spectra s) {
        IJ.log(String.format(Locale.ROOT, "Ferrolens: '%s': %d x %d curves of %d points on %s (axis from %s: %s .. %s %s)%s",
                s.title, s.width, s.height, s.steps, s.axis, s.axisSource, fmt(s.axisValues[0]),
                fmt(s.axisValues[s.steps - 1]), s.axisUnit, s.channel > 1 || s.otherIndex > 1
                        ? " [channel " + s.channel + ", " + (s.axis.equals("Z") ? "frame " : "slice ") + s.otherIndex + "]" : ""));
    }

    static String fmt(double v) { return String.format(Locale.ROOT, "%.4g", v); }
}
