package ferrolens;

/**
 * Plugins &gt; Ferrolens &gt; Walls &gt; Train Wall Ensemble... (engine: ferrolens walls train): an ensemble of
 * ResHedNets trained on PFM images and wall masks (open images by title, or a folder of
 * &lt;name&gt;.tif + &lt;name&gt;_mask.tif). The model is copied to the output path; "&lt;images&gt; wall loss" (Plot,
 * one curve per member) is shown.
 * Macro: {@code run("Train Wall Ensemble...", "images=[pfm.tif] masks=[pfm wall mask] members=10 filters=16
 * iterations=800 patch=64 output=[/p/walls.safetensors]")}.
 */
public class Walls_Train extends WallsModel {
    @Override
    String commandName() { return "Train Wall Ensemble"; }

    public static String callWithOptions(String options) {
        return CommandBase.callWithOptions(new Walls_Train(), options);
    }

    @Override
    void body() {
        Options o = options("images=[pfm.tif] masks=[pfm wall mask] members=4 iterations=400 output=[/path/walls.safetensors]");
        addPairFields(o);
        o.addNumber("Members (ensemble)", 10, 0);
        o.addNumber("Filters (ResHedNet width; paper 64)", 16, 0);
        o.addNumber("Iterations (mini-batches per member)", 800, 0);
        o.addNumber("Patch (pixels, multiple of 4)", 64, 0);
        o.addNumber("Batch (patches per mini-batch)", 10, 0);
        o.addNumber("Lr (Adam learning rate)", 1e-3, 6);
        o.addNumber("Swa_last (iterations averaged; 0 = none)", 30, 0);
        o.addCheckbox("Augment (flips, rotations, blur, gamma)", true);
        o.addNumber("Seed", 0, 0);
        o.addString("Output model file (.safetensors)", "", 40);
        o.addNumber("Threads (0 = ImageJ setting)", 0, 0);
        if (!o.show()) return;
        String images = o.nextString(), masks = o.nextString(), folder = o.nextString();
        int members = o.nextInt(), filters = o.nextInt(), iterations = o.nextInt(), patch = o.nextInt(), batch = o.nextInt();
        double lr = o.nextNumber();
        int swa = o.nextInt();
        boolean augment = o.nextBoolean();
        int seed = o.nextInt();
        String output = o.nextString();
        int threads = o.nextInt();
        check(o);
        requireRange("Members", members, 1, 1000);
        requireRange("Filters", filters, 1, 512);
        requireRange("Iterations", iterations, 1, 10000000);   // the engine's range
        if (patch < 16 || patch > 4096 || patch % 4 != 0) throw fail("Patch must be a multiple of 4 in 16..4096, not " + patch + ".");
        requireRange("Batch", batch, 1, 4096);
        if (!(lr >= 1e-9 && lr <= 1)) throw fail("Learning rate must be 1e-9..1, not " + lr + ".");
        requireRange("Swa_last", swa, 0, 1000000);   // the engine's range (0 = none)
        outputModel(output, "walls.safetensors");
        int thr = threadsArg(threads);
        begin("walls", "train");
        pairArgs(images, masks, folder);
        arg("out", out().getPath());
        arg("members", members);
        arg("filters", filters);
        arg("iterations", iterations);
        arg("patch", patch);
        arg("batch", batch);
        arg("lr", lr);
        arg("swa-last", swa);
        if (!augment) flag("no-augment");
        arg("seed", seed);
        arg("threads", thr);
        execute("Train walls", 0);
        keep("model.safetensors", output);
        plotLoss("wall loss");
        logSummary(" -> " + output);
    }
}
