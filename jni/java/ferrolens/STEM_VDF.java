package ferrolens;

import ij.ImagePlus;

import java.awt.Rectangle;
import java.util.Locale;

/**
 * Plugins &gt; Ferrolens &gt; 4D-STEM &gt; Virtual Detector... (engine: ferrolens stem vdf): the mean (or sum)
 * of every pattern inside an aperture. Rectangle: the rectangle ROI drawn on the pattern image named by
 * "roi_image" (e.g. "&lt;data&gt; mean pattern"), else on the input hyperstack itself, else the numbers x,y,w,h.
 * Annulus: cx, cy, r_in, r_out (r_in = 0: a disc). Output: "&lt;data&gt; virtual detector".
 * Macro: {@code run("4D-STEM Virtual Detector...", "aperture=annulus cx=16 cy=16 r_in=0 r_out=3")}.
 */
public class STEM_VDF extends Stem4D {
    static final String[] APERTURES = {"rectangle", "annulus"};

    @Override
    String commandName() { return "4D-STEM Virtual Detector"; }

    public static String callWithOptions(String options) {
        return CommandBase.callWithOptions(new STEM_VDF(), options);
    }

    @Override
    void body() {
        Options o = options("aperture=annulus cx=16 cy=16 r_in=0 r_out=3");
        addInputFields(o, true);
        o.addChoice("Aperture", APERTURES, "rectangle");
        o.addString("Roi_image (pattern image with a rectangle ROI; empty = input or numbers)", "", 24);
        o.addNumber("X (rectangle, detector px)", 0, 0);
        o.addNumber("Y", 0, 0);
        o.addNumber("Width", 0, 0);
        o.addNumber("Height", 0, 0);
        o.addNumber("Cx (annulus centre, detector px)", 0, 2);
        o.addNumber("Cy", 0, 2);
        o.addNumber("R_in", 0, 2);
        o.addNumber("R_out", 4, 2);
        o.addCheckbox("Sum (instead of the mean)", false);
        o.addNumber("Threads (0 = ImageJ setting)", 0, 0);
        if (!o.show()) return;
        readInputFields(o, true);
        String aperture = o.nextChoice(APERTURES);
        String roiImage = o.nextString();
        int x = o.nextInt(), y = o.nextInt(), w = o.nextInt(), h = o.nextInt();
        double cx = o.nextNumber(), cy = o.nextNumber(), rin = o.nextNumber(), rout = o.nextNumber();
        boolean sum = o.nextBoolean();
        int threads = o.nextInt();
        check(o);
        resolveInput();
        String spec;
        if (aperture.equals("rectangle")) {
            Rectangle r = null;
            if (!roiImage.isEmpty()) {
                ImagePlus p = image(roiImage, "pattern image with the detector ROI");
                if (data != null) requireSameSize(data, p, "pattern image");
                r = rectRoi(p);
                if (r == null) throw fail("'" + p.getTitle() + "' has no area selection: draw a rectangle on it first.");
            } else if (data != null) {
                r = rectRoi(data);
            }
            if (r == null) {
                if (w <= 0 || h <= 0)
                    throw fail("No detector rectangle: draw a rectangle ROI on the mean pattern (roi_image) or give x, y, width, height > 0.");
                r = new Rectangle(x, y, w, h);
            }
            if (r.x < 0 || r.y < 0 || data != null && (r.x + r.width > data.getWidth() || r.y + r.height > data.getHeight()))
                throw fail("The rectangle " + r.x + "," + r.y + "," + r.width + "," + r.height + " is outside the detector.");
            spec = r.x + "," + r.y + "," + r.width + "," + r.height;
        } else {
            if (!(rin >= 0) || !(rout > rin) || Double.isInfinite(rout))
                throw fail("The annulus needs 0 <= r_in < r_out (r_in = " + rin + ", r_out = " + rout + ").");
            spec = String.format(Locale.ROOT, "%.6g,%.6g,%.6g,%.6g", cx, cy, rin, rout);
        }
        int thr = threadsArg(threads);
        begin("stem", "vdf");
        inputArgs();
        arg(aperture.equals("rectangle") ? "rect" : "annulus", spec);
        if (sum) flag("sum");
        arg("threads", thr);
        execute("Virtual detector", 0);
        showResult("vdf.tif", base, "virtual detector", scanCal(), null);
        ij.IJ.log("Ferrolens virtual detector '" + base + "': " + aperture + " " + spec + (sum ? " (sum)" : " (mean)"));
        logDone();
    }
}
