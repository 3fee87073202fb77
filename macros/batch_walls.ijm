// Ferrolens batch: domain-wall segmentation of every PFM image of a folder (issue 5).
// Input folder: PFM images <name>.tif (8/16/32-bit, one image or a stack); for the images used for training,
// wall labels as <name>.zip (an ROI Manager set of line ROIs, e.g. from Walls > Add Wall Label + ROI Manager >
// More > Save...) or as a mask <name>_mask.tif (0 = background, non-zero = wall). Images without labels are
// only segmented. Training needs at least one labelled image; all labelled images must have the same size.
// Output folder:
//   walls.safetensors                 the trained ensemble (when training)
//   training/<name>.tif, <name>_mask.tif   the image/mask pairs it was trained on (.zip labels rasterised)
//   <name>_wall_mean.tif              ensemble mean wall probability
//   <name>_wall_uncertainty.tif       variance across the members
//   <name>_wall_mask.tif              mean >= threshold (0/1)
//   <name>_wall_skeleton.tif          one-pixel skeleton of the mask (0/1)
//   wall_summary.csv                  per image: planes, wall pixels, wall fraction, mean uncertainty on walls
// Usage:
//   ImageJ: Plugins>Macros>Run... (asks for the folders and settings), or
//   batch:  ImageJ -batch macros/batch_walls.ijm "IN_DIR:OUT_DIR[:MODEL][:MEMBERS:ITERATIONS:FILTERS:PATCH:THRESHOLD:WIDTH:SEED]"
//           MODEL empty or "train": train one ensemble on all labelled images, then segment every image;
//           else the path of a wall-ensemble model (.safetensors) to apply to every image (labels ignored).
//           Defaults: 10 members, 800 iterations, 16 filters, patch 64, threshold 0.5, label width 3, seed 0.
//   (Arguments are split at ':' -- on Windows give the folders in the dialog instead.)
function baseName(f) { d = lastIndexOf(f, "."); if (d < 0) return f; return substring(f, 0, d); }
function extension(f) { d = lastIndexOf(f, "."); if (d < 0) return ""; return substring(f, d); }
arg = getArgument();
model = ""; members = 10; iterations = 800; filters = 16; patch = 64; threshold = 0.5; width = 3; seed = 0;
if (arg == "") {
  in = getDirectory("Folder of PFM images (<name>.tif + <name>.zip or <name>_mask.tif labels)");
  out = getDirectory("Output folder");
  Dialog.create("Ferrolens batch walls");
  Dialog.addString("Model to apply (empty: train on the labelled images)", "", 40);
  Dialog.addNumber("Members (ensemble)", members);
  Dialog.addNumber("Iterations per member", iterations);
  Dialog.addNumber("Filters (ResHedNet width)", filters);
  Dialog.addNumber("Patch (pixels, multiple of 4)", patch);
  Dialog.addNumber("Threshold (mean probability)", threshold);
  Dialog.addNumber("Label line width (pixels, .zip labels)", width);
  Dialog.addNumber("Seed", seed);
  Dialog.show();
  model = Dialog.getString(); members = Dialog.getNumber(); iterations = Dialog.getNumber();
  filters = Dialog.getNumber(); patch = Dialog.getNumber(); threshold = Dialog.getNumber();
  width = Dialog.getNumber(); seed = Dialog.getNumber();
} else {
  a = split(arg, ":");
  if (a.length < 2) exit("Ferrolens batch walls: the argument must be IN_DIR:OUT_DIR[:MODEL][:MEMBERS:ITERATIONS:FILTERS:PATCH:THRESHOLD:WIDTH:SEED]");
  in = a[0]; out = a[1];
  if (a.length > 2 && a[2] != "train") model = a[2];
  if (a.length > 3) members = parseInt(a[3]);
  if (a.length > 4) iterations = parseInt(a[4]);
  if (a.length > 5) filters = parseInt(a[5]);
  if (a.length > 6) patch = parseInt(a[6]);
  if (a.length > 7) threshold = parseFloat(a[7]);
  if (a.length > 8) width = parseFloat(a[8]);
  if (a.length > 9) seed = parseInt(a[9]);
}
if (isNaN(members) || isNaN(iterations) || isNaN(filters) || isNaN(patch) || isNaN(threshold) || isNaN(width) || isNaN(seed))
  exit("Ferrolens batch walls: a numeric setting is not a number (argument '" + arg + "')");
if (!endsWith(in, File.separator) && !endsWith(in, "/")) in = in + File.separator;
if (!endsWith(out, File.separator) && !endsWith(out, "/")) out = out + File.separator;
if (!File.isDirectory(in)) exit("Ferrolens batch walls: input folder not found: " + in);
if (model != "" && !File.exists(model)) exit("Ferrolens batch walls: model file not found: " + model);
File.makeDirectory(out);
if (!File.isDirectory(out)) exit("Ferrolens batch walls: cannot create the output folder " + out);
setBatchMode(true);

