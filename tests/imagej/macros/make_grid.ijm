// Synthetic spectroscopy grid: runMacro(".../make_grid.ijm", "title:width:height:points").
// Two regions: left half a switching (tanh) curve, right half a parabola; slice labels "-1.000 V" ... "1.000 V".
a = split(getArgument(), ":");
title = a[0]; w = parseInt(a[1]); h = parseInt(a[2]); t = parseInt(a[3]);
newImage(title, "32-bit black", w, h, t);
for (z = 0; z < t; z++) {
  setSlice(z + 1);
  v = -1 + 2 * z / (t - 1);
  setMetadata("Label", d2s(v, 3) + " V");
  for (y = 0; y < h; y++) {
    for (x = 0; x < w; x++) {
      if (x < w / 2) f = (exp(3 * v) - exp(-3 * v)) / (exp(3 * v) + exp(-3 * v));
      else f = 2 * v * v - 0.5;
      setPixel(x, y, f * (1 + 0.02 * y) + 0.01 * x);
    }
  }
}
setSlice(1);
