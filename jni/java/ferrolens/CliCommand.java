package ferrolens;

import ij.IJ;
import ij.ImagePlus;
import ij.ImageStack;
import ij.WindowManager;
import ij.io.FileSaver;
import ij.measure.Calibration;
import ij.measure.ResultsTable;
import ij.process.ImageProcessor;

import java.io.File;
import java.io.IOException;
import java.nio.charset.Charset;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Base of the commands that run an engine command of the `ferrolens` program in-process
 * (Native.runCli, the same code as the CLI): the inputs are written to a private temporary folder as
 * TIFF (copies: the open images are never modified), the command writes its documented outputs there,
 * and they are opened as windows titled "&lt;input&gt; &lt;what&gt;" with the input's calibration.
 * Progress and Esc go through the engine's progress hook; errors become one sentence (fail()).
 */
abstract class CliCommand extends CommandBase {
    /** Result images a command opens, in float values per input pixel (estimate for the heap check). */
    static final int OUTPUT_FLOATS_PER_PIXEL = 4;

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

    /** Runs the command; an engine error becomes fail(), Esc a quiet stop (or kept partial results). */
    void execute(String what, int epochs) {
        byte[][] a = new byte[args.size()][];
        Charset cs = Charset.forName(System.getProperty("sun.jnu.encoding", Charset.defaultCharset().name()));
        for (int i = 0; i < a.length; i++) a[i] = args.get(i).getBytes(cs);
        Native.load();
        try {
            Native.runCli(a, ijProgress(what, epochs));
        } catch (CancelledException e) {
            IJ.showStatus(what + ": cancelled");
            if (!new File(out(), "summary.json").isFile()) {
                finish();
                throw new Abort("cancelled");
            }
        } catch (IllegalArgumentException e) {
            finish();
            throw fail(e.getMessage());
        } catch (FerrolensException e) {
            finish();
            throw fail(e.getMessage());
        } finally {
            IJ.showProgress(1.0);
        }
    }

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
     * as a TIFF hyperstack and returns its path. Refuses RGB and NaN/Inf pixels with a sentence.
     */
    String saveInput(ImagePlus imp, String name, boolean allowNaN) {
        if (imp.getBitDepth() == 24) throw fail("'" + imp.getTitle() + "' is an RGB image: convert it to 8, 16 or 32-bit first.");
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
        return f.getPath();
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
}
