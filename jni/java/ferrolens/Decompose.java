package ferrolens;

import ij.ImagePlus;

import java.util.Locale;

/**
 * Decompose > PCA... / NMF... on the current spectral grid (engine: ferrolens decompose pca|nmf).
 * Outputs: "&lt;grid&gt; components" (Plot) + table, "&lt;grid&gt; loadings" stack.
 */
abstract class Decompose extends EngineCommand {
    static final String[] AXES = {"auto", "Z", "T"};
    static final String[] INITS = {"nndsvda", "random"};

    abstract boolean nmf();

    @Override
    void body() {
        ImagePlus imp = currentStack("spectral grid (X x Y with the curves on Z or T)", MIN_POINTS);
        Options o = options(nmf() ? "components=3 max=200 seed=1" : "components=3");
        o.addNumber("Components", 3, 0);
        o.addChoice("Axis (spectral)", AXES, "auto");
        if (nmf()) {
            o.addNumber("Max_iterations", 200, 0);
            o.addNumber("Tolerance (relative)", 1e-4, 6);
            o.addChoice("Initialisation", INITS, "nndsvda");
            o.addCheckbox("Shift negative data to >= 0 (signed curves)", false);
            o.addNumber("Seed", 1, 0);
        }
        o.addNumber("Threads (0 = ImageJ setting)", 0, 0);
        if (!o.show()) return;
        int k = o.nextInt();
        String axis = o.nextChoice(AXES);
        int maxIter = 0, seed = 0;
        double tol = 0;
        String init = null;
        boolean shift = false;
        if (nmf()) {
            maxIter = o.nextInt();
            tol = o.nextNumber();
            init = o.nextChoice(INITS);
            shift = o.nextBoolean();
            seed = o.nextInt();
        }
        int threads = o.nextInt();
        check(o);
        requireRange("Components", k, 1, 4096);
        if (nmf()) requireRange("Max iterations", maxIter, 1, MAX_ITERATIONS);
        if (nmf() && !(tol >= 0 && tol <= 1)) throw fail("Tolerance must be 0..1.");
        if (!axis.equals("auto") && (axis.equals("Z") ? imp.getNSlices() : imp.getNFrames()) < 2)
            throw fail("'" + imp.getTitle() + "' has a single plane along " + axis + ".");
        if (axis.equals("auto") && imp.getNSlices() > 1 && imp.getNFrames() > 1)
            throw fail("'" + imp.getTitle() + "' has both Z and T: choose the spectral axis (axis=Z or axis=T).");
        int thr = threadsArg(threads);
        String base = stripExtension(imp.getTitle());
        begin("decompose", nmf() ? "nmf" : "pca");
        String in = saveInput(imp, "grid", false);
        arg("input", in);
        arg("out", out().getPath());
        arg("components", k);
        arg("axis", axis.toLowerCase(Locale.ROOT));
        if (nmf()) {
            arg("max-iter", maxIter);
            arg("tol", tol);
            arg("init", init);
            if (shift) flag("shift");
            arg("seed", seed);
        }
        arg("threads", thr);
        execute(nmf() ? "NMF" : "PCA", 0);
        plotCsv("components.csv", base, "components", nmf() ? "component (H row)" : "component (eigenvector)", 0);
        showCsv("components.csv", base, "components table");
        showResult("loadings.tif", base, "loadings", imp.getCalibration(), "fire");
        logSummary(" '" + imp.getTitle() + "'");
    }
}
