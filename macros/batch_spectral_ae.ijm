// Ferrolens batch: every .tif of an input folder -> spectral autoencoder (train, or apply one model) -> results
// saved into an output folder (<name>_embedding.tif, _reconstruction.tif, _error.tif, _decoded_curves.tif/.csv,
// and <name>_sae.safetensors when training).
//   ImageJ: Plugins>Macros>Run... (asks), or
//   batch:  java -Dplugins.dir=build -jar ij.jar -batch macros/batch_spectral_ae.ijm "IN_DIR:OUT_DIR[:MODEL][:EPOCHS]"
//           MODEL empty or "train": train one model per file; else the path of a model to apply to every file.
arg = getArgument();
model = ""; epochs = 50;
if (arg == "") {
  in = getDirectory("Folder of spectroscopy grids (.tif)");
  out = getDirectory("Output folder");
  Dialog.create("Ferrolens batch");
  Dialog.addString("Model to apply (empty: train one per file)", "", 40);
  Dialog.addNumber("Epochs (training)", epochs);
  Dialog.show();
  model = Dialog.getString(); epochs = Dialog.getNumber();
} else {
  a = split(arg, ":");
  in = a[0]; out = a[1];
  if (a.length > 2 && a[2] != "train") model = a[2];
  if (a.length > 3) epochs = parseInt(a[3]);
}
if (!endsWith(in, File.separator)) in = in + File.separator;
if (!endsWith(out, File.separator)) out = out + File.separator;
File.makeDirectory(out);
setBatchMode(true);
files = getFileList(in);
done = 0;
for (i = 0; i < files.length; i++) {
  f = files[i];
  if (!endsWith(toLowerCase(f), ".tif") && !endsWith(toLowerCase(f), ".tiff")) continue;
  open(in + f);
  title = getTitle();
  base = File.nameWithoutExtension;
  id = getImageID();
  if (model == "")
    run("Spectral Autoencoder Train", "layers=2 decoder_layers=2 hidden=32 bidirectional latent=8 l1=0.0001 dropout=0.1 "
      + "recurrent=hard_sigmoid learning_rate=0.002 batch=64 epochs=" + epochs + " validation=0.1 patience=10 seed=42 "
      + "normalisation=global threads=0 traverse=10 others=zero save=[" + out + base + "_sae.safetensors]");
  else
    run("Spectral Autoencoder Apply", "model=[" + model + "] threads=0 traverse=10 others=zero");
  names = newArray("embedding", "reconstruction", "error", "decoded curves");
  for (k = 0; k < names.length; k++) {
    w = title + " " + names[k];
    if (isOpen(w)) { selectImage(w); saveAs("Tiff", out + base + "_" + replace(names[k], " ", "_") + ".tif"); close(); }
  }
  if (isOpen(title + " decoded curves")) Table.save(out + base + "_decoded_curves.csv", title + " decoded curves");
  selectImage(id); close();
  done++;
  print("Ferrolens batch: " + f + " done (" + done + ")");
}
print("BATCH DONE " + done + " files -> " + out);
