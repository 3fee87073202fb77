package ferrolens;

import ij.IJ;
import ij.ImagePlus;
import ij.ImageStack;
import ij.WindowManager;
import ij.gui.Plot;
import ij.gui.Roi;
import ij.io.FileSaver;
import ij.macro.Interpreter;
import ij.measure.Calibration;
import ij.measure.ResultsTable;
import ij.plugin.MontageMaker;
import ij.plugin.frame.RoiManager;
import ij.process.ByteProcessor;
import ij.process.ImageProcessor;

import java.awt.Color;
import java.awt.GraphicsEnvironment;
import java.io.File;
import java.io.IOException;
import java.nio.charset.Charset;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Base of the thin menu commands of the families 2..5 (decompose, latent, loops, 4D-STEM, im2spec/spec2im,
 * diffraction AE, walls), which run an engine command of the `ferrolens` program in-process
 * (Native.runCli, the same code as the CLI): checks in Java, then dialog -> saveInput -> args -> execute
 * -> showResult/showCsv -> finish. The inputs are written to a private temporary folder as TIFF (copies:
 * the open images are never modified), the command writes its documented outputs there, and they are
 * opened as windows titled "&lt;input&gt; &lt;what&gt;" with the input's calibration. Progress and Esc go through
 * the engine's progress hook. Subclasses implement body(); errors go through fail() (one sentence).
 */
abstract class EngineCommand extends CommandBase {
    /** Result images a command opens, in float values per input pixel (estimate for the heap check). */
    static final int OUTPUT_FLOATS_PER_PIXEL = 4;

    /** The command's dialog / macro options (set by options()): the engine's refusals are worded with its fields. */
    Options opts;
    /** CLI option -> dialog field key, where the two names differ by more than '-' / '_'. */
    private static final String[][] OPTION_FIELDS = {
        {"max-iter", "max_iterations"}, {"tol", "tolerance"}, {"reg-covar", "regularisation"}, {"grid", "latent_grid"},
        {"bin", "binning"}};
    private static final java.util.regex.Pattern CLI_OPTION =
            java.util.regex.Pattern.compile("option --([A-Za-z0-9-]+)(.*?)(?:, got '?([^']*)'?)?$");

    /** A per-run scratch folder, deleted by finish(). */
    File scratch;
    final List<String> args = new ArrayList<String>();

    /** Creates the scratch folder and starts the argument list with "group action". */
    void begin(String group, String action) {
        try {
            scratch = Files.createTempDirectory("ferrolens-").toFile();
        } catch (IOException e) {
            throw fail("Cannot create a temporary folder: " + e.getMessage());
        }
        args.clear();
        args.add(group);
        args.add(action);
    }

    void arg(String name, Object value) {
        args.add("--" + name);
        args.add(value instanceof Double || value instanceof Float
                ? String.format(Locale.ROOT, "%.9g", ((Number) value).doubleValue()) : String.valueOf(value));
    }

    void flag(String name) { args.add("--" + name); }

    File out() { return new File(scratch, "out"); }

    /**
     * Runs the command; an engine error becomes fail(), Esc a quiet stop (or kept partial results). The
     * scratch folder is removed by run() in every case.
     */
    void execute(String what, int epochs) {
        byte[][] a = new byte[args.size()][];
        Charset cs = Charset.forName(System.getProperty("sun.jnu.encoding", Charset.defaultCharset().name()));
        for (int i = 0; i < a.length; i++) a[i] = args.get(i).getBytes(cs);
        Native.load();
        try {
            Native.runCli(a, ijProgress(what, epochs));
        } catch (CancelledException e) {
            IJ.showStatus(what + ": cancelled");
            if (!new File(out(), "summary.json").isFile()) throw new Abort("cancelled");
        } catch (IllegalArgumentException | FerrolensException e) {
            throw fail(dialogWords(e.getMessage()));
        } finally {
            IJ.showProgress(1.0);
        }
    }

    /**
     * The engine's (CLI's) refusal of an option, worded for the dialog: "option --hist-range must be between 0
     * and 1e+09, got 1.00000000e+12" -> "Hist range (hist_range) must be between 0 and 1e+09, not 1e12." (the
     * field's own name and the value as the user gave it). Other messages are returned unchanged.
     */
    String dialogWords(String msg) {
        if (msg == null) return null;
        for (java.util.Map.Entry<String, String> e : copies.entrySet()) msg = msg.replace(e.getKey(), e.getValue());
        msg = explain(msg);
        java.util.regex.Matcher m = CLI_OPTION.matcher(msg);
        if (!m.find()) return msg;
        String name = m.group(1), key = name.replace('-', '_');
        for (String[] a : OPTION_FIELDS) if (a[0].equals(name)) key = a[1];
        String field = opts == null ? null : opts.fieldName(key);
        String value = field == null ? null : opts.given(key);
        if (field == null) {   // an option Ferrolens sets itself (not a dialog field)
            field = "The setting '" + name + "' that Ferrolens passed to the engine";
            value = m.group(3);
        }
        String rest = m.group(2);
        if (m.group(3) != null) rest += ", not " + (value != null ? value : m.group(3));
        return msg.substring(0, m.start()) + field + rest + (rest.endsWith(".") ? "" : ".");
    }

