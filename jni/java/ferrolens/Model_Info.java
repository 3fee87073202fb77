package ferrolens;

import ij.IJ;
import ij.io.OpenDialog;

import java.io.File;

/**
 * Plugins > Ferrolens > Model > Ferrolens Model Info: one line about a model file in the Log.
 * Macro: {@code run("Ferrolens Model Info", "model=[/p/model.safetensors] json")}.
 */
public class Model_Info extends CommandBase {
    @Override
    String commandName() { return "Ferrolens Model Info"; }

    @Override
    public void run(String arg) {
        guarded(new Runnable() {
            @Override
            public void run() { info(); }
        });
    }

    public static String callWithOptions(String options) {
        return CommandBase.callWithOptions(new Model_Info(), options);
    }

    private void info() {
        Options o = new Options("Ferrolens Model Info");
        if (o.headlessWithoutOptions()) throw fail("Headless use needs macro options: model=[...].");
        o.addString("Model file (empty: choose)", "", 40);
        o.addCheckbox("Json output", false);
        if (!o.show()) return;
        String path = o.nextString();
        boolean json = o.nextBoolean();
        if (path.isEmpty()) {
            if (o.fromMacro()) throw fail("No model file given: add model=[/path/model.safetensors].");
            OpenDialog od = new OpenDialog("Ferrolens model", null);
            if (od.getFileName() == null) return;
            path = new File(od.getDirectory(), od.getFileName()).getPath();
        }
        if (!new File(path).isFile()) throw fail("Model file not found: " + path);
        try {
            IJ.log(SaeModel.info(path, json));
        } catch (FerrolensException e) {
            throw failEngine("Reading " + new File(path).getName(), e);
        }
    }
}
