package ferrolens;

/**
 * A spectral autoencoder held by the native engine (family 1). Not thread-safe for concurrent use of
 * one model beyond what {@code synchronized} gives: each call holds the model's lock, so {@link #close()}
 * waits for a running call. Every method throws IllegalStateException after close().
 *
 * <p>Curves are n x steps row-major float arrays (curve i = pixel x + width*y).
 */
public final class SaeModel implements AutoCloseable {
    /** Result of a training run (fl_sae_report). */
    public static final class Report {
        public final int epochsRun, bestEpoch;
        public final double bestValLoss, finalTrainLoss, secondsPerEpoch;
        public final boolean cancelled;

        Report(double[] r) {
            epochsRun = (int) r[0]; bestEpoch = (int) r[1]; bestValLoss = r[2]; finalTrainLoss = r[3];
            secondsPerEpoch = r[4]; cancelled = r[5] != 0;
        }
    }

    private long handle;

    private SaeModel(long handle) {
        if (handle == 0) throw new IllegalStateException("the engine returned no model");
        this.handle = handle;
    }

    /** IllegalArgumentException, in the engine's words, when create() would refuse cfg (steps may still be 0). */
    public static void check(SaeConfig cfg) throws FerrolensException {
        if (cfg == null) throw new IllegalArgumentException("no configuration");
        Native.load();
        Native.saeCheckConfig(cfg.ints(), cfg.floats(), cfg.seed);
    }

    public static SaeModel create(SaeConfig cfg, int threads) throws FerrolensException {
        if (cfg == null) throw new IllegalArgumentException("no configuration");
        Native.load();
        return new SaeModel(Native.saeCreate(cfg.ints(), cfg.floats(), cfg.seed, threads));
    }

    public static SaeModel load(String path, int threads) throws FerrolensException {
        Native.load();
        return new SaeModel(Native.saeLoad(Native.pathBytes(path), threads));
    }

    /** Published Keras 2.1 HDF5 weights (Agar et al.), used with curves of {@code steps} points. */
    public static SaeModel importKeras(String h5Path, int steps, int threads) throws FerrolensException {
        Native.load();
        return new SaeModel(Native.saeImportKeras(Native.pathBytes(h5Path), steps, threads));
    }

    /** Replaces the decoder by a retrained Keras decoder file (Agar's update_decoder step). */
    public synchronized void importKerasDecoder(String h5Path, int threads) throws FerrolensException {
        Native.saeImportKerasDecoder(h(), Native.pathBytes(h5Path), threads);
    }

    /** One-line description of any Ferrolens model file (JSON when json is true). */
    public static String info(String path, boolean json) throws FerrolensException {
        Native.load();
        return Native.modelInfo(Native.pathBytes(path), json);
    }

    private long h() {
        if (handle == 0) throw new IllegalStateException("the model is closed");
        return handle;
    }

    public synchronized boolean isClosed() { return handle == 0; }

    public synchronized SaeConfig config() {
        int[] i = new int[Native.N_INTS];
        float[] f = new float[Native.N_FLOATS];
        long[] s = new long[1];
        Native.saeGetConfig(h(), i, f, s);
        return SaeConfig.fromArrays(i, f, s[0]);
    }

    public synchronized int steps() { return config().steps; }

    public synchronized int latent() { return config().latent; }

    public synchronized long paramCount() { return Native.saeParamCount(h()); }

    /** Trains; on cancel (listener returned true) after at least one epoch the model keeps the best
     *  weights and the report says cancelled. Cancel before the first epoch: CancelledException. */
    public synchronized Report train(float[] curves, int n, int steps, int threads, ProgressListener listener)
            throws FerrolensException {
        return new Report(Native.saeTrain(h(), curves, n, steps, threads, listener));
    }

    /** Embedding, n x latent. */
    public synchronized float[] encode(float[] curves, int n, int steps, int threads, ProgressListener listener)
            throws FerrolensException {
        long h = h();
        float[] emb = new float[checkedSize(n, Native_latent(h))];
        Native.saeEncode(h, curves, n, steps, emb, threads, listener);
        return emb;
    }

    /** Curves in raw units, n x steps. */
    public synchronized float[] decode(float[] emb, int n, int threads, ProgressListener listener)
            throws FerrolensException {
        long h = h();
        float[] out = new float[checkedSize(n, Native_steps(h))];
        Native.saeDecode(h, emb, n, out, threads, listener);
        return out;
    }

    /** Fills emb (n x latent) and recon (n x steps); either may be null. */
    public synchronized void apply(float[] curves, int n, int steps, float[] emb, float[] recon, int threads,
                                   ProgressListener listener) throws FerrolensException {
        Native.saeApply(h(), curves, n, steps, emb, recon, threads, listener);
    }

    /** Latent traversal of one channel: fills values (levels) and curves (levels x steps). */
    public synchronized void traverse(float[] emb, int n, int channel, int levels, boolean othersAtMean,
                                      float[] values, float[] curves, int threads, ProgressListener listener)
            throws FerrolensException {
        Native.saeTraverse(h(), emb, n, channel, levels, othersAtMean, values, curves, threads, listener);
    }

    public synchronized void setAxis(double[] values, String label, String unit) throws FerrolensException {
        Native.saeSetAxis(h(), values, label == null ? "" : label, unit == null ? "" : unit);
    }

    /** Spectral-axis values stored in the model, or null. */
    public synchronized double[] axisValues() { return Native.saeAxisValues(h()); }

    public synchronized String axisUnit() { return Native.saeAxisUnit(h()); }

    public synchronized String axisLabel() { return Native.saeAxisLabel(h()); }

    public synchronized void save(String path, int threads) throws FerrolensException {
        Native.saeSave(h(), Native.pathBytes(path), threads);
    }

    @Override
    public synchronized void close() {
        if (handle != 0) {
            long h = handle;
            handle = 0;
            Native.saeFree(h);
        }
    }

    private static int Native_latent(long h) {
        int[] i = new int[Native.N_INTS];
        Native.saeGetConfig(h, i, new float[Native.N_FLOATS], new long[1]);
        return i[Native.I_LATENT];
    }

    private static int Native_steps(long h) {
        int[] i = new int[Native.N_INTS];
        Native.saeGetConfig(h, i, new float[Native.N_FLOATS], new long[1]);
        return i[Native.I_STEPS];
    }

    private static int checkedSize(long a, long b) {
        if (a < 0 || b < 0) throw new IllegalArgumentException("negative size");
        long s = a * b;
        if (s > Integer.MAX_VALUE - 8) throw new IllegalArgumentException("result of " + a + " x " + b + " values is too large for a Java array");
        return (int) s;
    }
}
