package ferrolens;

/**
 * Plugins &gt; Ferrolens &gt; Diffraction Autoencoder &gt; Train... (engine: ferrolens diffraction-ae train) on a 4D-STEM
 * hyperstack (pattern = image, scan x on Z, scan y on T; open image by title or a TIFF file). The model is
 * copied to the output path. Outputs: "&lt;data&gt; embedding" (scan-sized, one slice per channel),
 * "&lt;data&gt; apertures" (virtual-aperture difference patterns), "&lt;data&gt; diffraction loss" (Plot).
 * Macro: {@code run("Diffraction Autoencoder Train...", "width=32 embedding=32 epochs=10 output=[/p/dae.safetensors]")}.
 */
public class Diffraction_AE_Train extends Stem4D {
    @Override
    String commandName() { return "Diffraction Autoencoder Train"; }

    public static String callWithOptions(String options) {
        return CommandBase.callWithOptions(new Diffraction_AE_Train(), options);
    }

    @Override
    void body() {
        Options o = options("width=32 embedding=32 epochs=10 output=[/path/dae.safetensors]");
        addInputFields(o, true);
        o.addNumber("Width (conv channels; paper 128)", 32, 0);
        o.addNumber("Embedding (channels)", 32, 0);
        o.addString("Pools (max-pooling factors, e.g. 2,2; empty = bottleneck 8 x 8)", "", 12);
        o.addNumber("Epochs", 10, 0);
        o.addNumber("Batch (mini-batch size)", 32, 0);
        o.addNumber("Lr (Adam learning rate)", 3e-5, 8);
        o.addCheckbox("Cyclic (triangular CyclicLR between lr and max_lr)", false);
        o.addNumber("Max_lr", 1e-4, 8);
        o.addNumber("Step_size (epochs of the rising half)", 15, 0);
        o.addNumber("L1 (activity weight)", 1e-5, 8);
        o.addNumber("Contrastive (weight)", 0, 6);
        o.addNumber("Divergence (weight)", 0, 6);
        o.addNumber("Stride (train on every N-th scan position)", 1, 0);
        o.addNumber("Fraction (random fraction of them)", 1, 4);
        o.addNumber("Seed", 1, 0);
        o.addString("Output model file (.safetensors)", "", 40);
        o.addNumber("Threads (0 = ImageJ setting)", 0, 0);
        if (!o.show()) return;
        readInputFields(o, true);
        int width = o.nextInt(), embedding = o.nextInt();
        String pools = o.nextString();
        int epochs = o.nextInt(), batch = o.nextInt();
        double lr = o.nextNumber();
        boolean cyclic = o.nextBoolean();
        double maxLr = o.nextNumber();
        int step = o.nextInt();
        double l1 = o.nextNumber(), contrastive = o.nextNumber(), divergence = o.nextNumber();
        int stride = o.nextInt();
        double fraction = o.nextNumber();
        int seed = o.nextInt();
        String output = o.nextString();
        int threads = o.nextInt();
        check(o);
        resolveInput();
        requireRange("Width", width, 1, 4096);
        requireRange("Embedding", embedding, 1, 4096);
        if (!pools.isEmpty() && !pools.matches("\\s*\\d+(\\s*,\\s*\\d+)*\\s*"))
            throw fail("Pools must be integers separated by commas (e.g. 2,2,3), not '" + pools + "'.");
        requireRange("Epochs", epochs, 1, 100000000);   // the engine's range
        requireRange("Batch", batch, 1, 65536);
        if (!(lr >= 1e-9 && lr <= 9.99) || !(maxLr >= 1e-9 && maxLr <= 9.99)) throw fail("Learning rates must be 1e-9..9.99.");
        requireRange("Step size", step, 1, 100000000);
        if (!(l1 >= 0) || !(contrastive >= 0) || !(divergence >= 0)) throw fail("The L1, contrastive and divergence weights must be >= 0.");
        requireRange("Stride", stride, 1, 65536);
        if (!(fraction > 0 && fraction <= 1)) throw fail("Fraction must be in (0, 1], not " + fraction + ".");
        outputModel(output, "dae.safetensors");
        int thr = threadsArg(threads);
        begin("diffraction-ae", "train");
        inputArgs();
        arg("width", width);
        arg("embedding", embedding);
        if (!pools.isEmpty()) arg("pools", pools.replaceAll("\\s", ""));
        arg("epochs", epochs);
        arg("batch", batch);
        arg("lr", lr);
        if (cyclic) {
            flag("cyclic");
            arg("max-lr", maxLr);
            arg("step-size", step);
        }
        arg("l1", l1);
        arg("contrastive", contrastive);
        arg("divergence", divergence);
        arg("stride", stride);
        arg("fraction", fraction);
        arg("seed", seed);
        arg("threads", thr);
        execute("Diffraction autoencoder", epochs);
        keep("model.safetensors", output);
        showResult("embedding.tif", base, "embedding", scanCal(), "fire");
        showResult("apertures.tif", base, "apertures", bin.equals("1") ? detectorCal() : null, null);
        plotCsv("loss.csv", base, "diffraction loss", "loss", 1);
        logSummary(" -> " + output);
    }
}
