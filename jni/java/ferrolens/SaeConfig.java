package ferrolens;

/**
 * Hyper-parameters of a spectral autoencoder (fl_sae_config in ferrolens.h). {@link #defaults()} gives the
 * engine's defaults (Agar et al. 2019).
 */
public final class SaeConfig {
    public static final int NORM_GLOBAL = 0, NORM_PER_CURVE = 1, NORM_NONE = 2;

    public int steps, hidden, encLayers, decLayers, latent;
    public boolean bidirectional, batchNorm, hardSigmoid;
    public float bnEps, bnMomentum, l1, dropout, learningRate, adamBeta1, adamBeta2, adamEps;
    public int batch, epochs;
    public float valSplit;
    public int patience;
    public long seed;
    public int normMode;
    public boolean outlierRepair;

    /** The engine's defaults. */
    public static SaeConfig defaults() {
        Native.load();
        int[] i = new int[Native.N_INTS];
        float[] f = new float[Native.N_FLOATS];
        long[] s = new long[1];
        Native.saeConfigDefault(i, f, s);
        return fromArrays(i, f, s[0]);
    }

    static SaeConfig fromArrays(int[] i, float[] f, long seed) {
        SaeConfig c = new SaeConfig();
        c.steps = i[Native.I_STEPS]; c.hidden = i[Native.I_HIDDEN]; c.encLayers = i[Native.I_ENC];
        c.decLayers = i[Native.I_DEC]; c.latent = i[Native.I_LATENT]; c.bidirectional = i[Native.I_BIDI] != 0;
        c.batchNorm = i[Native.I_BN] != 0; c.hardSigmoid = i[Native.I_HARDSIG] != 0; c.batch = i[Native.I_BATCH];
        c.epochs = i[Native.I_EPOCHS]; c.patience = i[Native.I_PATIENCE]; c.normMode = i[Native.I_NORM];
        c.outlierRepair = i[Native.I_OUTLIER] != 0;
        c.bnEps = f[Native.F_BN_EPS]; c.bnMomentum = f[Native.F_BN_MOM]; c.l1 = f[Native.F_L1];
        c.dropout = f[Native.F_DROPOUT]; c.learningRate = f[Native.F_LR]; c.adamBeta1 = f[Native.F_BETA1];
        c.adamBeta2 = f[Native.F_BETA2]; c.adamEps = f[Native.F_EPS]; c.valSplit = f[Native.F_VAL];
        c.seed = seed;
        return c;
    }

    int[] ints() {
        int[] i = new int[Native.N_INTS];
        i[Native.I_STEPS] = steps; i[Native.I_HIDDEN] = hidden; i[Native.I_ENC] = encLayers; i[Native.I_DEC] = decLayers;
        i[Native.I_LATENT] = latent; i[Native.I_BIDI] = bidirectional ? 1 : 0; i[Native.I_BN] = batchNorm ? 1 : 0;
        i[Native.I_HARDSIG] = hardSigmoid ? 1 : 0; i[Native.I_BATCH] = batch; i[Native.I_EPOCHS] = epochs;
        i[Native.I_PATIENCE] = patience; i[Native.I_NORM] = normMode; i[Native.I_OUTLIER] = outlierRepair ? 1 : 0;
        return i;
    }

    float[] floats() {
        float[] f = new float[Native.N_FLOATS];
        f[Native.F_BN_EPS] = bnEps; f[Native.F_BN_MOM] = bnMomentum; f[Native.F_L1] = l1; f[Native.F_DROPOUT] = dropout;
        f[Native.F_LR] = learningRate; f[Native.F_BETA1] = adamBeta1; f[Native.F_BETA2] = adamBeta2;
        f[Native.F_EPS] = adamEps; f[Native.F_VAL] = valSplit;
        return f;
    }

    @Override
    public String toString() {
        return "steps=" + steps + " hidden=" + hidden + " layers=" + encLayers + " decoder_layers=" + decLayers
                + " latent=" + latent + (bidirectional ? " bidirectional" : "") + (batchNorm ? " batch_norm" : "")
                + " recurrent=" + (hardSigmoid ? "hard_sigmoid" : "logistic") + " l1=" + l1 + " dropout=" + dropout
                + " learning_rate=" + learningRate + " batch=" + batch + " epochs=" + epochs + " validation=" + valSplit
                + " patience=" + patience + " seed=" + seed + " normalisation="
                + (normMode == NORM_GLOBAL ? "global" : normMode == NORM_PER_CURVE ? "per-curve" : "none")
                + (outlierRepair ? " outlier" : "");
    }
}