// the PFM images: .tif/.tiff that are not masks
all = getFileList(in);
images = newArray(0);
for (i = 0; i < all.length; i++) {
  f = all[i]; low = toLowerCase(f);
  if (!endsWith(low, ".tif") && !endsWith(low, ".tiff")) continue;
  if (endsWith(baseName(f), "_mask")) continue;
  images = Array.concat(images, f);
}
if (images.length == 0) exit("Ferrolens batch walls: no .tif image in " + in);

// ---- training: image/mask pairs in out/training, then one ensemble ---------------------------------------------
if (model == "") {
  pairs = out + "training" + File.separator;
  File.makeDirectory(pairs);
  old = getFileList(pairs);   // a previous run's pairs must not join this training set
  for (i = 0; i < old.length; i++) ok = File.delete(pairs + old[i]);
  used = 0;
  for (i = 0; i < images.length; i++) {
    f = images[i]; b = baseName(f);
    maskFile = in + b + "_mask" + extension(f);
    if (!File.exists(maskFile)) maskFile = in + b + "_mask.tif";
    zip = in + b + ".zip";
    if (!File.exists(maskFile) && !File.exists(zip)) continue;
    open(in + f); id = getImageID(); n = nSlices;
    saveAs("Tiff", pairs + b + ".tif");
    if (File.exists(maskFile)) {
      from = File.getName(maskFile);
      open(maskFile);
    } else {
      if (n != 1) exit("Ferrolens batch walls: " + f + " has " + n + " planes; ROI labels (" + b + ".zip) need a single-plane image: give a mask stack " + b + "_mask.tif instead");
      from = b + ".zip";
      roiManager("reset");
      roiManager("Open", zip);
      if (roiManager("count") == 0) exit("Ferrolens batch walls: " + b + ".zip holds no ROI");
      selectImage(id);
      run("Wall Labels to Mask...", "source=[ROI Manager] width=" + width);
      roiManager("reset");
    }
    saveAs("Tiff", pairs + b + "_mask.tif");
    close();
    selectImage(id); close();
    used++;
    print("Ferrolens batch walls: training pair " + b + " (labels " + from + ")");
  }
  if (used == 0) exit("Ferrolens batch walls: no labelled image in " + in + " (need <name>.zip or <name>_mask.tif next to <name>.tif)");
  model = out + "walls.safetensors";
  run("Train Wall Ensemble...", "folder=[" + pairs + "] members=" + members + " filters=" + filters
    + " iterations=" + iterations + " patch=" + patch + " batch=10 lr=0.001 swa_last=" + minOf(30, iterations)
    + " augment seed=" + seed + " output=[" + model + "] threads=0");
  if (isOpen("training wall loss")) { selectImage("training wall loss"); close(); }
  print("Ferrolens batch walls: trained " + members + " members on " + used + " image(s) -> " + model);
}

// ---- segmentation of every image ----------------------------------------------------------------------------
names = newArray("wall probability", "wall uncertainty", "wall mask", "wall skeleton");
suffix = newArray("_wall_mean.tif", "_wall_uncertainty.tif", "_wall_mask.tif", "_wall_skeleton.tif");
summary = "image,planes,wall_pixels,wall_fraction,mean_uncertainty_on_walls\n";
done = 0;
for (i = 0; i < images.length; i++) {
  f = images[i]; b = baseName(f);
  open(in + f); id = getImageID(); title = getTitle(); base = baseName(title);
  w = getWidth(); h = getHeight(); n = nSlices;
  run("Segment Walls...", "model=[" + model + "] threshold=" + threshold + " threads=0");
  for (k = 0; k < names.length; k++) {
    t = base + " " + names[k];
    if (!isOpen(t)) exit("Ferrolens batch walls: Segment Walls gave no '" + t + "' for " + f);
    selectImage(t); saveAs("Tiff", out + b + suffix[k]); rename(t);
  }
  // wall pixels (mask 0/1) and the summed uncertainty on them (uncertainty x mask), over all planes
  imageCalculator("Multiply create 32-bit stack", base + " wall uncertainty", base + " wall mask");
  pid = getImageID();
  wall = 0; usum = 0;
  for (z = 1; z <= n; z++) {
    selectImage(base + " wall mask"); setSlice(z); getStatistics(area, mean); wall += mean * w * h;
    selectImage(pid); setSlice(z); getStatistics(area, mean); usum += mean * w * h;
  }
  selectImage(pid); close();
  wall = round(wall);
  meanU = 0; if (wall > 0) meanU = usum / wall;
  summary = summary + b + "," + n + "," + wall + "," + d2s(wall / (w * h * n), 6) + "," + d2s(meanU, 6) + "\n";
  for (k = 0; k < names.length; k++) { selectImage(base + " " + names[k]); close(); }
  selectImage(id); close();
  done++;
  print("Ferrolens batch walls: " + f + " done (" + done + " of " + images.length + ")");
}
File.saveString(summary, out + "wall_summary.csv");
print("BATCH WALLS DONE " + done + " images -> " + out);
