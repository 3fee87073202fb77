package ferrolens;

import ij.ImagePlus;
import ij.measure.Calibration;

/**
 * Shared input of the 4D-STEM commands: an open 4D hyperstack (detector pattern = image, scan x on Z,
 * scan y on T) chosen by title (empty: the current image), or a TIFF/BigTIFF file path for data larger
 * than memory (read by the engine, never opened in ImageJ).
 */
abstract class Stem4D extends EngineCommand {
    static final String[] BINS = {"1", "2", "4"};
    String title, file, bin; // the input fields
    ImagePlus data;          // null when a file is used
    String base;
    int scanX, scanY;        // 0 when unknown (file input)

    /** Input image title and file, and (binning) the detector binning. */
    void addInputFields(Options o, boolean binning) {
        o.addString("Input image title (empty = current image)", "", 24);
        o.addString("File (TIFF path instead of an open image)", "", 40);
        if (binning) o.addChoice("Binning (detector)", BINS, "1");
    }

    /** Reads the fields of addInputFields (same binning); without binning the bin is 1. */
    void readInputFields(Options o, boolean binning) {
        title = o.nextString();
        file = o.nextString();
        bin = binning ? o.nextChoice(BINS) : "1";
    }

    /** Checks the input fields: the file exists, or the image is a one-channel stack (scan x on Z, y on T). */
    void resolveInput() {
        if (!file.isEmpty()) {
            existingFile(file, "4D-STEM file");
            data = null;
            base = stripExtension(new java.io.File(file).getName());
            return;
        }
        data = image(title, "4D-STEM hyperstack (pattern = image, scan x on Z, scan y on T)");
        if (data.getNChannels() > 1)
            throw fail("'" + data.getTitle() + "' has " + data.getNChannels() + " channels: a 4D-STEM hyperstack has one pattern per scan position (scan x on Z, scan y on T).");
        if (data.getStackSize() < 2)
            throw fail("'" + data.getTitle() + "' has a single plane: a 4D-STEM hyperstack has one pattern per scan position (scan x on Z, scan y on T).");
        scanX = data.getNSlices();
        scanY = data.getNFrames();
        base = stripExtension(data.getTitle());
    }

    /** Writes the input (when an image) and adds --input, --bin and --out. Call after begin(). */
    void inputArgs() {
        arg("input", data != null ? saveInput(data, "stem4d", false) : file);
        if (!bin.equals("1")) arg("bin", bin);
        arg("out", out().getPath());
    }

    /** Calibration for scan-sized outputs (the input's z/frame steps are the scan steps). */
    Calibration scanCal() {
        if (data == null) return null;
        Calibration c = data.getCalibration(), s = new Calibration();
        s.pixelWidth = c.pixelDepth;
        s.pixelHeight = c.frameInterval > 0 ? c.frameInterval : c.pixelDepth;
        s.setUnit(c.getUnit());
        return s;
    }

    Calibration detectorCal() { return data == null ? null : data.getCalibration(); }
}
