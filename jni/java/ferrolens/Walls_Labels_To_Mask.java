package ferrolens;

import ij.ImagePlus;
import ij.gui.Overlay;
import ij.gui.Roi;
import ij.plugin.frame.RoiManager;
import ij.process.ByteProcessor;

import java.util.ArrayList;
import java.util.List;

/**
 * Plugins &gt; Ferrolens &gt; Walls &gt; Labels to Mask...: the line ROIs of the ROI Manager (or of the image's
 * overlay) rasterised with a width into an 8-bit 0/255 mask "&lt;image&gt; wall mask" (the training target of
 * Walls &gt; Train Wall Ensemble). Area ROIs are filled as they are. The image itself is not changed.
 * Macro: {@code run("Wall Labels to Mask...", "source=[ROI Manager] width=3")}.
 */
public class Walls_Labels_To_Mask extends EngineCommand {
    static final String[] SOURCES = {"ROI Manager", "Overlay"};

    @Override
    String commandName() { return "Wall Labels to Mask"; }

    public static String callWithOptions(String options) {
        return CommandBase.callWithOptions(new Walls_Labels_To_Mask(), options);
    }

    @Override
    void body() {
        ImagePlus imp = image("", "image the wall labels were drawn on");
        Options o = options("source=[ROI Manager] width=3");
        o.addChoice("Source of the labels", SOURCES, "ROI Manager");
        o.addNumber("Width (line width in pixels)", 3, 1);
        if (!o.show()) return;
        String source = o.nextChoice(SOURCES);
        double width = o.nextNumber();
        check(o);
        if (!(width >= 1 && width <= 1000)) throw fail("Width must be 1..1000 pixels, not " + width + ".");
        List<Roi> rois = new ArrayList<Roi>();
        if (source.equals("Overlay")) {
            Overlay ov = imp.getOverlay();
            if (ov != null) for (Roi r : ov.toArray()) rois.add(r);
        } else {
            RoiManager rm = roiManager(false);
            if (rm != null) for (Roi r : rm.getRoisAsArray()) rois.add(r);
        }
        if (rois.isEmpty())
            throw fail("No wall labels in the " + source + ": draw lines and use Walls > Add Wall Label (or add them to the "
                    + (source.equals("Overlay") ? "overlay" : "ROI Manager") + ") first.");
        ImagePlus mask = rasterise(imp.getWidth(), imp.getHeight(), rois, width);
        mask.setTitle(stripExtension(imp.getTitle()) + " wall mask");
        mask.setCalibration(imp.getCalibration().copy());
        show(mask);
        ij.IJ.log("Ferrolens wall mask '" + mask.getTitle() + "': " + rois.size() + " labels, width " + width);
    }

    /** 0/255 mask of the ROIs: lines with the given width, areas filled, points set. */
    static ImagePlus rasterise(int w, int h, List<Roi> rois, double width) {
        ByteProcessor bp = new ByteProcessor(w, h);
        for (Roi r0 : rois) {
            Roi r = (Roi) r0.clone();
            if (r.isLine()) r.setStrokeWidth(width);
            fillRoi(bp, r);
        }
        return new ImagePlus("wall mask", bp);
    }
}
