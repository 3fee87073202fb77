// ctest ij_batch_walls: macros/batch_walls.ijm on a folder of two tiny PFM images (64 x 64 crops of
// sample-stacks/pfm_walls_train.tif): a.tif labelled by a mask a_mask.tif, b.tif by an ROI set b.zip (two line
// ROIs). First run: train a tiny ensemble (2 members, 5 iterations, 4 filters, patch 32) and segment both;
// second run: apply that model to the folder. Checks every output file exists with the right size and values.
// Argument: source_dir:out_dir. Sentinels RESULT / DONE / TEST FAIL.
a = split(getArgument(), ":");
src = a[0]; out = a[1];
in = out + "/in";
File.makeDirectory(out); File.makeDirectory(in);
setBatchMode(true);
function fail(msg) { print("TEST FAIL " + msg); exit; }
function crop(path, plane, x, y, name) {
  open(path); id = getImageID();
  setSlice(plane); run("Duplicate...", "title=" + name);
  makeRectangle(x, y, 64, 64); run("Crop"); run("Select None");
  saveAs("Tiff", in + "/" + name + ".tif"); close();
  selectImage(id); close();
}
function checkImage(path, minv, maxv) {
  if (!File.exists(path)) fail("missing " + path);
  open(path);
  if (getWidth() != 64 || getHeight() != 64 || nSlices != 1)
    fail(path + " is " + getWidth() + "x" + getHeight() + "x" + nSlices + ", expected 64x64x1");
  getStatistics(area, mean, min, max);
  if (min < minv || max > maxv) fail(path + " values " + min + ".." + max + " outside " + minv + ".." + maxv);
  close();
}
stacks = src + "/sample-stacks/";
// leftovers of an earlier run must not count
list = getFileList(in); for (i = 0; i < list.length; i++) ok = File.delete(in + "/" + list[i]);
crop(stacks + "pfm_walls_train.tif", 1, 64, 64, "a");
crop(stacks + "pfm_walls_train_mask.tif", 1, 64, 64, "a_mask");
crop(stacks + "pfm_walls_train.tif", 2, 0, 0, "b");
newImage("labels", "8-bit black", 64, 64, 1);
roiManager("reset");
makeLine(5, 10, 60, 14); roiManager("Add");
makeLine(20, 2, 30, 40, 50, 62); roiManager("Add");
roiManager("Save", in + "/b.zip");
roiManager("reset"); close();

runMacro(src + "/macros/batch_walls.ijm", in + ":" + out + "/train:train:2:5:4:32:0.5:3:1");
runMacro(src + "/macros/batch_walls.ijm", in + ":" + out + "/apply:" + out + "/train/walls.safetensors");

m = out + "/train/walls.safetensors";
if (!File.exists(m) || File.length(m) < 1000) fail("no model " + m);
print("RESULT model " + File.length(m) + " bytes");
checkImage(out + "/train/training/a_mask.tif", 0, 255);
checkImage(out + "/train/training/b_mask.tif", 0, 255);
open(out + "/train/training/b_mask.tif"); getHistogram(v, counts, 256);
if (counts[255] < 100 || counts[0] + counts[255] != 64 * 64) fail("b.zip rasterised to " + counts[255] + " wall pixels (0/255 expected, ~ 3 x 130)");
close();
runs = newArray("train", "apply");
names = newArray("a", "b");
sfx = newArray("_wall_mean.tif", "_wall_uncertainty.tif", "_wall_mask.tif", "_wall_skeleton.tif");
for (r = 0; r < runs.length; r++) for (i = 0; i < names.length; i++) for (k = 0; k < sfx.length; k++)
  checkImage(out + "/" + runs[r] + "/" + names[i] + sfx[k], 0, 1);
print("RESULT batch walls outputs 2x2x4 files 64x64");
// applying the trained model again gives the same maps as the training run's own segmentation
for (i = 0; i < names.length; i++) {
  open(out + "/train/" + names[i] + "_wall_mean.tif"); t1 = getTitle();
  open(out + "/apply/" + names[i] + "_wall_mean.tif"); t2 = getTitle(); rename("apply_" + t2); t2 = getTitle();
  imageCalculator("Difference create 32-bit", t1, t2);
  getStatistics(area, mean, min, max);
  if (max > 1e-5) fail("apply differs from the training run for " + names[i] + " by " + max);
  close(); close(t1); close(t2);
}
s = File.openAsString(out + "/apply/wall_summary.csv");
lines = split(s, "\n");
if (lines.length != 3 || !startsWith(lines[1], "a,1,") || !startsWith(lines[2], "b,1,")) fail("wall_summary.csv: " + s);
print("RESULT summary ok");
print("DONE batch walls");
