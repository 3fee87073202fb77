package ferrolens;

import ij.ImagePlus;
import ij.gui.Roi;
import ij.plugin.frame.RoiManager;

/**
 * Plugins &gt; Ferrolens &gt; Walls &gt; Add Wall Label: the current line / segmented / freehand line ROI is added
 * to the ROI Manager named "wall N" (N = number of wall labels so far + 1). No dialog, so the macro recorder
 * records {@code run("Add Wall Label");}. Bind a key with Plugins &gt; Shortcuts &gt; Add Shortcut... (command
 * "Add Wall Label"). Save/load the labels with the ROI Manager's own More &gt; Save... / Open... (.zip).
 */
public class Walls_Add_Label extends CommandBase {
    @Override
    String commandName() { return "Add Wall Label"; }

    public static String callWithOptions(String options) {
        return CommandBase.callWithOptions(new Walls_Add_Label(), options);
    }

    @Override
    public void run(String arg) {
        guarded(new Runnable() {
            @Override
            public void run() { add(); }
        });
    }

    private void add() {
        ImagePlus imp = ij.WindowManager.getCurrentImage();
        if (imp == null) throw fail("No image is open: open the image and draw a line along a domain wall first.");
        Roi roi = imp.getRoi();
        if (roi == null || !roi.isLine())
            throw fail("'" + imp.getTitle() + "' has no line selection: draw a straight, segmented or freehand line along a wall first.");
        if (roi.getLength() <= 0) throw fail("The line selection on '" + imp.getTitle() + "' is empty (zero length).");
        RoiManager rm = EngineCommand.roiManager(true);
        int n = 0;
        for (Roi r : rm.getRoisAsArray()) if (r.getName() != null && r.getName().startsWith("wall ")) n++;
        Roi copy = (Roi) roi.clone();
        String name = "wall " + (n + 1);
        copy.setName(name);
        if (imp.getStackSize() > 1) copy.setPosition(imp.getCurrentSlice());
        rm.addRoi(copy);
        rm.rename(rm.getCount() - 1, name);
        ij.IJ.showStatus("Add Wall Label: " + name + " (" + rm.getCount() + " ROIs in the ROI Manager)");
    }
}
