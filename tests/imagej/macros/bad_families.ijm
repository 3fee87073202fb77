// ctest ij_bad_family_<case>: one bad input to a family 2-5 command per ImageJ run. The command must print
// "Ferrolens ERROR: ..." and abort (no dialog: the guard halts on one); the input pixels must not change.
// The command runs in a nested macro (eval), so this macro can check the pixels afterwards.
// Argument: case:repo_dir:out_dir.
a = split(getArgument(), ":");
c = a[0]; repo = a[1]; out = a[2];
File.makeDirectory(out);
setBatchMode(true);
function pixelSum() {   // sum of the slice means; with NaN/Inf pixels (NaN != NaN) the finite sum + their count
  // of the whole image: a rectangle selection is put aside meanwhile (statistics would see only it)
  rect = selectionType() == 0;
  if (rect) { getSelectionBounds(rx, ry, rw, rh); run("Select None"); }
  r = pixelSumAll();
  if (rect) makeRectangle(rx, ry, rw, rh);
  return r;
}
function pixelSumAll() {
  s = 0;
  for (z = 1; z <= nSlices; z++) { setSlice(z); getStatistics(area, mean); s += mean; }
  if (!isNaN(s) && s != 1/0 && s != -1/0) { setSlice(1); return d2s(s, 6); }
  s = 0; bad = 0;
  for (z = 1; z <= nSlices; z++) {
    setSlice(z);
    for (y = 0; y < getHeight(); y++) for (x = 0; x < getWidth(); x++) {
      v = getPixel(x, y);
      if (isNaN(v) || v == 1/0 || v == -1/0) bad++; else s += v;
    }
  }
  setSlice(1);
  return d2s(s, 6) + "+" + bad + "bad";
}
// models of the other families for the "model of another family" cases, trained here (must succeed: an
// error would end this macro before the PIXELS line)
function trainSae(out) {
  runMacro(repo + "/tests/imagej/macros/make_grid.ijm", "sae_grid:16:16:16");
  m = out + "/sae.safetensors";
  run("Spectral Autoencoder Train", "layers=1 decoder_layers=1 hidden=4 latent=2 epochs=1 batch=32 seed=1 threads=1 traverse=3 save=[" + m + "]");
  if (!File.exists(m)) { print("TEST FAIL no spectral autoencoder trained"); exit; }
  return m;
}
function trainWalls(out) {
  newImage("walls_mask", "8-bit black", 32, 32, 1); makeRectangle(14, 0, 3, 32); run("Set...", "value=255"); run("Select None");
  newImage("walls_img", "32-bit ramp", 32, 32, 1);
  m = out + "/walls.safetensors";
  run("Train Wall Ensemble...", "images=[walls_img] masks=[walls_mask] members=1 filters=2 iterations=1 patch=32 batch=1 swa_last=0 threads=1 output=[" + m + "]");
  if (!File.exists(m)) { print("TEST FAIL no wall ensemble trained"); exit; }
  return m;
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
// ---- issue 6: model of another family, empty / too-small ROI, NaN pixels (ctest checks each message) ----
} else if (c == "i2s_apply_family") {
  sae = trainSae(out);
  open(stacks + "loops_grid.tif"); rename("grid");
  open(stacks + "loops_structure.tif"); rename("input");
  cmd = "im2spec Apply..."; opts = "model=[" + sae + "] structure=[input] grid=[grid] threads=1";
} else if (c == "dae_apply_family") {
  sae = trainSae(out);
  open(stacks + "stem4d.tif"); rename("input");
  cmd = "Diffraction Autoencoder Apply..."; opts = "model=[" + sae + "] threads=1";
} else if (c == "segment_family") {
  sae = trainSae(out);
  newImage("input", "32-bit ramp", 32, 32, 1);
  cmd = "Segment Walls..."; opts = "model=[" + sae + "] threads=1";
} else if (c == "sae_apply_family") {
  w = trainWalls(out);
  runMacro(repo + "/tests/imagej/macros/make_grid.ijm", "input:16:16:16");
  cmd = "Spectral Autoencoder Apply"; opts = "model=[" + w + "] threads=1";
} else if (c == "i2s_roi_small") {
  // a 3 x 3 training rectangle in the corner: no 8 x 8 patch centred in it fits in the image
  open(stacks + "loops_grid.tif"); rename("grid");
  open(stacks + "loops_structure.tif"); rename("input"); makeRectangle(0, 0, 3, 3);
  cmd = "im2spec Train..."; opts = "structure=[input] grid=[grid] patch=8 latent=2 filters=4 epochs=1 threads=1 output=[" + out + "/i.safetensors]";
} else if (c == "vdf_roi_empty") {
  // a zero-size rectangle is no selection at all on the pattern image that should carry the detector ROI
  open(stacks + "stem4d.tif"); rename("input");
  newImage("pattern", "32-bit ramp", 24, 24, 1); makeRectangle(3, 3, 0, 0);
  cmd = "4D-STEM Virtual Detector..."; opts = "aperture=rectangle roi_image=[pattern] threads=1";
} else if (c == "vdf_roi_outside") {
  // a rectangle beyond the detector (24 x 24 patterns)
  open(stacks + "stem4d.tif"); rename("input");
  cmd = "4D-STEM Virtual Detector..."; opts = "aperture=rectangle x=20 y=20 width=10 height=10 threads=1";
} else if (c == "segment_nan") {
  w = trainWalls(out);
  newImage("input", "32-bit ramp", 32, 32, 1); setPixel(2, 1, NaN);
  cmd = "Segment Walls..."; opts = "model=[" + w + "] threads=1";
} else if (c == "i2s_train_nan") {
  open(stacks + "loops_grid.tif"); rename("grid");
  open(stacks + "loops_structure.tif"); rename("input"); setPixel(10, 12, NaN);
  cmd = "im2spec Train..."; opts = "structure=[input] grid=[grid] patch=8 latent=2 filters=4 epochs=1 threads=1 output=[" + out + "/i.safetensors]";
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
