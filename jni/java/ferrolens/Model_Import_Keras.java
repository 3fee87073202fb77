package ferrolens;

import ij.IJ;
import ij.io.OpenDialog;
import ij.io.SaveDialog;

import java.io.File;

/**
 * Plugins > Ferrolens > Model > Import Keras HDF5 Model: the published Keras 2.1 LSTM autoencoder weights
 * (Agar et al. 2019) into a Ferrolens model file.
 * Macro: {@code run("Import Keras HDF5 Model", "hdf5=[/p/weights.h5] steps=96 decoder=[] save=[/p/model.safetensors]")}.
 */
public class Model_Import_Keras extends CommandBase {
    @Override
    String commandName() { return "Import Keras HDF5 Model"; }

    @Override
    public void run(String arg) {
        guarded(new Runnable() {
            @Override
            public void run() { importModel(); }
        });
    }

    public static String callWithOptions(String options) {
        return CommandBase.callWithOptions(new Model_Import_Keras(), options);
    }

    private void importModel() {
        Options o = new Options("Import Keras HDF5 Model");
        if (o.headlessWithoutOptions()) throw fail("Headless use needs macro options: hdf5=[...] steps=96 save=[...].");
        o.addString("Hdf5 file (Keras weights; empty: choose)", "", 40);
        o.addNumber("Steps (curve length)", 96, 0);
        o.addString("Decoder hdf5 (optional retrained decoder)", "", 40);
        o.addString("Save model to (empty: ask)", "", 40);
        if (!o.show()) return;
        String h5 = o.nextString();
        int steps = o.nextInt();
        String decoder = o.nextString();
        String save = o.nextString();
        if (o.error() != null) throw fail(o.error());
        if (steps < MIN_POINTS || steps > 1000000) throw fail("Steps (curve length) must be " + MIN_POINTS + "..1000000, not " + steps + ".");
        if (h5.isEmpty()) {
            if (o.fromMacro()) throw fail("No HDF5 file given: add hdf5=[/path/weights.h5].");
            OpenDialog od = new OpenDialog("Keras HDF5 weights", null);
            if (od.getFileName() == null) return;
            h5 = new File(od.getDirectory(), od.getFileName()).getPath();
        }
        if (!new File(h5).isFile()) throw fail("HDF5 file not found: " + h5);
        if (!decoder.isEmpty() && !new File(decoder).isFile()) throw fail("Decoder HDF5 file not found: " + decoder);
        if (save.isEmpty()) {
            if (o.fromMacro()) throw fail("No output file given: add save=[/path/model.safetensors].");
            SaveDialog sd = new SaveDialog("Save the imported model", Spectral_AE_Train.stripExt(new File(h5).getName()), ".safetensors");
            if (sd.getFileName() == null) return;
            save = new File(sd.getDirectory(), sd.getFileName()).getPath();
        }
        File parent = new File(save).getAbsoluteFile().getParentFile();
        if (parent == null || !parent.isDirectory()) throw fail("The folder for the model file does not exist: " + parent);
        int thr = threads(0);
        try (SaeModel m = SaeModel.importKeras(h5, steps, thr)) {
            if (!decoder.isEmpty()) m.importKerasDecoder(decoder, thr);
            m.save(save, thr);
            IJ.log("Ferrolens: imported " + h5 + " -> " + save + " (" + m.paramCount() + " parameters; " + m.config() + ")");
        } catch (FerrolensException e) {
            throw failEngine("Importing " + new File(h5).getName(), e);
        }
    }
}
