package ferrolens;

import ij.IJ;
import ij.ImagePlus;
import ij.ImageStack;
import ij.gui.Plot;
import ij.process.ByteProcessor;
import ij.process.ImageProcessor;

import java.io.File;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * Shared input of the wall-ensemble training commands (engine: ferrolens walls train|retrain): PFM images
 * and their wall masks, either as two open images chosen by title (every plane is one image; masks 0 =
 * background, non-zero = wall, e.g. 0/255 from "Wall Labels to Mask...") or a folder (macro use) of
 * images &lt;name&gt;.tif with masks &lt;name&gt;_mask.tif. Both are written as two stacks for the CLI; the mask
 * stack is normalised to 0/255 8-bit.
 */
abstract class WallsModel extends EngineCommand {
    String base;

    void addPairFields(Options o) {
        o.addString("Images title (PFM image or stack; empty = current image)", "", 24);
        o.addString("Masks title (0 = background, non-zero = wall)", "", 24);
        o.addString("Folder (instead: images <name>.tif with masks <name>_mask.tif)", "", 40);
    }

    /** Checks the image/mask pair (two titles or a folder) and writes --input and --masks. Call after begin(). */
    void pairArgs(String imagesTitle, String masksTitle, String folder) {
        ImagePlus img, msk;
        if (!folder.isEmpty()) {
            ImagePlus[] p = readFolder(folder);
            img = p[0];
            msk = p[1];
            base = new File(folder).getName();
        } else {
            if (masksTitle.isEmpty()) throw fail("No masks title given: add masks=[<title>] (make one with Walls > Wall Labels to Mask) or folder=[/path].");
            img = image(imagesTitle, "PFM images");
            msk = image(masksTitle, "wall masks");
            if (img == msk) throw fail("The images and the masks are the same window '" + img.getTitle() + "'.");
            requireSameSize(img, msk, "wall masks");
            if (img.getStackSize() != msk.getStackSize())
                throw fail("'" + img.getTitle() + "' has " + img.getStackSize() + " planes but the masks '" + msk.getTitle() + "' have "
                        + msk.getStackSize() + ": one mask plane per image plane.");
            base = stripExtension(img.getTitle());
        }
        if (img.getWidth() < 16 || img.getHeight() < 16)
            throw fail("'" + img.getTitle() + "' is " + img.getWidth() + " x " + img.getHeight() + ": wall training needs images of at least 16 x 16 pixels.");
        ImagePlus m = normalisedMask(msk);
        arg("input", saveInput(img, "images", false));
        arg("masks", saveInput(m, "masks", false));
    }

    /** 0/255 8-bit copy of a mask stack; fails when a plane has no wall pixel at all. */
    ImagePlus normalisedMask(ImagePlus msk) {
        ImageStack st = msk.getStack(), out = new ImageStack(msk.getWidth(), msk.getHeight());
        long walls = 0;
        for (int i = 1; i <= st.getSize(); i++) {
            ImageProcessor ip = st.getProcessor(i);
            ByteProcessor bp = new ByteProcessor(msk.getWidth(), msk.getHeight());
            for (int k = 0; k < ip.getPixelCount(); k++) {
                float v = ip.getf(k);
                if (Float.isNaN(v)) throw fail("The masks '" + msk.getTitle() + "' have a NaN pixel (plane " + i + ").");
                if (v != 0f) { bp.set(k, 255); walls++; }
            }
            out.addSlice(st.getSliceLabel(i), bp);
        }
        if (walls == 0) throw fail("The masks '" + msk.getTitle() + "' have no wall pixel (all 0): draw wall labels first.");
        return new ImagePlus(msk.getTitle(), out);
    }

