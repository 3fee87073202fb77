package ferrolens;

import ij.IJ;
import ij.ImagePlus;
import ij.io.SaveDialog;

import java.io.File;
import java.util.Locale;

/**
 * Plugins > Ferrolens > Spectral Autoencoder > Spectral Autoencoder Train.
 * Macro: {@code run("Spectral Autoencoder Train", "layers=4 decoder_layers=4 hidden=64 bidirectional latent=16
 * l1=0.0001 dropout=0.2 batch_norm recurrent=hard_sigmoid learning_rate=0.001 batch=64 epochs=100 validation=0.1
 * patience=20 seed=42 normalisation=global threads=0 traverse=10 others=zero save=[/path/model.safetensors]");}
 * plus {@code axis=Z|T} when both Z and T are non-singleton and {@code outlier} for outlier repair.
 */
public class Spectral_AE_Train extends CommandBase {
    static final String[] ACTIVATIONS = {"hard_sigmoid", "logistic"};
    static final String[] NORMS = {"global", "per-curve", "none"};
    static final String[] OTHERS = {"zero", "mean"};
    /** Largest number of traversal levels per latent channel (Train and Apply). */
    static final int MAX_LEVELS = 1000;
    static final String[] AXES = {"Z", "T"};

    @Override
    String commandName() { return "Spectral Autoencoder Train"; }

    @Override
    public void run(String arg) {
        guarded(new Runnable() {
            @Override
            public void run() { train(); }
        });
    }

    /** true headless: {@code call("ferrolens.Spectral_AE_Train.callWithOptions", "latent=4 epochs=3")}. */
    public static String callWithOptions(String options) {
        return CommandBase.callWithOptions(new Spectral_AE_Train(), options);
    }

