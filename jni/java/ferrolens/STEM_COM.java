package ferrolens;

/**
 * Plugins &gt; Ferrolens &gt; 4D-STEM &gt; Center of Mass... (engine: ferrolens stem com).
 * Outputs: "&lt;data&gt; center of mass" (com x, com y, magnitude, direction), "&lt;data&gt; COM histogram",
 * "&lt;data&gt; mean pattern" (draw the virtual-detector ROI on it).
 * Macro: {@code run("4D-STEM Center of Mass...", "input=[stem4d.tif] threshold=0 hist_bins=128")}.
 */
public class STEM_COM extends Stem4D {
    @Override
    String commandName() { return "4D-STEM Center of Mass"; }

    public static String callWithOptions(String options) {
        return CommandBase.callWithOptions(new STEM_COM(), options);
    }

    @Override
    void body() {
        Options o = options("file=[/data/scan.tif]");
        addInputFields(o, true);
        o.addNumber("Threshold (intensity subtracted, clipped at 0)", 0, 3);
        o.addString("Mask_disc (cx,cy,r in detector pixels; empty = whole pattern)", "", 16);
        o.addCheckbox("Degrees for the direction", false);
        o.addNumber("Hist_bins", 128, 0);
        o.addNumber("Hist_range (px; 0 = largest shift)", 0, 3);
        o.addNumber("Threads (0 = ImageJ setting)", 0, 0);
        if (!o.show()) return;
        readInputFields(o, true);
        double threshold = o.nextNumber();
        String mask = o.nextString();
        boolean degrees = o.nextBoolean();
        int bins = o.nextInt();
        double range = o.nextNumber();
        int threads = o.nextInt();
        check(o);
        resolveInput();
        if (!(threshold >= 0)) throw fail("Threshold must be >= 0.");
        requireRange("Histogram bins", bins, 2, 4096);
        if (!(range >= 0)) throw fail("Histogram range must be >= 0.");
        if (!mask.isEmpty() && !mask.matches("\\s*[-+0-9.eE]+\\s*,\\s*[-+0-9.eE]+\\s*,\\s*[-+0-9.eE]+\\s*"))
            throw fail("Mask disc must be three numbers cx,cy,r (detector pixels), not '" + mask + "'.");
        int thr = threadsArg(threads);
        begin("stem", "com");
        inputArgs();
        if (threshold > 0) arg("threshold", threshold);
        if (!mask.isEmpty()) arg("mask", mask.replaceAll("\\s", ""));
        if (degrees) flag("degrees");
        arg("hist-bins", bins);
        arg("hist-range", range);
        arg("threads", thr);
        execute("Center of mass", 0);
        showResult("com.tif", base, "center of mass", scanCal(), null);
        showResult("com_histogram.tif", base, "COM histogram", null, "fire");
        showResult("mean_pattern.tif", base, "mean pattern", detectorCal(), null);
        logDone();
    }
}
