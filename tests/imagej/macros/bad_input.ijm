// ctest ij_bad_input_<case>: one bad input per ImageJ run. The command must print "Ferrolens ERROR: ..." and
// abort the macro that ran it without any dialog (the guard halts on one); the input pixels must not change.
// The command runs in a nested macro (runMacro): its abort ends only the nested macro, so this one can check
// the pixels afterwards. Argument: case:macros_dir:out_dir.
a = split(getArgument(), ":");
c = a[0]; dir = a[1]; out = a[2];
File.makeDirectory(out);
setBatchMode(true);
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
tiny = "layers=1 decoder_layers=1 hidden=4 latent=2 epochs=1 batch=32 seed=1 threads=1 traverse=3 ";
cmd = "Spectral Autoencoder Train"; opts = tiny;
if (c == "rgb") {
  newImage("input", "RGB ramp", 16, 16, 16);
} else if (c == "single_slice") {
  newImage("input", "32-bit ramp", 16, 16, 1);
} else if (c == "nan") {
  runMacro(dir + "/make_grid.ijm", "input:16:16:16");
  setSlice(5); setPixel(3, 3, NaN); setPixel(4, 4, 1/0); setSlice(1);
} else if (c == "missing_model") {
  runMacro(dir + "/make_grid.ijm", "input:16:16:16");
  cmd = "Spectral Autoencoder Apply"; opts = "model=[" + out + "/no_such_model.safetensors]";
} else if (c == "length_mismatch") {
  runMacro(dir + "/make_grid.ijm", "grid16:16:16:16");
  model = out + "/model16.safetensors";
  run("Spectral Autoencoder Train", tiny + "save=[" + model + "]");   // must succeed (an error would end this macro)
  if (!File.exists(model)) { print("TEST FAIL no model trained"); exit; }
  runMacro(dir + "/make_grid.ijm", "input:16:16:12");
  cmd = "Spectral Autoencoder Apply"; opts = "model=[" + model + "]";
} else if (c == "bad_choice") {
  runMacro(dir + "/make_grid.ijm", "input:16:16:16");
  opts = tiny + "normalisation=median";
} else { print("TEST FAIL unknown case " + c); exit; }
selectImage("input");
id = getImageID(); n0 = nSlices; before = pixelSum();
print("CASE " + c + " running " + cmd + " on " + getWidth() + "x" + getHeight() + "x" + nSlices + " sum=" + before);
eval("run(\"" + cmd + "\", \"" + opts + "\");");
if (!isOpen(id)) { print("TEST FAIL input closed"); exit; }
selectImage(id);
after = pixelSum();
if (after == before && nSlices == n0 && getTitle() == "input") print("CASE " + c + " PIXELS UNCHANGED");
else print("CASE " + c + " PIXELS CHANGED " + before + " -> " + after);
print("DONE bad_input");
