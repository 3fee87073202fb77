// ctest ij_xvfb_train: synthetic 16x16x16 grid -> Spectral Autoencoder Train (tiny settings) -> check the
// output windows (dims, slice labels), that the input is unchanged and the model file; sentinels RESULT/DONE.
// Argument: output folder.
out = getArgument();
File.makeDirectory(out);
dir = File.getParent(getInfo("macro.filepath"));
setBatchMode(true);
runMacro(dir + "/make_grid.ijm", "grid:16:16:16");
function pixelSum() {   // sum of the finite values + count of the NaN/Inf ones, as a string (NaN != NaN)
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
function fail(msg) { print("TEST FAIL " + msg); exit; }
before = pixelSum();
model = out + File.separator + "model.safetensors";
if (File.exists(model)) ok = File.delete(model);
run("Spectral Autoencoder Train", "layers=1 decoder_layers=1 hidden=8 bidirectional latent=4 l1=0.0001 dropout=0 "
  + "recurrent=hard_sigmoid learning_rate=0.003 batch=32 epochs=3 validation=0.1 patience=0 seed=7 normalisation=global "
  + "threads=2 traverse=5 others=zero save=[" + model + "]");

if (!isOpen("grid embedding")) fail("no embedding window");
selectImage("grid embedding");
if (getWidth() != 16 || getHeight() != 16 || nSlices != 4) fail("embedding dims " + getWidth() + "x" + getHeight() + "x" + nSlices);
setSlice(1); l = getInfo("slice.label");
if (!startsWith(l, "latent 0")) fail("embedding label '" + l + "'");
active = 0;
for (i = 1; i <= nSlices; i++) { setSlice(i); if (indexOf(getInfo("slice.label"), "inactive") < 0) active++; }
print("RESULT embedding " + getWidth() + "x" + getHeight() + "x" + nSlices + " active=" + active);
saveAs("Tiff", out + File.separator + "embedding.tif");

if (!isOpen("grid reconstruction")) fail("no reconstruction window");
selectImage("grid reconstruction");
if (getWidth() != 16 || getHeight() != 16 || nSlices != 16) fail("reconstruction dims");
setSlice(1); l1 = getInfo("slice.label"); setSlice(16); l16 = getInfo("slice.label");
if (l1 != "-1.000 V" || l16 != "1.000 V") fail("reconstruction labels '" + l1 + "' '" + l16 + "'");
print("RESULT reconstruction 16x16x16 labels " + l1 + " .. " + l16);
saveAs("Tiff", out + File.separator + "reconstruction.tif");

if (!isOpen("grid error")) fail("no error window");
selectImage("grid error");
if (getWidth() != 16 || getHeight() != 16 || nSlices != 1) fail("error dims");
getStatistics(area, mean, min, max);
if (isNaN(mean) || min < 0) fail("error map values mean=" + mean + " min=" + min);
print("RESULT error 16x16 mean MSE " + mean);
saveAs("Tiff", out + File.separator + "error.tif");

if (active > 0) {
  if (!isOpen("grid decoded curves")) fail("no decoded curves window although " + active + " channels are active");
  selectImage("grid decoded curves");
  if (nSlices != active) fail("decoded curves has " + nSlices + " plots, " + active + " active channels");
  print("RESULT decoded curves " + nSlices + " plots");
  saveAs("Tiff", out + File.separator + "decoded_curves.tif");
} else print("RESULT decoded curves none (no active channel after 3 epochs)");

if (!File.exists(model)) fail("no model file " + model);
print("RESULT model saved " + File.length(model) + " bytes");
run("Ferrolens Model Info", "model=[" + model + "]");

selectImage("grid");
after = pixelSum();
if (after != before) fail("input changed: sum " + before + " -> " + after);
if (getTitle() != "grid" || nSlices != 16) fail("input image changed");
print("RESULT input unchanged sum=" + before);

// apply the saved model to the same grid: same outputs again (titles of the second set end in -1 etc.)
run("Spectral Autoencoder Apply", "model=[" + model + "] threads=2 traverse=5 others=mean");
print("RESULT apply ok images=" + nImages);
print("DONE train");
