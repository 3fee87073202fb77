package ferrolens;

import ij.ImagePlus;

/**
 * im2spec &gt; Train... / Apply... and spec2im &gt; Train... / Apply... (engine: ferrolens im2spec|spec2im
 * train|apply, Kalinin et al.): a structure image (one plane) and a spectral grid (X x Y with the curves
 * on Z or T) of the same size, chosen by title. Training: a rectangle ROI on the structure image is the
 * training region (--roi x,y,w,h, patch centres), else the left train-fraction of the columns. Outputs:
 * "&lt;grid|structure&gt; predicted" (im2spec: spectra grid; spec2im: patch montage), "... latent",
 * "... errors" (when the truth is given), "... train region" and "... loss" (Plot of loss.csv).
 */
abstract class Im2Spec extends EngineCommand {
    static final String[] PATCHES = {"8", "16"};

    abstract boolean im2spec();

    abstract boolean train();

    String group() { return im2spec() ? "im2spec" : "spec2im"; }

    @Override
    void body() {
        String model = "";
        Options o = options(train() ? "structure=[pfm.tif] grid=[loops.tif] patch=8 latent=10 epochs=100 output=[/path/" + group() + ".safetensors]"
                : "model=[/path/" + group() + ".safetensors] structure=[pfm.tif] grid=[loops.tif]");
        if (!train()) o.addString("Model file (" + group() + " .safetensors)", "", 40);
        o.addString("Structure image title" + (train() || im2spec() ? "" : " (optional: the truth adds error maps)"), "", 24);
        o.addString("Grid title (spectral grid" + (train() || !im2spec() ? ")" : "; optional: the truth adds error maps)"), "", 24);
        int patch = 8, latent = 10, filters = 64, epochs = 100, batch = 64, seed = 1;
        double lr = 1e-3, fraction = 0.75;
        boolean standardise = false;
        String output = "";
        if (train()) {
            o.addChoice("Patch (pixels)", PATCHES, "8");
            o.addNumber("Latent (size)", 10, 0);
            o.addNumber("Filters (convolution)", 64, 0);
            o.addNumber("Epochs", 100, 0);
            o.addNumber("Batch (mini-batch size)", 64, 0);
            o.addNumber("Lr (Adam learning rate)", 1e-3, 6);
            o.addNumber("Train_fraction (left columns, without a rectangle ROI)", 0.75, 3);
            o.addCheckbox("Standardise (z-score with training-pixel statistics)", false);
            o.addNumber("Seed", 1, 0);
            o.addString("Output model file (.safetensors)", "", 40);
        }
        o.addNumber("Threads (0 = ImageJ setting)", 0, 0);
        if (!o.show()) return;
        if (!train()) model = o.nextString();
        String sTitle = o.nextString(), gTitle = o.nextString();
        if (train()) {
            patch = Integer.parseInt(o.nextChoice(PATCHES));
            latent = o.nextInt();
            filters = o.nextInt();
            epochs = o.nextInt();
            batch = o.nextInt();
            lr = o.nextNumber();
            fraction = o.nextNumber();
            standardise = o.nextBoolean();
            seed = o.nextInt();
            output = o.nextString();
        }
        int threads = o.nextInt();
        check(o);
        if (!train()) {
            modelFile(model, group() + ".safetensors", group() + " Train");
        }
        boolean needS = train() || im2spec(), needG = train() || !im2spec();
        if (needS && sTitle.isEmpty()) throw fail("No structure image title given: add structure=[<title>].");
        if (needG && gTitle.isEmpty()) throw fail("No spectral grid title given: add grid=[<title>].");
        ImagePlus s = sTitle.isEmpty() ? null : image(sTitle, "structure image");
        ImagePlus g = gTitle.isEmpty() ? null : image(gTitle, "spectral grid");
        if (s != null) requireSinglePlane(s, "structure image");
        if (g != null) requirePlanes(g, "spectral grid (curves on Z or T)", 2);
        if (s != null && g != null) requireSameSize(s, g, "spectral grid");
        ImagePlus ref = s != null ? s : g;
        if (ref.getWidth() < patch || ref.getHeight() < patch)
            throw fail("'" + ref.getTitle() + "' is " + ref.getWidth() + " x " + ref.getHeight() + ": smaller than the " + patch + " x " + patch + " patch.");
        java.awt.Rectangle roi = null;
        if (train()) {
            requireRange("Latent size", latent, 1, 4096);
            requireRange("Filters", filters, 1, 1024);
            requireRange("Epochs", epochs, 1, 10000000);   // the engine's range
            requireRange("Batch", batch, 2, 100000);
            if (!(lr >= 1e-9 && lr <= 1)) throw fail("Learning rate must be 1e-9..1, not " + lr + ".");
            if (!(fraction >= 0.001 && fraction <= 0.999)) throw fail("Train fraction must be 0.001..0.999, not " + fraction + ".");
            outputModel(output, group() + ".safetensors");
            roi = rectRoi(s);
        }
        int thr = threadsArg(threads);
        String base = stripExtension((im2spec() ? (s != null ? s : g) : (g != null ? g : s)).getTitle());
        begin(group(), train() ? "train" : "apply");
        if (!train()) arg("model", model);
        if (s != null) arg("structure", saveInput(s, "structure", false));
        if (g != null) arg("input", saveInput(g, "grid", false));
        arg("out", out().getPath());
        if (train()) {
            if (roi != null) arg("roi", roi.x + "," + roi.y + "," + roi.width + "," + roi.height);
            else arg("train-fraction", fraction);
            arg("patch", patch);
            arg("latent", latent);
            arg("filters", filters);
            arg("epochs", epochs);
            arg("batch", batch);
            arg("lr", lr);
            if (standardise) flag("standardise");
            arg("seed", seed);
        }
        arg("threads", thr);
        execute(group(), train() ? epochs : 0);
        if (train()) keep("model.safetensors", output);
        ij.measure.Calibration cal = ref.getCalibration();
        showResult("predicted.tif", base, "predicted", im2spec() ? cal : null, null);
        showResult("latent.tif", base, "latent", cal, "fire");
        showResult("errors.tif", base, "errors", cal, "fire");
        showResult("train_region.tif", base, "train region", cal, null);
        if (train()) plotCsv("loss.csv", base, "loss", "MSE", 0);
        logSummary(" '" + base + "'" + (train() ? " -> " + output : ""));
    }
}
