package ferrolens;

import ij.ImagePlus;
import ij.gui.Roi;
import ij.plugin.frame.RoiManager;

/**
 * Plugins &gt; Ferrolens &gt; 4D-STEM &gt; Compare Patterns... (engine: ferrolens stem compare): mean patterns of
 * two scan regions, their normalised cross-correlation and difference. Regions: two scan-sized mask images
 * (non-zero = selected, titles mask_a / mask_b), or the first two ROIs of the ROI Manager drawn on a
 * scan-sized map (title "map", e.g. "&lt;data&gt; virtual detector"); they are written as TIFF masks.
 * Output: "&lt;data&gt; pattern comparison" (ncc, difference A - B, mean A, mean B).
 * Macro: {@code run("4D-STEM Compare Patterns...", "mask_a=[A] mask_b=[B]")}.
 */
public class STEM_Compare extends Stem4D {
    @Override
    String commandName() { return "4D-STEM Compare Patterns"; }

    public static String callWithOptions(String options) {
        return CommandBase.callWithOptions(new STEM_Compare(), options);
    }

    @Override
    void body() {
        Options o = options("mask_a=[A] mask_b=[B]");
        addInputFields(o, true);
        o.addString("Mask_a (title of a scan-sized mask; empty = ROI Manager)", "", 24);
        o.addString("Mask_b", "", 24);
        o.addString("Map (scan-sized image the ROI Manager ROIs 1 and 2 were drawn on)", "", 24);
        o.addNumber("Threads (0 = ImageJ setting)", 0, 0);
        if (!o.show()) return;
        readInputFields(o, true);
        String ma = o.nextString(), mb = o.nextString(), map = o.nextString();
        int threads = o.nextInt();
        check(o);
        resolveInput();
        ImagePlus a = null, b = null, m = null;
        Roi ra = null, rb = null;
        if (!ma.isEmpty() || !mb.isEmpty()) {
            if (ma.isEmpty() || mb.isEmpty()) throw fail("Give both masks (mask_a and mask_b), or neither to use the ROI Manager.");
            a = image(ma, "mask A");
            b = image(mb, "mask B");
            requireSinglePlane(a, "mask A");
            requireSinglePlane(b, "mask B");
            requireSameSize(a, b, "mask B");
            checkScanSize(a);
        } else {
            RoiManager rm = roiManager(false);
            if (rm == null || rm.getCount() < 2)
                throw fail("No regions: give two mask images (mask_a, mask_b) or add two ROIs to the ROI Manager.");
            Roi[] rois = rm.getRoisAsArray();
            ra = rois[0];
            rb = rois[1];
            if (!map.isEmpty()) {
                m = image(map, "scan-sized map");
                checkScanSize(m);
            } else if (data == null) {
                throw fail("With a file input, name the scan-sized map the ROIs were drawn on (map=[title]).");
            }
        }
        int thr = threadsArg(threads);
        begin("stem", "compare");
        inputArgs();
        if (a != null) {
            arg("select-a", writeMask(a.getProcessor().convertToByte(false), "mask_a", "mask A"));
            arg("select-b", writeMask(b.getProcessor().convertToByte(false), "mask_b", "mask B"));
        } else {
            int w = m != null ? m.getWidth() : scanX, h = m != null ? m.getHeight() : scanY;
            arg("select-a", writeMask(ra, w, h, "mask_a", "first ROI (region A)"));
            arg("select-b", writeMask(rb, w, h, "mask_b", "second ROI (region B)"));
        }
        arg("threads", thr);
        execute("Compare patterns", 0);
        showResult("compare.tif", base, "pattern comparison", detectorCal(), null);
        ij.IJ.log("Ferrolens compare patterns '" + base + "': " + summary().replaceAll("\\s+", " "));
        logDone();
    }

    private void checkScanSize(ImagePlus img) {
        if (data != null && (img.getWidth() != scanX || img.getHeight() != scanY))
            throw fail("'" + img.getTitle() + "' is " + img.getWidth() + " x " + img.getHeight() + " but the scan of '" + data.getTitle()
                    + "' is " + scanX + " x " + scanY + ": the sizes must match.");
    }
}