    private void train() {
        ImagePlus imp = requireImage();
        String auto = autoAxis(imp);
        SaeConfig d = SaeConfig.defaults();
        Options o = new Options("Spectral Autoencoder Train");
        if (o.headlessWithoutOptions()) throw fail("Headless use needs macro options, e.g. \"latent=16 epochs=100\".");
        o.addMessage("Input: " + imp.getTitle() + " (" + imp.getWidth() + " x " + imp.getHeight() + ", "
                + (auto == null ? "Z " + imp.getNSlices() + " / T " + imp.getNFrames() : auto + " " + (auto.equals("Z") ? imp.getNSlices() : imp.getNFrames()))
                + " points)");
        o.addNumber("Layers (encoder LSTM)", d.encLayers, 0);
        o.addNumber("Decoder_layers", d.decLayers, 0);
        o.addNumber("Hidden units per direction", d.hidden, 0);
        o.addCheckbox("Bidirectional", d.bidirectional);
        o.addNumber("Latent channels", d.latent, 0);
        o.addNumber("L1 activity weight", d.l1, 6);
        o.addNumber("Dropout", d.dropout, 3);
        o.addCheckbox("Batch_norm", d.batchNorm);
        o.addChoice("Recurrent activation", ACTIVATIONS, d.hardSigmoid ? ACTIVATIONS[0] : ACTIVATIONS[1]);
        o.addNumber("Learning_rate", d.learningRate, 6);
        o.addNumber("Batch size", d.batch, 0);
        o.addNumber("Epochs", d.epochs, 0);
        o.addNumber("Validation fraction", d.valSplit, 3);
        o.addNumber("Patience (epochs; 0 = off)", d.patience, 0);
        o.addNumber("Seed", d.seed, 0);
        o.addChoice("Normalisation", NORMS, NORMS[Math.max(0, Math.min(2, d.normMode))]);
        o.addCheckbox("Outlier repair (Savitzky-Golay)", d.outlierRepair);
        o.addNumber("Threads (0 = ImageJ setting)", 0, 0);
        o.addNumber("Traverse levels", 10, 0);
        o.addChoice("Others at (during traversal)", OTHERS, OTHERS[0]);
        if (auto == null) o.addChoice("Axis (spectral)", AXES, AXES[0]);
        o.addString("Save model to (empty: ask / none)", "", 40);
        if (!o.show()) return;

        SaeConfig c = d;
        c.encLayers = o.nextInt();
        c.decLayers = o.nextInt();
        c.hidden = o.nextInt();
        c.bidirectional = o.nextBoolean();
        c.latent = o.nextInt();
        c.l1 = (float) o.nextNumber();
        c.dropout = (float) o.nextNumber();
        c.batchNorm = o.nextBoolean();
        String act = o.nextChoice(ACTIVATIONS);
        c.learningRate = (float) o.nextNumber();
        c.batch = o.nextInt();
        c.epochs = o.nextInt();
        c.valSplit = (float) o.nextNumber();
        c.patience = o.nextInt();
        double seed = o.nextNumber();
        String norm = o.nextChoice(NORMS);
        c.outlierRepair = o.nextBoolean();
        int threads = o.nextInt();
        int levels = o.nextInt();
        String others = o.nextChoice(OTHERS);
        String chosenAxis = auto == null ? o.nextChoice(AXES) : null;
        String save = o.nextString();
        if (o.error() != null) throw fail(o.error());

        check(c.epochs >= 1, "Epochs must be at least 1, not " + c.epochs + ".");
        check(seed >= 0 && seed == Math.rint(seed) && seed <= 9.007199254740992E15, "The seed must be a whole number >= 0.");
        requireThreads(threads);
        requireRange("Traverse levels", levels, 2, MAX_LEVELS);
        c.seed = (long) seed;
        c.hardSigmoid = act.equals(ACTIVATIONS[0]);
        c.normMode = norm.equals("global") ? SaeConfig.NORM_GLOBAL : norm.equals("per-curve") ? SaeConfig.NORM_PER_CURVE : SaeConfig.NORM_NONE;
        try {   // the engine's ranges, before the curves are read
            SaeModel.check(c);
        } catch (IllegalArgumentException e) {
            throw fail(sentence(e.getMessage()));
        } catch (FerrolensException e) {
            throw failEngine("Checking the settings", e);
        }
        String axis = resolveAxis(imp, auto, chosenAxis);

        if (save.isEmpty() && !o.fromMacro()) {
            SaveDialog sd = new SaveDialog("Save the trained model (Cancel: don't save)", stripExt(imp.getTitle()) + "_sae", ".safetensors");
            if (sd.getFileName() != null) save = new File(sd.getDirectory(), sd.getFileName()).getPath();
        }
        if (!save.isEmpty()) {
            File parent = new File(save).getAbsoluteFile().getParentFile();
            check(parent != null && parent.isDirectory(), "The folder for the model file does not exist: " + parent);
            check(!new File(save).isDirectory(), "The model path is a folder: " + save);
        }

        Spectra s = extract(imp, axis);
        c.steps = s.steps;
        int thr = threads(threads);
        logInput(s);
        IJ.log("Ferrolens: training spectral autoencoder: " + c + " threads=" + thr);
        SaeModel.Report r;
        try (SaeModel m = SaeModel.create(c, thr)) {
            m.setAxis(s.axisValues, s.axisLabel, s.axisUnit);
            try {
                r = m.train(s.curves, s.n, s.steps, thr, ijProgress("Spectral AE", c.epochs));
            } catch (CancelledException e) {
                IJ.showProgress(1.0);
                IJ.showStatus("Spectral AE: cancelled");
                IJ.log("Ferrolens: training of '" + s.title + "' was cancelled before the first epoch ended; no model.");
                return;
            }
            produceOutputs(imp, s, m, levels, others.equals("mean"), thr, "Spectral AE");
            if (!save.isEmpty()) {
                m.save(save, thr);
                IJ.log("Ferrolens: model saved to " + save);
            }
        } catch (FerrolensException e) {
            throw failEngine("Training on '" + s.title + "'", e);
        }
        IJ.log(String.format(Locale.ROOT,
                "Spectral AE '%s': epochs run %d, best epoch %d, best val loss %.5g, %.3g s/epoch, active channels %d/%d, mean MSE %.5g%s",
                s.title, r.epochsRun, r.bestEpoch + 1, r.bestValLoss, r.secondsPerEpoch, lastActive, lastLatent, lastMeanMse,
                r.cancelled ? " (cancelled by the user: best model so far kept)" : ""));
        IJ.showStatus("Spectral AE: done");
    }

    private void check(boolean ok, String msg) {
        if (!ok) throw fail(msg);
    }

    /** "hidden units must be 1..2048 (got 3000)" -> "Hidden units must be 1..2048 (got 3000)." */
    static String sentence(String engineMessage) {
        if (engineMessage == null || engineMessage.isEmpty()) return "The engine refused these settings.";
        String m = Character.toUpperCase(engineMessage.charAt(0)) + engineMessage.substring(1);
        return m.endsWith(".") ? m : m + ".";
    }

    static String stripExt(String t) {
        int i = t.lastIndexOf('.');
        return i > 0 ? t.substring(0, i) : t;
    }
}
