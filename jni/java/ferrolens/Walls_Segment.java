package ferrolens;

import ij.ImagePlus;

/**
 * Plugins &gt; Ferrolens &gt; Walls &gt; Segment Walls... (engine: ferrolens walls apply) on the current PFM image
 * or stack (every plane is one image) with a wall-ensemble model. Outputs: "&lt;image&gt; wall probability"
 * (ensemble mean), "&lt;image&gt; wall uncertainty" (variance across members), "&lt;image&gt; wall mask" (0/1),
 * "&lt;image&gt; wall skeleton" (0/1).
 * Macro: {@code run("Segment Walls...", "model=[/p/walls.safetensors] threshold=0.5")}.
 */
public class Walls_Segment extends EngineCommand {
    @Override
    String commandName() { return "Segment Walls"; }

    public static String callWithOptions(String options) {
        return CommandBase.callWithOptions(new Walls_Segment(), options);
    }

    @Override
    void body() {
        ImagePlus imp = image("", "PFM image (or stack: every plane is one image)");
        Options o = options("model=[/path/walls.safetensors] threshold=0.5");
        o.addString("Model file (wall ensemble .safetensors)", "", 40);
        o.addNumber("Threshold (mean probability)", 0.5, 3);
        o.addNumber("Threads (0 = ImageJ setting)", 0, 0);
        if (!o.show()) return;
        String model = o.nextString();
        double threshold = o.nextNumber();
        int threads = o.nextInt();
        check(o);
        modelFile(model, "walls.safetensors", "Walls > Train Wall Ensemble");
        if (!(threshold >= 0 && threshold <= 1)) throw fail("Threshold must be 0..1, not " + threshold + ".");
        int thr = threadsArg(threads);
        String base = stripExtension(imp.getTitle());
        begin("walls", "apply");
        arg("model", model);
        arg("input", saveInput(imp, "pfm", false));
        arg("out", out().getPath());
        arg("threshold", threshold);
        arg("threads", thr);
        execute("Segment walls", 0);
        showResult("probability.tif", base, "wall probability", imp.getCalibration(), "fire");
        showResult("uncertainty.tif", base, "wall uncertainty", imp.getCalibration(), "fire");
        showResult("mask.tif", base, "wall mask", imp.getCalibration(), null);
        showResult("skeleton.tif", base, "wall skeleton", imp.getCalibration(), null);
        logDone();
    }
}
