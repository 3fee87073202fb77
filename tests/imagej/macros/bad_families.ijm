// ctest ij_bad_family_<case>: one bad input to a family 2-5 command per ImageJ run. The command must print
// "Ferrolens ERROR: ..." and abort (no dialog: the guard halts on one); the input pixels must not change.
// The command runs in a nested macro (eval), so this macro can check the pixels afterwards.
// Argument: case:repo_dir:out_dir.
a = split(getArgument(), ":");
c = a[0]; repo = a[1]; out = a[2];
File.makeDirectory(out);
setBatchMode(true);
function pixelSum() {
  s = 0;
  for (z = 1; z <= nSlices; z++) { setSlice(z); getStatistics(area, mean); s += mean; }
  setSlice(1);
  return d2s(s, 6);
}
stacks = repo + "/sample-stacks/";
if (c == "pca_rgb") {
  newImage("input", "RGB ramp", 16, 16, 16);
  cmd = "Decompose PCA..."; opts = "components=3";
} else if (c == "pca_single") {
  newImage("input", "32-bit ramp", 16, 16, 1);
  cmd = "Decompose PCA..."; opts = "components=3";
} else if (c == "gmm_size") {
  newImage("structure", "32-bit ramp", 20, 16, 1);
  newImage("input", "32-bit ramp", 16, 16, 3);
  cmd = "Latent Gaussian Mixture..."; opts = "components=2 structure=[structure]";
} else if (c == "stem_single") {
  newImage("input", "32-bit ramp", 24, 24, 1);
  cmd = "4D-STEM Center of Mass..."; opts = "threads=1";
} else if (c == "vdf_annulus") {
  open(stacks + "stem4d.tif"); rename("input");
  cmd = "4D-STEM Virtual Detector..."; opts = "aperture=annulus cx=12 cy=12 r_in=5 r_out=2";
} else if (c == "compare_sizes") {
  newImage("A", "8-bit white", 32, 32, 1);
  newImage("B", "8-bit white", 16, 32, 1);
  open(stacks + "stem4d.tif"); rename("input");
  cmd = "4D-STEM Compare Patterns..."; opts = "mask_a=[A] mask_b=[B]";
} else if (c == "compare_empty") {
  newImage("A", "8-bit white", 32, 32, 1);
  newImage("B", "8-bit black", 32, 32, 1);
  open(stacks + "stem4d.tif"); rename("input");
  cmd = "4D-STEM Compare Patterns..."; opts = "mask_a=[A] mask_b=[B]";
} else if (c == "loops_nan") {
  newImage("input", "32-bit ramp", 8, 8, 16);
  setSlice(3); setPixel(2, 2, NaN); setSlice(1);
  cmd = "Loop Descriptors..."; opts = "vmax=5";
} else if (c == "label_rect") {
  newImage("input", "32-bit ramp", 32, 32, 1); makeRectangle(2, 2, 10, 10);
  cmd = "Add Wall Label"; opts = "";
} else if (c == "mask_no_labels") {
  newImage("input", "32-bit ramp", 32, 32, 1);
  cmd = "Wall Labels to Mask..."; opts = "source=[ROI Manager] width=3";
} else if (c == "points_sizes") {
  newImage("mask", "8-bit black", 16, 32, 1);
  newImage("input", "32-bit ramp", 32, 32, 1);
  cmd = "Wall Measurement Points..."; opts = "mask=[mask] image=[input] every=5";
} else if (c == "segment_no_model") {
  newImage("input", "32-bit ramp", 32, 32, 1);
  cmd = "Segment Walls..."; opts = "model=[" + out + "/no_such_walls.safetensors]";
} else if (c == "train_mask_size") {
  newImage("mask", "8-bit black", 32, 64, 1); makeRectangle(10, 0, 3, 64); run("Set...", "value=255"); run("Select None");
  newImage("input", "32-bit ramp", 64, 64, 1);
  cmd = "Train Wall Ensemble..."; opts = "images=[input] masks=[mask] members=1 filters=4 iterations=2 patch=32 output=[" + out + "/w.safetensors]";
} else if (c == "live_no_simulate") {
  newImage("input", "32-bit ramp", 32, 32, 1);
  cmd = "Live Segmentation..."; opts = "model=[" + out + "/no_such_walls.safetensors]";
} else if (c == "dae_pools") {
  open(stacks + "stem4d.tif"); rename("input");
  cmd = "Diffraction Autoencoder Train..."; opts = "width=4 embedding=4 epochs=1 output=[" + out + "/d.safetensors] threads=1";
} else if (c == "im2spec_size") {
  newImage("structure", "32-bit ramp", 48, 64, 1);
  open(stacks + "loops_grid.tif"); rename("input");
  cmd = "im2spec Train..."; opts = "structure=[structure] grid=[input] latent=2 filters=4 epochs=1 output=[" + out + "/i.safetensors]";
} else if (c == "heap_refusal") {
  // the Java-heap check: pretend only 1 MB is free (a hook read by CommandBase.requireHeap)
  call("java.lang.System.setProperty", "ferrolens.fakeFreeMemory", "1048576");
  open(stacks + "iv_grid.tif"); rename("input");
  cmd = "Decompose PCA..."; opts = "components=3";
} else { print("TEST FAIL unknown case " + c); exit; }
selectImage("input");
id = getImageID(); n0 = nSlices; before = pixelSum();
print("CASE " + c + " running " + cmd + " on " + getWidth() + "x" + getHeight() + "x" + nSlices);
eval("run(\"" + cmd + "\", \"" + opts + "\");");
if (!isOpen(id)) { print("TEST FAIL input closed"); exit; }
selectImage(id);
after = pixelSum();
if (after == before && nSlices == n0 && getTitle() == "input") print("CASE " + c + " PIXELS UNCHANGED");
else print("CASE " + c + " PIXELS CHANGED " + before + " -> " + after);
print("DONE bad_family");
