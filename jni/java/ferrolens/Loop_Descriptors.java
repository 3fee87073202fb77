package ferrolens;

import ij.ImagePlus;

/**
 * Plugins &gt; Ferrolens &gt; Loops &gt; Loop Descriptors... on the current loop grid (one hysteresis loop per
 * pixel along Z or T; bias from the slice labels, else the triangle waveform of amplitude vmax).
 * Outputs: "&lt;grid&gt; loop descriptors" (11 maps) and the "&lt;grid&gt; loop descriptors table".
 * Macro: {@code run("Loop Descriptors...", "vmax=0 threads=0")}.
 */
public class Loop_Descriptors extends EngineCommand {
    @Override
    String commandName() { return "Loop Descriptors"; }

    public static String callWithOptions(String options) {
        return CommandBase.callWithOptions(new Loop_Descriptors(), options);
    }

    /** The CLI asks for "--vmax V" when the planes carry no bias labels: say it with the dialog's field. */
    @Override
    String explain(String msg) {
        int i = msg.indexOf(" carry no bias labels");
        if (i < 0 || !msg.startsWith("the slices of ")) return msg;
        return msg.substring("the slices of ".length(), i) + " has no bias labels on its planes (like \"1.250 V\"): set Vmax (vmax) > 0 "
                + "to assume the triangle waveform 0 -> +vmax -> -vmax -> 0.";
    }

    @Override
    void body() {
        ImagePlus imp = currentStack("loop grid (one loop per pixel along Z or T)", MIN_POINTS);
        if (imp.getNSlices() > 1 && imp.getNFrames() > 1)
            throw fail("'" + imp.getTitle() + "' has both Z and T: the loop grid needs the loops on one axis.");
        Options o = options("vmax=5");
        o.addNumber("Vmax (V; 0 = bias from the slice labels)", 0, 3);
        o.addNumber("Threads (0 = ImageJ setting)", 0, 0);
        if (!o.show()) return;
        double vmax = o.nextNumber();
        int threads = o.nextInt();
        check(o);
        if (!(vmax >= 0) || Double.isInfinite(vmax)) throw fail("Vmax must be >= 0 (0: bias from the slice labels).");
        int thr = threadsArg(threads);
        String base = stripExtension(imp.getTitle());
        begin("loops", "descriptors");
        arg("input", saveInput(imp, "loops", false));
        arg("out", out().getPath());
        if (vmax > 0) arg("vmax", vmax);
        arg("threads", thr);
        execute("Loop descriptors", 0);
        showResult("descriptors.tif", base, "loop descriptors", imp.getCalibration(), "fire");
        showCsv("descriptors.csv", base, "loop descriptors table");
        logDone();
    }
}
