// Ferrolens demo: spectral autoencoder on the sample I(V) grid.
//   ImageJ:  Plugins>Macros>Run... this file (asks for the stack and an output folder), or
//   batch:   java -Dplugins.dir=build -jar /usr/share/java/ij.jar -batch macros/ferrolens_demo.ijm \
//              sample-stacks/iv_grid.tif:/tmp/demo-out[:epochs=20]      (needs a display: use Xvfb)
// Opens the stack, trains a small spectral autoencoder, and saves embedding, reconstruction, error map,
// decoded curves (plots + CSV) and the model into the output folder.
arg = getArgument();
epochs = 20;
if (arg == "") {
  stack = File.openDialog("Spectroscopy grid (e.g. sample-stacks/iv_grid.tif)");
  out = getDirectory("Output folder");
} else {
  a = split(arg, ":");
  stack = a[0];
  out = a[1];
  if (a.length > 2 && startsWith(a[2], "epochs=")) epochs = parseInt(substring(a[2], 7));
  setBatchMode(true);
}
if (!File.exists(stack)) {
  print("DEMO SKIP: " + stack + " does not exist (make the sample stacks first)");
  exit;
}
File.makeDirectory(out);
if (!endsWith(out, File.separator)) out = out + File.separator;
open(stack);
title = getTitle();
print("Ferrolens demo: " + title + " " + getWidth() + "x" + getHeight() + ", " + nSlices + " points");
model = out + "iv_grid_sae.safetensors";
t0 = getTime();
run("Spectral Autoencoder Train", "layers=2 decoder_layers=2 hidden=32 bidirectional latent=8 l1=0.0001 dropout=0.1 "
  + "recurrent=hard_sigmoid learning_rate=0.002 batch=64 epochs=" + epochs + " validation=0.1 patience=10 seed=42 "
  + "normalisation=global threads=0 traverse=10 others=zero save=[" + model + "]");
print("Ferrolens demo: training and outputs took " + d2s((getTime() - t0) / 1000, 1) + " s");
names = newArray("embedding", "reconstruction", "error", "decoded curves");
for (i = 0; i < names.length; i++) {
  w = title + " " + names[i];
  if (isOpen(w)) {
    selectImage(w);
    saveAs("Tiff", out + replace(names[i], " ", "_") + ".tif");
    print("  saved " + out + replace(names[i], " ", "_") + ".tif");
  }
}
tab = title + " " + "decoded curves";
if (isOpen(tab)) {
  Table.save(out + "decoded_curves.csv", tab);
}
print("DEMO DONE " + out);
