package ferrolens;

import ij.IJ;
import ij.ImagePlus;

/**
 * Plugins &gt; Ferrolens &gt; Walls &gt; Live Segmentation... (engine: ferrolens walls live): simulates live
 * segmentation during acquisition by replaying the current image (first plane) line by line through a
 * wall ensemble. Outputs: the final "&lt;image&gt; live wall probability", "&lt;image&gt; live wall uncertainty",
 * "&lt;image&gt; live wall mask" and the per-line timing table "&lt;image&gt; live timing"; the summary (seconds
 * per line vs a full recompute) goes to the Log.
 * Macro: {@code run("Live Segmentation...", "model=[/p/walls.safetensors] simulate threshold=0.5")}.
 */
public class Walls_Live extends EngineCommand {
    @Override
    String commandName() { return "Live Segmentation"; }

    public static String callWithOptions(String options) {
        return CommandBase.callWithOptions(new Walls_Live(), options);
    }

    @Override
    void body() {
        ImagePlus imp = image("", "finished PFM scan (replayed line by line)");
        Options o = options("model=[/path/walls.safetensors] simulate threshold=0.5");
        o.addString("Model file (wall ensemble .safetensors)", "", 40);
        o.addCheckbox("Simulate from image (replay the current image line by line)", true);
        o.addNumber("Threshold (mean probability)", 0.5, 3);
        o.addCheckbox("Fixed range (normalise with lo/hi instead of the running min/max)", false);
        o.addNumber("Lo (fixed normalisation minimum)", 0, 4);
        o.addNumber("Hi (fixed normalisation maximum)", 1, 4);
        o.addCheckbox("No_check (skip the final full recompute)", false);
        o.addNumber("Threads (0 = ImageJ setting)", 0, 0);
        if (!o.show()) return;
        String model = o.nextString();
        boolean simulate = o.nextBoolean();
        double threshold = o.nextNumber();
        boolean fixed = o.nextBoolean();
        double lo = o.nextNumber(), hi = o.nextNumber();
        boolean noCheck = o.nextBoolean();
        int threads = o.nextInt();
        check(o);
        if (!simulate)
            throw fail("Only the simulation is available: check 'Simulate from image' (add simulate to the macro options) to replay the current image; a live instrument feed is not supported.");
        modelFile(model, "walls.safetensors", "Walls > Train Wall Ensemble");
        if (!(threshold >= 0 && threshold <= 1)) throw fail("Threshold must be 0..1, not " + threshold + ".");
        if (fixed && !(lo < hi)) throw fail("The fixed range needs lo < hi, not lo " + lo + " and hi " + hi + ".");
        if (imp.getStackSize() > 1) IJ.log("Ferrolens " + commandName() + ": '" + imp.getTitle() + "' is a stack: only its first plane is replayed.");
        int thr = threadsArg(threads);
        String base = stripExtension(imp.getTitle());
        begin("walls", "live");
        arg("model", model);
        arg("input", saveInput(imp, "scan", false));
        arg("out", out().getPath());
        arg("threshold", threshold);
        if (fixed) {
            arg("lo", lo);
            arg("hi", hi);
        }
        if (noCheck) flag("no-check");
        arg("threads", thr);
        execute("Live segmentation", 0);
        showResult("probability.tif", base, "live wall probability", imp.getCalibration(), "fire");
        showResult("uncertainty.tif", base, "live wall uncertainty", imp.getCalibration(), "fire");
        showResult("mask.tif", base, "live wall mask", imp.getCalibration(), null);
        showCsv("live.csv", base, "live timing");
        logSummary(" '" + imp.getTitle() + "'");
    }
}
