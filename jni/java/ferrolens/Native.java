package ferrolens;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.List;

/**
 * The JNI bridge to the native engine (libferrolens_jni) and its loader.
 *
 * <p>Load order: (1) {@code -Dferrolens.library=/abs/path/libferrolens_jni.so}; (2)
 * {@code System.loadLibrary("ferrolens_jni")} from java.library.path (skipped with
 * {@code -Dferrolens.noLoadLibrary=true}); (3) the copy bundled in the plugin jar under
 * {@code native/<os>-<arch>/}, extracted into a per-user cache directory
 * ({@code -Dferrolens.cacheDir}, else {@code $XDG_CACHE_HOME/ferrolens}, else {@code ~/.cache/ferrolens})
 * with a unique name per load, so that a second class loader (ImageJ "Refresh Menus") gets its own copy.
 * Stale copies of dead processes are removed at the next load.
 *
 * <p>The native methods are package-private; {@link SaeModel} is the public API.
 */
public final class Native {
    /** Must equal FLJ_ABI in jni/c/ferrolens_jni.c. */
    static final int ABI = 2;
    static final String LIB = "ferrolens_jni";

    // indices into the int[] / float[] config arrays exchanged with the glue (see SaeConfig)
    static final int I_STEPS = 0, I_HIDDEN = 1, I_ENC = 2, I_DEC = 3, I_LATENT = 4, I_BIDI = 5, I_BN = 6,
            I_HARDSIG = 7, I_BATCH = 8, I_EPOCHS = 9, I_PATIENCE = 10, I_NORM = 11, I_OUTLIER = 12, N_INTS = 13;
    static final int F_BN_EPS = 0, F_BN_MOM = 1, F_L1 = 2, F_DROPOUT = 3, F_LR = 4, F_BETA1 = 5, F_BETA2 = 6,
            F_EPS = 7, F_VAL = 8, N_FLOATS = 9;

    private static volatile boolean loaded;
    private static String loadedFrom;

    private Native() {}

    /** Loads the native library once; throws UnsatisfiedLinkError with every attempt listed. */
    public static synchronized void load() {
        if (loaded) return;
        List<String> tried = new ArrayList<String>();
        String explicit = System.getProperty("ferrolens.library");
        if (explicit != null && !explicit.isEmpty()) {
            File f = new File(explicit).getAbsoluteFile();
            try {
                System.load(f.getPath());
                finish("ferrolens.library=" + f);
                return;
            } catch (UnsatisfiedLinkError e) {
                tried.add("-Dferrolens.library=" + f + ": " + e.getMessage());
            }
        }
        if (!Boolean.getBoolean("ferrolens.noLoadLibrary")) {
            try {
                System.loadLibrary(LIB);
                finish("java.library.path");
                return;
            } catch (UnsatisfiedLinkError e) {
                tried.add("System.loadLibrary(\"" + LIB + "\"): " + e.getMessage());
            }
        }
        try {
            File f = extract();
            System.load(f.getPath());
            finish(f.getPath());
            return;
        } catch (IOException e) {
            tried.add("extraction from the plugin jar: " + e.getMessage());
        } catch (UnsatisfiedLinkError e) {
            tried.add("extracted copy: " + e.getMessage());
        }
        StringBuilder sb = new StringBuilder("Could not load the Ferrolens native library (lib" + LIB
                + ".so) for " + platform() + ". Tried:");
        for (String t : tried) sb.append("\n  - ").append(t);
        sb.append("\nIs the plugin jar complete, and are libgomp, libfftw3f, libtiff and libhdf5 installed?");
        throw new UnsatisfiedLinkError(sb.toString());
    }

    private static void finish(String from) {
        int abi;
        try {
            abi = abiVersion();
        } catch (UnsatisfiedLinkError e) {
            throw new UnsatisfiedLinkError("The Ferrolens native library loaded from " + from
                    + " does not match the Java classes: " + e.getMessage());
        }
        if (abi != ABI)
            throw new UnsatisfiedLinkError("The Ferrolens native library loaded from " + from + " has interface version "
                    + abi + ", the Java classes need " + ABI + ": the jar and the library come from different builds.");
        loadedFrom = from;
        loaded = true;
    }

    /** Where the library was loaded from (null before load()). */
    public static synchronized String loadedFrom() { return loadedFrom; }

    /** "linux-x86_64" etc.: the folder name inside the jar. */
    static String platform() {
        String os = System.getProperty("os.name", "").toLowerCase();
        String arch = System.getProperty("os.arch", "").toLowerCase();
        if (os.contains("linux")) os = "linux";
        else if (os.contains("mac")) os = "macos";
        else if (os.contains("win")) os = "windows";
        if (arch.equals("amd64") || arch.equals("x86_64")) arch = "x86_64";
        else if (arch.equals("aarch64") || arch.equals("arm64")) arch = "aarch64";
        return os + "-" + arch;
    }

    private static File cacheDir() {
        String p = System.getProperty("ferrolens.cacheDir");
        if (p != null && !p.isEmpty()) return new File(p);
        String xdg = System.getenv("XDG_CACHE_HOME");
        if (xdg != null && !xdg.isEmpty()) return new File(xdg, "ferrolens");
        String home = System.getProperty("user.home");
        if (home != null && !home.isEmpty() && new File(home).canWrite()) return new File(new File(home, ".cache"), "ferrolens");
        return new File(System.getProperty("java.io.tmpdir"), "ferrolens-" + System.getProperty("user.name", "user"));
    }

