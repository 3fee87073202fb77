// Shows the results of `./run demo` in ImageJ: the input grid and every result TIFF of the output folder.
//   java -Dplugins.dir=build -jar /usr/share/java/ij.jar -macro macros/show_results.ijm INPUT.tif:OUTDIR
a = split(getArgument(), ":");
open(a[0]);
names = newArray("embedding.tif", "reconstruction.tif", "error.tif");
for (i = 0; i < names.length; i++) {
  f = a[1] + File.separator + names[i];
  if (File.exists(f)) {
    open(f);
    if (names[i] != "reconstruction.tif") run("Fire");
  }
}
csv = a[1] + File.separator + "decoded_curves.csv";
if (File.exists(csv)) open(csv);
