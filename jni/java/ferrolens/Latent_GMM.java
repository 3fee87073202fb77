package ferrolens;

import ij.IJ;
import ij.ImagePlus;

import java.io.File;

/**
 * Plugins &gt; Ferrolens &gt; Latent &gt; Gaussian Mixture... on the current latent/embedding stack
 * (engine: ferrolens latent gmm). Outputs: "&lt;stack&gt; clusters" (label LUT), "&lt;stack&gt; centroids"
 * table, "&lt;stack&gt; latent scatter", with a structure image "&lt;stack&gt; nearest patches" (montage), with a
 * spectral-AE or im2spec model "&lt;stack&gt; decoded centroids" (Plot), with a spec2im model "&lt;stack&gt; decoded
 * centroid patches" (montage) and "&lt;stack&gt; latent grid" (N x N tiles decoded from a grid spanning latent dims
 * 0 (left to right) and 1 (bottom to top); the values are in the Log).
 * Macro: {@code run("Latent Gaussian Mixture...", "components=3 structure=[pfm.tif] patch=16 nearest=20 model=[/p/m.safetensors] latent_grid=8")}.
 */
public class Latent_GMM extends EngineCommand {
    @Override
    String commandName() { return "Latent Gaussian Mixture"; }

    public static String callWithOptions(String options) {
        return CommandBase.callWithOptions(new Latent_GMM(), options);
    }

    @Override
    void body() {
        ImagePlus imp = currentStack("latent/embedding stack (X x Y x d)", 1);
        Options o = options("components=3");
        o.addNumber("Components (clusters)", 3, 0);
        o.addNumber("Max_iterations", 100, 0);
        o.addNumber("Tolerance (log-likelihood)", 1e-3, 6);
        o.addNumber("Regularisation (covariance diagonal)", 1e-6, 9);
        o.addString("Structure image title (optional)", "", 24);
        o.addNumber("Patch size", 16, 0);
        o.addNumber("Nearest pixels per centroid", 20, 0);
        o.addString("Model file (.safetensors, optional)", "", 40);
        o.addNumber("Latent_grid tiles per side (spec2im model; 0 = none)", 8, 0);
        o.addNumber("Seed", 1, 0);
        o.addNumber("Threads (0 = ImageJ setting)", 0, 0);
        if (!o.show()) return;
        int k = o.nextInt(), maxIter = o.nextInt();
        double tol = o.nextNumber(), reg = o.nextNumber();
        String structure = o.nextString();
        int patch = o.nextInt(), nearest = o.nextInt();
        String model = o.nextString();
        int grid = o.nextInt();
        int seed = o.nextInt(), threads = o.nextInt();
        check(o);
        requireRange("Components", k, 1, 4096);
        if ((long) imp.getWidth() * imp.getHeight() < k)
            throw fail("'" + imp.getTitle() + "' has fewer pixels than clusters (" + k + ").");
        requireRange("Max iterations", maxIter, 1, MAX_ITERATIONS);
        if (!(tol > 0) || !(reg >= 0)) throw fail("Tolerance must be > 0 and regularisation >= 0.");
        ImagePlus st = null;
        if (!structure.isEmpty()) {
            st = image(structure, "structure image");
            requireSinglePlane(st, "structure image");
            requireSameSize(imp, st, "structure image");
            if (patch < 1 || patch > Math.min(st.getWidth(), st.getHeight()))
                throw fail("Patch size must be 1.." + Math.min(st.getWidth(), st.getHeight()) + ", not " + patch + ".");
            requireRange("Nearest pixels per centroid (at most the pixels of the image)", nearest, 1, st.getWidth() * st.getHeight());
        }
        if (!model.isEmpty()) existingFile(model, "model file");
        requireRange("Latent grid tiles per side", grid, 0, 128);
        int thr = threadsArg(threads);
        String base = stripExtension(imp.getTitle());
        begin("latent", "gmm");
        // NaN pixels are allowed: im2spec/spec2im latent maps are NaN at the frame edge (the engine leaves those
        // pixels out of the mixture, cluster 0)
        arg("input", saveInput(imp, "latent", true));
        arg("out", out().getPath());
        arg("components", k);
        arg("max-iter", maxIter);
        arg("tol", tol);
        arg("reg-covar", reg);
        if (st != null) {
            arg("structure", saveInput(st, "structure", false));
            arg("patch", patch);
            arg("nearest", nearest);
        }
        if (!model.isEmpty()) {
            arg("model", model);
            if (grid != 8) arg("grid", grid);
        }
        arg("seed", seed);
        arg("threads", thr);
        execute("Gaussian mixture", 0);
        showLabels("clusters.tif", base, "clusters", imp.getCalibration());
        showCsv("centroids.csv", base, "centroids");
        showResult("scatter.tif", base, "latent scatter", null, "fire");
        File np = new File(out(), "nearest_patches.tif");
        if (np.isFile()) montage(IJ.openImage(np.getPath()), base, "nearest patches");
        plotCsv("decoded_centroids.csv", base, "decoded centroids", "decoded curve", 0);
        File dp = new File(out(), "decoded_centroids.tif");
        if (dp.isFile()) montage(IJ.openImage(dp.getPath()), base, "decoded centroid patches");
        if (showResult("latent_grid.tif", base, "latent grid", imp.getCalibration(), null) != null)
            logSummary(" '" + imp.getTitle() + "'"); // grid_z0 / grid_z1: the latent values of the tiles
        else
            logDone();
    }
}