    private static File extract() throws IOException {
        String name = System.mapLibraryName(LIB);
        String res = "/native/" + platform() + "/" + name;
        byte[] data;
        InputStream in = Native.class.getResourceAsStream(res);
        if (in == null) throw new IOException("the jar has no " + res.substring(1));
        try {
            data = readAll(in);
        } finally {
            in.close();
        }
        File dir = cacheDir();
        if (!dir.isDirectory() && !dir.mkdirs())
            throw new IOException("cannot create the cache directory " + dir + " (set -Dferrolens.cacheDir)");
        removeStale(dir);
        String hash = sha256(data).substring(0, 12);
        String pid = pid();
        int dot = name.lastIndexOf('.');
        String base = dot > 0 ? name.substring(0, dot) : name, ext = dot > 0 ? name.substring(dot) : "";
        File tmp = File.createTempFile(base + "-" + hash + "-p" + pid + "-", ext, dir);   // unique per load
        OutputStream out = Files.newOutputStream(tmp.toPath());
        try {
            out.write(data);
        } finally {
            out.close();
        }
        tmp.deleteOnExit();
        return tmp.getAbsoluteFile();
    }

    /** Removes extracted copies left behind by processes that are gone (crash, halt). Linux only. */
    private static void removeStale(File dir) {
        if (!new File("/proc/self").exists()) return;
        File[] files = dir.listFiles();
        if (files == null) return;
        for (File f : files) {
            String n = f.getName();
            int a = n.indexOf("-p");
            if (!n.startsWith("lib" + LIB + "-") || a < 0) continue;
            int b = n.indexOf('-', a + 2);
            if (b < 0) continue;
            String p = n.substring(a + 2, b);
            if (!p.matches("[0-9]+") || p.equals(pid())) continue;
            if (!new File("/proc/" + p).exists()) f.delete();
        }
    }

    private static String pid() {
        String n = java.lang.management.ManagementFactory.getRuntimeMXBean().getName(); // "pid@host"
        int at = n.indexOf('@');
        String p = at > 0 ? n.substring(0, at) : "0";
        return p.matches("[0-9]+") ? p : "0";
    }

    private static byte[] readAll(InputStream in) throws IOException {
        java.io.ByteArrayOutputStream bo = new java.io.ByteArrayOutputStream(1 << 20);
        byte[] buf = new byte[1 << 16];
        for (int r; (r = in.read(buf)) > 0; ) bo.write(buf, 0, r);
        return bo.toByteArray();
    }

    private static String sha256(byte[] data) {
        try {
            byte[] d = MessageDigest.getInstance("SHA-256").digest(data);
            StringBuilder sb = new StringBuilder();
            for (byte b : d) sb.append(String.format("%02x", b & 0xff));
            return sb.toString();
        } catch (java.security.NoSuchAlgorithmException e) {
            return Integer.toHexString(java.util.Arrays.hashCode(data)) + "00000000";
        }
    }

    /** A path as NUL-free UTF-8 bytes for the glue (arbitrary paths survive; modified UTF-8 is not used). */
    static byte[] pathBytes(String path) {
        if (path == null) throw new IllegalArgumentException("no file path given");
        if (path.indexOf('\0') >= 0) throw new IllegalArgumentException("the file path contains a NUL character");
        return path.getBytes(StandardCharsets.UTF_8);
    }

    // ---- native methods (jni/c/ferrolens_jni.c) ----------------------------------------------------
    static native int abiVersion();
    static native String engineVersion();
    static native void saeConfigDefault(int[] ints, float[] floats, long[] seed);
    static native void saeCheckConfig(int[] ints, float[] floats, long seed) throws FerrolensException;
    static native long saeCreate(int[] ints, float[] floats, long seed, int threads) throws FerrolensException;
    static native void saeFree(long handle);
    static native void saeGetConfig(long handle, int[] ints, float[] floats, long[] seed);
    static native long saeParamCount(long handle);
    /** Returns {epochs_run, best_epoch, best_val_loss, final_train_loss, seconds_per_epoch, cancelled}. */
    static native double[] saeTrain(long handle, float[] curves, long n, int steps, int threads,
                                    ProgressListener listener) throws FerrolensException;
    static native void saeEncode(long handle, float[] curves, long n, int steps, float[] emb, int threads,
                                 ProgressListener listener) throws FerrolensException;
    static native void saeDecode(long handle, float[] emb, long n, float[] curves, int threads,
                                 ProgressListener listener) throws FerrolensException;
    static native void saeApply(long handle, float[] curves, long n, int steps, float[] emb, float[] recon,
                                int threads, ProgressListener listener) throws FerrolensException;
    static native void saeTraverse(long handle, float[] emb, long n, int channel, int levels, boolean othersAtMean,
                                   float[] valuesOut, float[] curvesOut, int threads, ProgressListener listener)
            throws FerrolensException;
    static native void saeSetAxis(long handle, double[] values, String label, String unit) throws FerrolensException;
    static native double[] saeAxisValues(long handle);
    static native String saeAxisUnit(long handle);
    static native String saeAxisLabel(long handle);
    static native void saeSave(long handle, byte[] path, int threads) throws FerrolensException;
    static native long saeLoad(byte[] path, int threads) throws FerrolensException;
    static native long saeImportKeras(byte[] path, int steps, int threads) throws FerrolensException;
    static native void saeImportKerasDecoder(long handle, byte[] path, int threads) throws FerrolensException;
    static native String modelInfo(byte[] path, boolean json) throws FerrolensException;
    /** Runs `ferrolens args...` in-process (see CliRunner). */
    static native void runCli(byte[][] args, ProgressListener listener) throws FerrolensException;
}
