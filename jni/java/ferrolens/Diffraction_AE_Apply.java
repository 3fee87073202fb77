package ferrolens;

/**
 * Plugins &gt; Ferrolens &gt; Diffraction Autoencoder &gt; Apply... (engine: ferrolens diffraction-ae apply): the
 * embedding maps and virtual-aperture patterns of every scan position with a trained model (its detector
 * binning is applied). Outputs: "&lt;data&gt; embedding", "&lt;data&gt; apertures".
 * Macro: {@code run("Diffraction Autoencoder Apply...", "model=[/p/dae.safetensors]")}.
 */
public class Diffraction_AE_Apply extends Stem4D {
    @Override
    String commandName() { return "Diffraction Autoencoder Apply"; }

    public static String callWithOptions(String options) {
        return CommandBase.callWithOptions(new Diffraction_AE_Apply(), options);
    }

    @Override
    void body() {
        Options o = options("model=[/path/dae.safetensors]");
        addInputFields(o, false);
        o.addString("Model file (diffraction autoencoder .safetensors)", "", 40);
        o.addNumber("Threads (0 = ImageJ setting)", 0, 0);
        if (!o.show()) return;
        readInputFields(o, false);
        String model = o.nextString();
        int threads = o.nextInt();
        check(o);
        resolveInput();
        modelFile(model, "dae.safetensors", "Diffraction Autoencoder Train");
        int thr = threadsArg(threads);
        begin("diffraction-ae", "apply");
        inputArgs();
        arg("model", model);
        arg("threads", thr);
        execute("Diffraction autoencoder", 0);
        showResult("embedding.tif", base, "embedding", scanCal(), "fire");
        showResult("apertures.tif", base, "apertures", null, null);
        logSummary(" '" + base + "'");
    }
}