    /** Images &lt;name&gt;.tif and masks &lt;name&gt;_mask.tif of a folder as two stacks (all the same size). */
    ImagePlus[] readFolder(String folder) {
        File dir = new File(folder);
        if (!dir.isDirectory()) throw fail("Folder not found: " + folder);
        String[] names = dir.list();
        if (names == null) throw fail("Cannot list the folder " + folder + ".");
        Arrays.sort(names);
        ImageStack is = null, ms = null;
        List<String> used = new ArrayList<String>();
        for (String n : names) {
            String low = n.toLowerCase(Locale.ROOT);
            if (!(low.endsWith(".tif") || low.endsWith(".tiff")) || stripExtension(n).endsWith("_mask")) continue;
            File mf = new File(dir, stripExtension(n) + "_mask" + n.substring(n.lastIndexOf('.')));
            if (!mf.isFile()) continue;
            ImagePlus a = IJ.openImage(new File(dir, n).getPath()), b = IJ.openImage(mf.getPath());
            if (a == null || b == null) throw fail("Cannot open " + (a == null ? n : mf.getName()) + " in " + folder + ".");
            if (a.getBitDepth() == 24 || b.getBitDepth() == 24) throw fail(n + " or its mask is an RGB image: convert it to 8, 16 or 32-bit first.");
            if (a.getWidth() != b.getWidth() || a.getHeight() != b.getHeight() || a.getStackSize() != b.getStackSize())
                throw fail(mf.getName() + " is " + b.getWidth() + " x " + b.getHeight() + " x " + b.getStackSize() + " but " + n + " is "
                        + a.getWidth() + " x " + a.getHeight() + " x " + a.getStackSize() + ": the sizes must match.");
            if (is == null) {
                is = new ImageStack(a.getWidth(), a.getHeight());
                ms = new ImageStack(a.getWidth(), a.getHeight());
            } else if (a.getWidth() != is.getWidth() || a.getHeight() != is.getHeight()) {
                throw fail(n + " is " + a.getWidth() + " x " + a.getHeight() + " but " + used.get(0) + " is " + is.getWidth() + " x "
                        + is.getHeight() + ": all images of the folder must have the same size.");
            }
            for (int i = 1; i <= a.getStackSize(); i++) {
                is.addSlice(n, a.getStack().getProcessor(i).convertToFloat());
                ms.addSlice(mf.getName(), b.getStack().getProcessor(i).convertToFloat());
            }
            used.add(n);
        }
        if (is == null) throw fail("The folder " + folder + " holds no image <name>.tif with a mask <name>_mask.tif.");
        IJ.log("Ferrolens " + commandName() + ": " + used.size() + " image/mask pair(s) from " + folder + " (" + is.getSize() + " planes).");
        return new ImagePlus[] {new ImagePlus(dir.getName(), is), new ImagePlus(dir.getName() + " masks", ms)};
    }

    /** loss.csv (member,iteration,focal_loss) as a Plot "&lt;base&gt; wall loss": one curve per member. */
    void plotLoss(String what) {
        List<String[]> rows = readCsv("loss.csv");
        if (rows == null || rows.size() < 2) return;
        int members = 0;
        for (int i = 1; i < rows.size(); i++) members = Math.max(members, (int) num(rows.get(i)[0]) + 1);
        Plot plot = new Plot(base + " " + what, "iteration", "focal loss");
        StringBuilder legend = new StringBuilder();
        for (int m = 0; m < members; m++) {
            List<Double> xs = new ArrayList<Double>(), ys = new ArrayList<Double>();
            for (int i = 1; i < rows.size(); i++) {
                String[] r = rows.get(i);
                if (r.length < 3 || (int) num(r[0]) != m) continue;
                xs.add(num(r[1]));
                ys.add(num(r[2]));
            }
            double[] x = new double[xs.size()], y = new double[ys.size()];
            for (int i = 0; i < x.length; i++) { x[i] = xs.get(i); y[i] = ys.get(i); }
            plot.setColor(curveColor(m, members));
            plot.addPoints(x, y, Plot.LINE);
            legend.append("member ").append(m + 1).append('\n');
        }
        showPlot(plot, members <= 12 ? legend.toString() : null);
    }
}
