package ferrolens;

import ij.ImagePlus;
import ij.gui.PointRoi;

import java.util.List;

/**
 * Plugins &gt; Ferrolens &gt; Walls &gt; Measurement Points... (engine: ferrolens walls points): the wall mask
 * (0/1 or 0/255, e.g. "&lt;image&gt; wall mask" or a Segment Walls mask) is thinned and traced; a point is placed
 * every K-th skeleton pixel (or on a fraction of each path). Output: a point ROI on the target image (the
 * mask itself when "image" is empty) and the table "&lt;image&gt; wall points" (x, y, path, arc, slice).
 * Macro: {@code run("Wall Measurement Points...", "mask=[img wall mask] image=[img] every=5")}.
 */
public class Walls_Points extends EngineCommand {
    @Override
    String commandName() { return "Wall Measurement Points"; }

    public static String callWithOptions(String options) {
        return CommandBase.callWithOptions(new Walls_Points(), options);
    }

    @Override
    void body() {
        Options o = options("mask=[img wall mask] every=5");
        o.addString("Mask (title of the wall mask; empty = current image)", "", 24);
        o.addString("Image (title to put the point ROI on; empty = the mask)", "", 24);
        o.addNumber("Every (a point every K skeleton pixels; 0 = use the fraction)", 5, 0);
        o.addNumber("Fraction (of each path's pixels, when every = 0)", 0.1, 4);
        o.addNumber("Threads (0 = ImageJ setting)", 0, 0);
        if (!o.show()) return;
        String maskTitle = o.nextString(), target = o.nextString();
        int every = o.nextInt();
        double fraction = o.nextNumber();
        int threads = o.nextInt();
        check(o);
        ImagePlus mask = image(maskTitle, "wall mask");
        ImagePlus img = target.isEmpty() ? mask : image(target, "image for the points");
        requireSameSize(mask, img, "image for the points");
        if (every < 0) throw fail("Every must be >= 0 (0: use the fraction).");
        if (every == 0 && !(fraction > 0 && fraction <= 1)) throw fail("Fraction must be in (0, 1], not " + fraction + ".");
        int thr = threadsArg(threads);
        begin("walls", "points");
        arg("input", saveInput(mask, "mask", false));
        arg("out", out().getPath());
        if (every > 0) arg("every", every);
        else arg("fraction", fraction);
        arg("threads", thr);
        execute("Wall points", 0);
        List<String[]> rows = readCsv("points.csv");
        int n = rows == null ? 0 : rows.size() - 1;
        if (n <= 0) throw fail("No wall found in '" + mask.getTitle() + "': the mask has no wall pixel (0/1 or 0/255 expected).");
        PointRoi pr = null;
        for (int i = 1; i <= n; i++) {
            double x = num(rows.get(i)[0]), y = num(rows.get(i)[1]);
            if (pr == null) pr = new PointRoi(x, y);
            else pr.addPoint(x, y);
        }
        img.setRoi(pr);     // a selection only: the pixels are not changed
        showCsv("points.csv", stripExtension(img.getTitle()), "wall points");
        ij.IJ.log("Ferrolens wall points '" + mask.getTitle() + "': " + n + " points");
        logDone();
    }
}
