// ctest ij_batch_macro: two synthetic grids in a folder -> macros/batch_spectral_ae.ijm, first training one model
// per file, then applying one of the models to both. Argument: source_dir:out_dir.
a = split(getArgument(), ":");
src = a[0]; out = a[1];
in = out + "/in"; File.makeDirectory(out); File.makeDirectory(in);
setBatchMode(true);
runMacro(src + "/tests/imagej/macros/make_grid.ijm", "first:16:16:16");  saveAs("Tiff", in + "/first.tif");  close();
runMacro(src + "/tests/imagej/macros/make_grid.ijm", "second:12:10:16"); saveAs("Tiff", in + "/second.tif"); close();
runMacro(src + "/macros/batch_spectral_ae.ijm", in + ":" + out + "/train:train:2");
runMacro(src + "/macros/batch_spectral_ae.ijm", in + ":" + out + "/apply:" + out + "/train/first_sae.safetensors");
names = newArray("train/first_sae.safetensors", "train/second_embedding.tif", "train/second_decoded_curves.csv",
                 "apply/first_reconstruction.tif", "apply/second_error.tif", "apply/second_embedding.tif");
for (i = 0; i < names.length; i++) if (!File.exists(out + "/" + names[i])) { print("TEST FAIL missing " + names[i]); exit; }
open(out + "/apply/second_reconstruction.tif");
if (getWidth() != 12 || getHeight() != 10 || nSlices != 16) { print("TEST FAIL reconstruction dims"); exit; }
print("RESULT batch outputs ok");
