// ctest ij_true_headless_call: -Djava.awt.headless=true, no display. Plain ImageJ 1.53t cannot run("...")
// headless (recipe §7), so the command is reached through call(...callWithOptions); only built-ins otherwise.
out = getArgument();
File.makeDirectory(out);
setBatchMode(true);
newImage("hgrid", "32-bit black", 12, 12, 16);
for (z = 0; z < 16; z++) {
  setSlice(z + 1);
  v = -1 + 2 * z / 15;
  setMetadata("Label", d2s(v, 3) + " V");
  for (y = 0; y < 12; y++) for (x = 0; x < 12; x++) { if (x < 6) f = v * v * v; else f = 1 - v * v; setPixel(x, y, f + 0.01 * y); }
}
r = call("ferrolens.Spectral_AE_Train.callWithOptions", "layers=1 decoder_layers=1 hidden=4 latent=3 epochs=2 batch=32 seed=5 threads=1 traverse=3 save=[" + out + "/h.safetensors]");
print("RESULT call=" + r + " images=" + nImages);
if (isOpen("hgrid embedding")) { selectImage("hgrid embedding"); print("RESULT headless embedding " + getWidth() + "x" + getHeight() + "x" + nSlices); saveAs("Tiff", out + "/h_embedding.tif"); }
r2 = call("ferrolens.Model_Info.callWithOptions", "model=[" + out + "/h.safetensors]");
print("RESULT info call=" + r2);
r3 = call("ferrolens.Spectral_AE_Apply.callWithOptions", "model=[" + out + "/missing.safetensors]");
print("RESULT missing model call=" + r3);
print("DONE headless");
