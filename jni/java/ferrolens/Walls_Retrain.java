package ferrolens;

/**
 * Plugins &gt; Ferrolens &gt; Walls &gt; Re-train Wall Ensemble... (engine: ferrolens walls retrain): fine-tunes
 * every member of a wall ensemble on new or corrected labels (same inputs as Train Wall Ensemble). The
 * model is copied to the output path (may be the input model); "&lt;images&gt; wall retrain loss" is shown.
 * Macro: {@code run("Re-train Wall Ensemble...", "model=[/p/walls.safetensors] images=[pfm.tif] masks=[pfm wall mask]
 * iterations=100 output=[/p/walls2.safetensors]")}.
 */
public class Walls_Retrain extends WallsModel {
    @Override
    String commandName() { return "Re-train Wall Ensemble"; }

    public static String callWithOptions(String options) {
        return CommandBase.callWithOptions(new Walls_Retrain(), options);
    }

    @Override
    void body() {
        Options o = options("model=[/path/walls.safetensors] images=[pfm.tif] masks=[pfm wall mask] iterations=100 output=[/path/walls2.safetensors]");
        o.addString("Model file (wall ensemble .safetensors)", "", 40);
        addPairFields(o);
        o.addNumber("Iterations (mini-batches per member)", 100, 0);
        o.addString("Output model file (.safetensors)", "", 40);
        o.addNumber("Threads (0 = ImageJ setting)", 0, 0);
        if (!o.show()) return;
        String model = o.nextString();
        String images = o.nextString(), masks = o.nextString(), folder = o.nextString();
        int iterations = o.nextInt();
        String output = o.nextString();
        int threads = o.nextInt();
        check(o);
        modelFile(model, "walls.safetensors", "Walls > Train Wall Ensemble");
        requireRange("Iterations", iterations, 1, 10000000);   // the engine's range
        outputModel(output, "walls.safetensors");
        int thr = threadsArg(threads);
        begin("walls", "retrain");
        arg("model", model);
        pairArgs(images, masks, folder);
        arg("out", out().getPath());
        arg("iterations", iterations);
        arg("threads", thr);
        execute("Re-train walls", 0);
        keep("model.safetensors", output);
        plotLoss("wall retrain loss");
        logSummary(" -> " + output);
    }
}
