// ctest ij_family_<group>: one group of the family 2-5 commands on a small synthetic input from sample-stacks/
// (made by `ferrolens synth ...`, see sample-stacks/README.md): the output windows must exist with the right
// sizes and plausible values, and the input pixels must not change. Sentinels RESULT / DONE / TEST FAIL.
// Argument: group:repo_dir:out_dir with group decompose | latent | loops | stem | walls | walls_model | dae | im2spec.
a = split(getArgument(), ":");
g = a[0]; repo = a[1]; out = a[2];
File.makeDirectory(out);
setBatchMode(true);
function fail(msg) { print("TEST FAIL " + msg); exit; }
function pixelSum() {
  s = 0;
  for (z = 1; z <= nSlices; z++) { setSlice(z); getStatistics(area, mean); s += mean; }
  setSlice(1);
  return d2s(s, 6);
}
function dims(title, w, h, n) {
  if (!isOpen(title)) fail("no window '" + title + "'");
  selectImage(title);
  if (getWidth() != w || getHeight() != h || nSlices != n)
    fail("'" + title + "' is " + getWidth() + "x" + getHeight() + "x" + nSlices + ", expected " + w + "x" + h + "x" + n);
  print("RESULT " + title + " " + w + "x" + h + "x" + n);
}
function rows(title, n) {
  if (!isOpen(title)) fail("no table '" + title + "'");
  k = Table.size(title);
  if (k != n) fail("table '" + title + "' has " + k + " rows, expected " + n);
  print("RESULT table " + title + " " + n + " rows");
}
function regionCounts() {   // counts of train region values 0, 1, 2 of the current image
  r = newArray(0, 0, 0);
  for (y = 0; y < getHeight(); y++) for (x = 0; x < getWidth(); x++) { v = getPixel(x, y); if (v >= 0 && v <= 2) r[v] = r[v] + 1; }
  return r;
}
function unchanged(title, before) {
  selectImage(title);
  after = pixelSum();
  if (after != before) fail("input '" + title + "' changed");
  print("RESULT input unchanged");
}
stacks = repo + "/sample-stacks/";
if (g == "decompose") {
  open(stacks + "iv_grid.tif"); before = pixelSum();          // 64 x 64, 64 points
  run("Decompose PCA...", "components=3 axis=auto threads=1");
  dims("iv_grid loadings", 64, 64, 3);
  if (!isOpen("iv_grid components")) fail("no components plot");
  rows("iv_grid components table", 64);
  selectImage("iv_grid loadings"); setSlice(1); l = getInfo("slice.label");
  if (!startsWith(l, "PC1")) fail("loadings label '" + l + "'");
  // PC1 scores are centred: mean ~ 0 relative to their spread
  getStatistics(area, mean, min, max, sd);
  if (abs(mean) > 1e-3 * sd || sd <= 0) fail("PC1 scores not centred: mean " + mean + " sd " + sd);
  close("iv_grid loadings"); close("iv_grid components");
  selectImage("iv_grid.tif");
  run("Decompose NMF...", "components=2 max_iterations=60 tolerance=0.0001 initialisation=nndsvda shift seed=1 threads=1");
  dims("iv_grid loadings", 64, 64, 2);
  getStatistics(area, mean, min, max);
  if (min < 0) fail("NMF weights negative: " + min);
  unchanged("iv_grid.tif", before);
} else if (g == "latent") {
  open(stacks + "iv_grid.tif");
  run("Decompose PCA...", "components=3 threads=1");
  selectImage("iv_grid loadings"); before = pixelSum();
  newImage("structure", "32-bit ramp", 64, 64, 1);
  selectImage("iv_grid loadings");
  run("Latent Gaussian Mixture...", "components=3 structure=[structure] patch=8 nearest=5 seed=1 threads=1");
  dims("iv_grid loadings clusters", 64, 64, 1);
  getStatistics(area, mean, min, max);
  if (min != 1 || max != 3) fail("cluster labels " + min + ".." + max + ", expected 1..3");
  rows("iv_grid loadings centroids", 3);
  if (!isOpen("iv_grid loadings nearest patches")) fail("no nearest-patch montage");
  if (!isOpen("iv_grid loadings latent scatter")) fail("no latent scatter");
  unchanged("iv_grid loadings", before);
} else if (g == "loops") {
  open(stacks + "loops_grid.tif"); before = pixelSum();
  w = getWidth(); h = getHeight();
  run("Loop Descriptors...", "vmax=0 threads=1");
  dims("loops_grid loop descriptors", w, h, 11);
  setSlice(1); l = getInfo("slice.label");
  if (!startsWith(l, "V+")) fail("descriptor label '" + l + "'");
  getStatistics(area, mean);
  setSlice(2); getStatistics(area, mean2);
  if (!(mean > 0 && mean2 < 0)) fail("mean V+ " + mean + " / V- " + mean2 + " should be > 0 / < 0");
  rows("loops_grid loop descriptors table", w * h);
  unchanged("loops_grid.tif", before);
} else if (g == "stem") {
  open(stacks + "stem4d.tif"); before = pixelSum();
  k = getWidth(); Stack.getDimensions(w, h, c, sx, sy);
  run("4D-STEM Center of Mass...", "threshold=0 hist_bins=64 threads=1");
  dims("stem4d center of mass", sx, sy, 4);
  dims("stem4d mean pattern", k, k, 1);
  dims("stem4d COM histogram", 64, 64, 1);
  // virtual detector, rectangle drawn on the mean pattern: whole detector -> mean intensity > 0 everywhere
  selectImage("stem4d mean pattern"); makeRectangle(0, 0, k, k);
  selectImage("stem4d.tif");
  run("4D-STEM Virtual Detector...", "aperture=rectangle roi_image=[stem4d mean pattern] threads=1");
  dims("stem4d virtual detector", sx, sy, 1);
  getStatistics(area, mean, min);
  if (min <= 0) fail("bright-field VDF has a non-positive pixel " + min);
  close("stem4d virtual detector");
  selectImage("stem4d.tif");
  run("4D-STEM Virtual Detector...", "aperture=annulus cx=" + (k/2) + " cy=" + (k/2) + " r_in=0 r_out=3 sum threads=1");
  dims("stem4d virtual detector", sx, sy, 1);
  // compare: top half vs bottom half of the scan (two masks)
  newImage("A", "8-bit black", sx, sy, 1); makeRectangle(0, 0, sx, sy/2); run("Set...", "value=255"); run("Select None");
  newImage("B", "8-bit black", sx, sy, 1); makeRectangle(0, sy/2, sx, sy/2); run("Set...", "value=255"); run("Select None");
  selectImage("stem4d.tif");
  run("4D-STEM Compare Patterns...", "mask_a=[A] mask_b=[B] threads=1");
  dims("stem4d pattern comparison", k, k, 4);
  setSlice(1); getStatistics(area, mean, min, max);
  if (max > 1.0001 || max < 0.5) fail("NCC peak " + max + " not in 0.5..1");
  unchanged("stem4d.tif", before);
} else if (g == "walls") {
  newImage("img", "32-bit ramp", 64, 64, 1); before = pixelSum();
  makeLine(10, 10, 50, 10); run("Add Wall Label");
  makeLine(10, 40, 30, 50, 50, 40); run("Add Wall Label");
  n = roiManager("count");
  if (n != 2) fail("ROI Manager holds " + n + " ROIs, expected 2");
  roiManager("select", 1); nm = Roi.getName;
  if (nm != "wall 2") fail("second label named '" + nm + "'");
  print("RESULT labels " + n);
  selectImage("img"); run("Select None");
  run("Wall Labels to Mask...", "source=[ROI Manager] width=3");
  dims("img wall mask", 64, 64, 1);
  if (bitDepth() != 8) fail("mask bit depth " + bitDepth());
  getHistogram(v, counts, 256);
  if (counts[0] + counts[255] != 64 * 64) fail("mask is not 0/255");
  if (counts[255] < 150 || counts[255] > 400) fail(counts[255] + " wall pixels, expected ~ (41 + 45) * 3");
  if (getPixel(30, 10) != 255 || getPixel(30, 25) != 0 || getPixel(30, 11) != 255 || getPixel(30, 13) != 0)
    fail("mask pixels (30,10)=" + getPixel(30, 10) + " (30,11)=" + getPixel(30, 11) + " (30,13)=" + getPixel(30, 13) + " (30,25)=" + getPixel(30, 25));
  print("RESULT wall pixels " + counts[255]);
  run("Wall Measurement Points...", "mask=[img wall mask] image=[img] every=5 threads=1");
  selectImage("img");
  if (selectionType() != 10) fail("no point selection on img (type " + selectionType() + ")");
  getSelectionCoordinates(xs, ys);
  if (xs.length < 10 || xs.length > 30) fail(xs.length + " points, expected ~ 86 / 5");
  for (i = 0; i < xs.length; i++) { selectImage("img wall mask"); if (getPixel(xs[i], ys[i]) != 255) fail("point " + xs[i] + "," + ys[i] + " off the wall"); }
  rows("img wall points", xs.length);
  selectImage("img"); run("Select None");
  unchanged("img", before);
} else if (g == "walls_model") {
  // Train (titles; masks 0/1 are normalised to 0/255), Segment with the new model, Re-train (folder), Live
  open(stacks + "pfm_walls_train_mask.tif");
  open(stacks + "pfm_walls_train.tif"); before = pixelSum();
  model = out + "/walls.safetensors"; model2 = out + "/walls2.safetensors";
  if (File.exists(model)) File.delete(model);
  if (File.exists(model2)) File.delete(model2);
  run("Train Wall Ensemble...", "images=[pfm_walls_train.tif] masks=[pfm_walls_train_mask.tif] members=2 filters=4 iterations=20 patch=32 batch=4 seed=1 output=[" + model + "] threads=1");
  if (!File.exists(model) || File.length(model) < 1000) fail("no model file " + model);
  if (!isOpen("pfm_walls_train wall loss")) fail("no wall loss plot");
  print("RESULT model " + File.length(model) + " bytes");
  selectImage("pfm_walls_train.tif");
  run("Segment Walls...", "model=[" + model + "] threshold=0.5 threads=1");
  dims("pfm_walls_train wall probability", 128, 128, 8);
  getStatistics(area, mean, min, max);
  for (z = 1; z <= nSlices; z++) { setSlice(z); getStatistics(area, m, mn, mx); if (mn < 0 || mx > 1) fail("probability " + mn + ".." + mx + " outside 0..1"); }
  // re-train from a folder <name>.tif + <name>_mask.tif
  dir = out + "/pairs"; File.makeDirectory(dir);
  open(stacks + "pfm_walls_test.tif"); saveAs("Tiff", dir + "/a.tif"); close();
  open(stacks + "pfm_walls_test_mask.tif"); saveAs("Tiff", dir + "/a_mask.tif"); close();
  run("Re-train Wall Ensemble...", "model=[" + model + "] folder=[" + dir + "] iterations=5 output=[" + model2 + "] threads=1");
  if (!File.exists(model2)) fail("no re-trained model");
  if (File.length(model2) != File.length(model)) fail("re-trained model has " + File.length(model2) + " bytes, expected " + File.length(model));
  if (!isOpen("pairs wall retrain loss")) fail("no retrain loss plot");
  print("RESULT retrained model");
  // live replay of one scan: the live maps must equal the full recompute
  open(stacks + "pfm_walls_test.tif"); rename("scan");
  run("Live Segmentation...", "model=[" + model2 + "] simulate threshold=0.5 threads=1");
  dims("scan live wall probability", 128, 128, 1);
  getStatistics(area, mean, min, max);
  if (min < 0 || max > 1) fail("live probability " + min + ".." + max);
  dims("scan live wall uncertainty", 128, 128, 1);
  dims("scan live wall mask", 128, 128, 1);
  rows("scan live timing", 128);
  // the final live map must equal an independent full segmentation of the same scan (Segment Walls)
  selectImage("scan"); run("Duplicate...", "title=scan1"); run("Select None");
  run("Segment Walls...", "model=[" + model2 + "] threshold=0.5 threads=1");
  imageCalculator("Difference create 32-bit", "scan live wall probability", "scan1 wall probability");
  getStatistics(area, mean, min, max);
  if (max > 1e-5) fail("live probability differs from Segment Walls by up to " + max);
  print("RESULT live == full segmentation (max difference " + max + ")");
  unchanged("pfm_walls_train.tif", before);
} else if (g == "dae") {
  open(stacks + "stem4d.tif"); before = pixelSum();
  k = getWidth(); Stack.getDimensions(w, h, c, sx, sy);
  model = out + "/dae.safetensors";
  if (File.exists(model)) File.delete(model);
  run("Diffraction Autoencoder Train...", "width=4 embedding=4 pools=3 epochs=2 batch=32 stride=2 seed=1 output=[" + model + "] threads=1");
  if (!File.exists(model)) fail("no model file " + model);
  dims("stem4d embedding", sx, sy, 4);
  setSlice(1); l = getInfo("slice.label");
  if (!startsWith(l, "channel 1")) fail("embedding label '" + l + "'");
  s1 = pixelSum();
  dims("stem4d apertures", k, k, 4);
  if (!isOpen("stem4d diffraction loss")) fail("no loss plot");
  close("stem4d embedding"); close("stem4d apertures");
  selectImage("stem4d.tif");
  run("Diffraction Autoencoder Apply...", "model=[" + model + "] threads=1");
  dims("stem4d embedding", sx, sy, 4);
  s2 = pixelSum();
  if (s1 != s2) fail("apply embedding " + s2 + " differs from the training embedding " + s1);
  print("RESULT apply reproduces the training embedding " + s1);
  unchanged("stem4d.tif", before);
} else if (g == "im2spec") {
  open(stacks + "loops_grid.tif"); before = pixelSum();
  open(stacks + "loops_structure.tif"); sbefore = pixelSum();
  model = out + "/im2spec.safetensors"; smodel = out + "/spec2im.safetensors";
  if (File.exists(model)) File.delete(model);
  if (File.exists(smodel)) File.delete(smodel);
  // im2spec: the rectangle on the structure image is the training region (patch centres)
  makeRectangle(4, 4, 20, 40);
  run("im2spec Train...", "structure=[loops_structure.tif] grid=[loops_grid.tif] patch=8 latent=2 filters=4 epochs=3 batch=16 seed=1 output=[" + model + "] threads=1");
  if (!File.exists(model)) fail("no model file " + model);
  dims("loops_structure predicted", 64, 64, 64);
  dims("loops_structure latent", 64, 64, 2);
  s1 = pixelSum();
  dims("loops_structure errors", 64, 64, 3);
  dims("loops_structure train region", 64, 64, 1);
  counts = regionCounts();
  if (counts[1] != 20 * 40) fail(counts[1] + " training pixels, expected the 20 x 40 rectangle");
  print("RESULT train region = rectangle (" + counts[1] + " px, test " + counts[2] + ")");
  if (!isOpen("loops_structure loss")) fail("no loss plot");
  close("loops_structure *");
  run("im2spec Apply...", "model=[" + model + "] structure=[loops_structure.tif] grid=[loops_grid.tif] threads=1");
  dims("loops_structure latent", 64, 64, 2);
  s2 = pixelSum();
  if (s1 != s2) fail("apply latent " + s2 + " differs from the training latent " + s1);
  dims("loops_structure errors", 64, 64, 3);
  print("RESULT im2spec apply reproduces the training latent " + s1);
  // spec2im without a rectangle: left 75 % of the usable columns
  selectImage("loops_structure.tif"); run("Select None");
  run("spec2im Train...", "structure=[loops_structure.tif] grid=[loops_grid.tif] patch=8 latent=2 filters=4 epochs=2 batch=16 train_fraction=0.75 seed=1 output=[" + smodel + "] threads=1");
  if (!File.exists(smodel)) fail("no model file " + smodel);
  dims("loops_grid predicted", 64 * 8, 64 * 8, 1);
  dims("loops_grid latent", 64, 64, 2);
  dims("loops_grid train region", 64, 64, 1);
  counts = regionCounts();
  if (counts[1] == 0 || counts[2] == 0 || counts[1] < 2 * counts[2]) fail("train/test pixels " + counts[1] + "/" + counts[2] + " for a 0.75 split");
  if (getPixel(10, 32) != 1 || getPixel(55, 32) != 2) fail("train region (10,32)=" + getPixel(10, 32) + " (55,32)=" + getPixel(55, 32));
  if (!isOpen("loops_grid loss")) fail("no spec2im loss plot");
  close("loops_grid *");
  run("spec2im Apply...", "model=[" + smodel + "] grid=[loops_grid.tif] threads=1");
  dims("loops_grid predicted", 64 * 8, 64 * 8, 1);
  if (isOpen("loops_grid errors")) fail("errors without the true structure");
  print("RESULT spec2im apply");
  unchanged("loops_structure.tif", sbefore);
  unchanged("loops_grid.tif", before);
} else fail("unknown group " + g);
print("DONE family " + g);
