package ferrolens;

import ij.IJ;
import ij.ImagePlus;
import ij.io.OpenDialog;

import java.io.File;
import java.util.Locale;

/**
 * Plugins > Ferrolens > Spectral Autoencoder > Spectral Autoencoder Apply.
 * Macro: {@code run("Spectral Autoencoder Apply", "model=[/path/model.safetensors] threads=0 traverse=10 others=zero")}
 * plus {@code axis=Z|T} when both Z and T are non-singleton.
 */
public class Spectral_AE_Apply extends CommandBase {
    @Override
    String commandName() { return "Spectral Autoencoder Apply"; }

    @Override
    public void run(String arg) {
        guarded(new Runnable() {
            @Override
            public void run() { apply(); }
        });
    }

    /** true headless: {@code call("ferrolens.Spectral_AE_Apply.callWithOptions", "model=[/p/m.safetensors]")}. */
    public static String callWithOptions(String options) {
        return CommandBase.callWithOptions(new Spectral_AE_Apply(), options);
    }

    private void apply() {
        ImagePlus imp = requireImage();
        String auto = autoAxis(imp);
        Options o = new Options("Spectral Autoencoder Apply");
        if (o.headlessWithoutOptions()) throw fail("Headless use needs macro options, e.g. \"model=[/path/model.safetensors]\".");
        o.addString("Model file (.safetensors; empty: choose)", "", 40);
        o.addNumber("Threads (0 = ImageJ setting)", 0, 0);
        o.addNumber("Traverse levels", 10, 0);
        o.addChoice("Others at (during traversal)", Spectral_AE_Train.OTHERS, "zero");
        if (auto == null) o.addChoice("Axis (spectral)", Spectral_AE_Train.AXES, "Z");
        if (!o.show()) return;
        String path = o.nextString();
        int threads = o.nextInt();
        int levels = o.nextInt();
        String others = o.nextChoice(Spectral_AE_Train.OTHERS);
        String chosen = auto == null ? o.nextChoice(Spectral_AE_Train.AXES) : null;
        if (o.error() != null) throw fail(o.error());
        requireThreads(threads);
        requireRange("Traverse levels", levels, 2, Spectral_AE_Train.MAX_LEVELS);
        if (path.isEmpty()) {
            if (o.fromMacro()) throw fail("No model file given: add model=[/path/model.safetensors].");
            OpenDialog od = new OpenDialog("Spectral autoencoder model", null);
            if (od.getFileName() == null) return;
            path = new File(od.getDirectory(), od.getFileName()).getPath();
        }
        File f = new File(path);
        if (!f.isFile()) throw fail("Model file not found: " + path);
        String axis = resolveAxis(imp, auto, chosen);
        Spectra s = extract(imp, axis);
        int thr = threads(threads);
        logInput(s);
        // a file that is no spectral-autoencoder model (another family, a newer format) is refused while
        // loading, with the engine's sentence: the curve-length hint below is only for a model that loads
        SaeModel loaded;
        try {
            loaded = SaeModel.load(path, thr);
        } catch (FerrolensException e) {
            throw fail("Cannot use the model " + f.getName() + ": " + e.getMessage() + ".");
        }
        try (SaeModel m = loaded) {
            double[] mv = m.axisValues();
            if (s.axisSource.equals("index") && mv != null && mv.length == s.steps) {
                s.axisValues = mv;
                s.axisUnit = m.axisUnit();
                s.axisLabel = m.axisLabel().isEmpty() ? "value" : m.axisLabel();
                s.axisSource = "model";
            }
            produceOutputs(imp, s, m, levels, others.equals("mean"), thr, "Spectral AE apply");
        } catch (FerrolensException e) {
            if (e.isMismatch())
                throw fail("The model " + f.getName() + " does not fit '" + s.title + "' (" + s.steps + " points along "
                        + axis + "): " + e.getMessage() + ". Use a model trained on data with the same curve length.");
            throw failEngine("Applying the model " + f.getName(), e);
        }
        IJ.log(String.format(Locale.ROOT, "Spectral AE apply '%s' with %s: active channels %d/%d, mean MSE %.5g",
                s.title, f.getName(), lastActive, lastLatent, lastMeanMse));
        IJ.showStatus("Spectral AE apply: done");
    }
}