    /** Temporary copy path -> "'title'" of the image it copies (saveInput): engine messages name the image. */
    private final java.util.Map<String, String> copies = new java.util.LinkedHashMap<String, String>();

    /** A command's own wording of an engine message that speaks in CLI terms (default: unchanged). */
    String explain(String msg) { return msg; }

    /** Deletes the scratch folder (the results have been opened or copied). */
    void finish() {
        if (scratch != null) deleteTree(scratch);
        scratch = null;
    }

    static void deleteTree(File f) {
        File[] kids = f.listFiles();
        if (kids != null) for (File k : kids) deleteTree(k);
        if (!f.delete()) f.deleteOnExit();
    }

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
        opts = o;
        if (o.headlessWithoutOptions()) throw fail("Headless use needs macro options, e.g. \"" + example + "\".");
        return o;
    }

    void check(Options o) {
        if (o.error() != null) throw fail(o.error());
    }

    // ---- inputs ----------------------------------------------------------------------------------

    /** An open image by title (macro-friendly); fails with the list of open images. */
    ImagePlus imageByTitle(String title, String role) {
        ImagePlus imp = WindowManager.getImage(title);
        if (imp == null) {
            String[] titles = WindowManager.getImageTitles();
            throw fail("No open image is titled '" + title + "' (" + role + "). Open images: "
                    + (titles.length == 0 ? "none" : String.join(", ", titles)) + ".");
        }
        return imp;
    }

    /**
     * Writes a copy of every plane of imp (the whole frame, whatever ROI is set) to the scratch folder
     * as a TIFF hyperstack and returns its path. Refuses NaN/Inf pixels with a sentence (RGB: image() refused it).
     */
    String saveInput(ImagePlus imp, String name, boolean allowNaN) {
        // the copy, plus the result windows: a few float images of the input's size
        long pixels = (long) imp.getWidth() * imp.getHeight() * imp.getStackSize();
        requireHeap(pixels * (imp.getBitDepth() / 8) + OUTPUT_FLOATS_PER_PIXEL * 4L * pixels,
                "Copying '" + imp.getTitle() + "' and opening the results");
        ImageStack st = imp.getStack();
        ImageStack copy = new ImageStack(imp.getWidth(), imp.getHeight());
        for (int i = 1; i <= st.getSize(); i++) {
            ImageProcessor ip = st.getProcessor(i);
            if (!allowNaN && imp.getBitDepth() == 32) {
                float[] px = (float[]) ip.getPixels();
                for (int k = 0; k < px.length; k++)
                    if (Float.isNaN(px[k]) || Float.isInfinite(px[k]))
                        throw fail("'" + imp.getTitle() + "' has a NaN or infinite pixel at x=" + (k % imp.getWidth()) + ", y="
                                + (k / imp.getWidth()) + " (plane " + i + "). Replace or crop it first.");
            }
            copy.addSlice(st.getSliceLabel(i), ip.duplicate());
        }
        ImagePlus dup = new ImagePlus(name, copy);
        dup.setDimensions(imp.getNChannels(), imp.getNSlices(), imp.getNFrames());
        if (imp.isHyperStack() || imp.getNFrames() > 1) dup.setOpenAsHyperStack(true);
        dup.setCalibration(imp.getCalibration().copy());
        File f = new File(scratch, name + ".tif");
        if (!new FileSaver(dup).saveAsTiff(f.getPath())) throw fail("Cannot write a temporary copy of '" + imp.getTitle() + "'.");
        copies.put(f.getPath(), "'" + imp.getTitle() + "'");
        return f.getPath();
    }

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

    /** The model file to apply: given and existing; the sentence names an example and the command that trains one. */
    String modelFile(String path, String example, String trainer) {
        if (path.isEmpty()) throw fail("No model file given: add model=[/path/" + example + "] (train one with " + trainer + ").");
        return existingFile(path, "model file");
    }

    /** Output model path: must be given and must not be a folder. */
    String outputModel(String path, String example) {
        if (path.isEmpty()) throw fail("No model output file given: add output=[/path/" + example + "].");
        if (new File(path).isDirectory()) throw fail("The model output " + path + " is a folder: give a file name such as " + example + ".");
        return path;
    }

    int threadsArg(int t) {
        requireThreads(t);
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
        fillRoi(bp, roi);
        return writeMask(bp, name, role);
    }

    /** Sets the pixels of roi to 255: areas filled, lines as the area of their stroke width, points set. */
    static void fillRoi(ByteProcessor bp, Roi roi) {
        bp.setColor(255);
        if (roi.isArea()) {
            bp.fill(roi);
        } else if (roi.isLine()) {
            Roi area = ij.plugin.Selection.lineToArea(roi);
            if (area != null) bp.fill(area);
        } else {
            java.awt.Polygon p = roi.getPolygon();
            for (int i = 0; i < p.npoints; i++)
                if (p.xpoints[i] >= 0 && p.ypoints[i] >= 0 && p.xpoints[i] < bp.getWidth() && p.ypoints[i] < bp.getHeight())
                    bp.set(p.xpoints[i], p.ypoints[i], 255);
        }
        bp.resetRoi();
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

    /** Opens out/&lt;file&gt; (when it exists) titled "&lt;base&gt; &lt;what&gt;", with cal's spatial calibration. */
    ImagePlus showResult(String file, String base, String what, Calibration cal, String lutName) {
        File f = new File(out(), file);
        if (!f.isFile()) return null;
        ImagePlus r = IJ.openImage(f.getPath());
        if (r == null) return null;
        r.setTitle(base + " " + what);
        if (cal != null) {
            Calibration c = r.getCalibration();
            c.pixelWidth = cal.pixelWidth;
            c.pixelHeight = cal.pixelHeight;
            c.setUnit(cal.getUnit());
        }
        if (lutName != null) {
            ij.process.LUT lut = lut(lutName);
            if (lut != null) r.getProcessor().setLut(lut);
        }
        r.setFileInfo(null);
        show(r);
        return r;
    }

    /** Opens out/&lt;file&gt;.csv as a ResultsTable window titled "&lt;base&gt; &lt;what&gt;". */
    ResultsTable showCsv(String file, String base, String what) {
        File f = new File(out(), file);
        if (!f.isFile()) return null;
        ResultsTable rt = ResultsTable.open2(f.getPath());
        if (rt != null) showTable(rt, base + " " + what);
        return rt;
    }

    /** Copies out/&lt;file&gt; to dest (e.g. a model file the user asked for). */
    void keep(String file, String dest) {
        if (dest == null || dest.isEmpty()) return;
        try {
            File d = new File(dest);
            if (d.getParentFile() != null) d.getParentFile().mkdirs();
            Files.copy(new File(out(), file).toPath(), d.toPath(), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw fail("Cannot write " + dest + ": " + e.getMessage());
        }
    }

    /** The summary.json the command wrote, as text ("" when absent). */
    String summary() {
        try {
            return new String(Files.readAllBytes(new File(out(), "summary.json").toPath()), "UTF-8");
        } catch (IOException e) {
            return "";
        }
    }

    static String stripExtension(String title) {
        int dot = title.lastIndexOf('.');
        return dot > 0 ? title.substring(0, dot) : title;
    }
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
            plot.setColor(curveColor(c - 1 - skipColumns, curves));
            plot.addPoints(x, y, Plot.LINE);
            legend.append(head[c]).append('\n');
        }
        return showPlot(plot, legend.toString());
    }

    /**
     * Finishes a plot of coloured curves (black legend, 480 x 320 frame, limits fitted) and shows it: a
     * live plot window interactively, else an image titled as the plot. legend: null for none.
     */
    static ImagePlus showPlot(Plot plot, String legend) {
        plot.setColor(Color.black);
        if (legend != null) plot.addLegend(legend, "top-right");
        plot.setFrameSize(480, 320);
        plot.setLimitsToFit(false);
        if (!Interpreter.isBatchMode() && !GraphicsEnvironment.isHeadless()) {
            plot.show();
            return plot.getImagePlus();
        }
        ImagePlus pi = plot.getImagePlus();
        pi.setTitle(plot.getTitle());
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

    void logDone() {
        IJ.showStatus(commandName() + ": done");
    }

    /** Log line "Ferrolens &lt;command&gt;&lt;subject&gt;: &lt;summary.json on one line&gt;", then logDone(). */
    void logSummary(String subject) {
        IJ.log("Ferrolens " + commandName() + subject + ": " + summary().replaceAll("\\s+", " "));
        logDone();
    }
}
