/* Latent-space and decomposition analysis (native/src/analysis/{pca,nmf,gmm}.c). Reference numbers
 * were computed once with numpy 1.x / scikit-learn (numpy.linalg.svd on the centred matrix,
 * sklearn.mixture.GaussianMixture(3, covariance_type="full", random_state=0)) and are embedded here. */
#include <criterion/criterion.h>

#include <math.h>
#include <string.h>

#include "ferrolens/analysis.h"

/* 300 x 2 samples: 100 each from N((0,0),[[1,.3],[.3,.5]]), N((6,1),[[.6,-.2],[-.2,1.2]]), N((2,7),[[.8,0],[0,.4]]),
 * numpy default_rng(12345), rounded to float32. */
static const float gmm_data[600] = {
    1.05563152f, 1.33112085f, 0.907947183f, 0.253666252f, 0.261282057f, -0.368147045f, 1.15780151f, 0.971904218f,
    0.14744924f, -1.2238903f, -2.51653242f, -0.537458181f, 0.504980326f, 0.833847702f, 0.467034876f, 0.178566098f,
    -0.443323076f, -1.0396564f, -0.912701786f, 0.498749584f, -1.20260692f, -0.761695385f, -0.460845351f, -1.28946614f,
    0.0386791788f, 0.315710753f, 1.32020056f, 0.564265132f, -2.33386374f, 0.640308082f, -0.962534845f, 0.0977943912f,
    1.23502088f, -0.222259134f, 1.22813714f, 0.933776081f, -0.559686601f, -0.698295295f, 1.12277889f, 0.696405351f,
    -0.269348383f, -0.212763861f, -1.20458746f, -0.625747144f, 0.345808268f, -0.571758866f, -0.474064976f, 0.669833302f,
    -0.0771681741f, 0.0108075086f, -0.489964366f, -0.0457706153f, -0.64931345f, 0.05123014f, -0.395837545f, -0.711765647f,
    0.117419697f, -1.00612044f, 0.0628190264f, -0.805873215f, -0.0516289696f, 0.289677203f, 0.376363814f, 0.240975529f,
    1.80449581f, 0.277606547f, -0.372041851f, -0.938646197f, -0.275990337f, -1.04847252f, 1.1561296f, -0.183757231f,
    -0.142804906f, 0.286902845f, 1.07691717f, 0.384251505f, -1.48790908f, -0.907038212f, 0.6906811f, 0.579443991f,
    0.394734591f, -0.279691756f, 1.5285641f, 1.25773823f, 0.552058816f, 0.259090602f, 0.697630823f, 1.1885922f,
    -0.97273308f, 0.193814665f, -0.0122089442f, 0.304081202f, -1.12148952f, 0.152036577f, -0.286369801f, -0.175114304f,
    0.538049936f, -0.243653208f, 0.842174947f, 0.632825434f, 0.74408251f, -0.972907424f, -0.120401569f, 0.647948205f,
    0.737450182f, -0.881653726f, -0.0793746188f, 0.482538968f, -0.0864928514f, -0.323930681f, -2.27070212f, 0.194381103f,
    -0.111679919f, 0.486258f, -0.578320384f, 0.246507064f, -1.61407435f, -0.212963089f, 0.0813725591f, -0.394560248f,
    0.791688502f, 0.353898734f, -1.19653213f, -0.361456752f, -0.116739504f, 0.11565651f, -0.173736587f, 0.280940682f,
    1.58837032f, -0.563819408f, 0.703395367f, -0.43132621f, -1.52173328f, -0.817666173f, 0.635730505f, -0.72062099f,
    -0.114219606f, -0.466378808f, -1.29887187f, -0.0514032952f, 0.645936251f, 0.57446754f, 2.80413866f, 0.867606521f,
    -1.40620792f, -0.135451525f, -0.162126094f, -0.0953311771f, 1.71869957f, -0.0954108834f, -0.664107978f, 0.855387628f,
    1.93968368f, 1.3246088f, -0.823219657f, 0.24390243f, 0.975200653f, 0.106514461f, 0.217136681f, -0.578620255f,
    1.41352165f, 0.0772040337f, -0.0265636221f, 0.235211566f, 0.00413683616f, 0.0530903377f, 0.844745338f, -0.0815947503f,
    -1.06983936f, -0.537377298f, -0.158328488f, 0.545540988f, -1.52150404f, 0.130058303f, -0.37974906f, -0.211184278f,
    -0.325405002f, -0.0336968265f, -1.42580557f, -0.474453211f, -0.610324144f, -0.304324448f, -0.803921044f, -1.7356596f,
    -0.560103714f, 0.237790614f, 0.574166656f, 1.69260287f, 0.186315686f, -0.019438073f, 0.820675433f, 0.965667784f,
    -0.0666380897f, -0.422893882f, -0.393328249f, 0.270082712f, -1.23000443f, -0.433054596f, 1.07465434f, 0.134822205f,
    6.23316813f, -1.62559247f, 6.08776474f, 1.89050937f, 5.79508352f, 0.811409235f, 5.68286896f, 2.76276374f,
    5.9817934f, 2.06145716f, 7.31113768f, 0.611749053f, 5.56197739f, -0.585057378f, 5.62670755f, 0.383549929f,
    5.75963497f, 0.273268253f, 5.71702862f, 2.07194924f, 4.76923513f, 1.0401696f, 7.03796244f, 0.320728898f,
    7.22012281f, -0.0427601486f, 6.54566765f, -0.0438374914f, 6.41354227f, 0.132504284f, 6.11231852f, -0.0213388726f,
    5.19203329f, 2.71739793f, 5.01481056f, 3.09102964f, 6.4352994f, -0.247472554f, 7.36782837f, 0.934367359f,
    6.55027771f, 2.17654133f, 7.5314827f, 2.20469451f, 6.11508799f, 1.96662533f, 5.63064861f, -0.0847806185f,
    6.64142275f, 1.41033041f, 4.97300386f, 1.99933171f, 5.96301842f, 1.61218488f, 6.7236352f, -0.0927123055f,
    6.92372894f, -1.38387084f, 4.4790163f, 3.43852901f, 4.66231728f, 0.616980493f, 6.777215f, 0.349645287f,
    6.31508684f, -0.127489582f, 5.84953737f, 0.537803113f, 6.27848053f, 1.30796301f, 6.1852684f, 2.49929595f,
    7.17827272f, 0.69403106f, 4.49799776f, 2.00956273f, 6.36392021f, 1.89055645f, 6.07024431f, 2.15483642f,
    6.23390818f, -0.450876564f, 6.5625577f, -1.25818682f, 5.81898975f, 3.32530427f, 5.3669796f, 1.78926957f,
    5.57812166f, -0.319273651f, 5.39520073f, 0.962240875f, 7.0119853f, 0.558407485f, 5.61018848f, -1.04293287f,
    6.09584713f, 0.430336475f, 5.06031513f, 0.563564718f, 5.84605646f, 1.18074334f, 5.12345886f, 1.15043664f,
    6.0755353f, 1.31020319f, 6.06125355f, 0.243806735f, 7.13437033f, 0.691229045f, 5.99732828f, -2.66035604f,
    6.28918219f, -0.913463533f, 5.93166304f, 0.183382392f, 4.61847973f, 1.42516792f, 6.11832047f, 0.0437591262f,
    6.65123034f, -0.213120207f, 5.39322233f, 1.20339549f, 7.70155096f, -0.562460303f, 6.14460421f, 1.59641778f,
    5.9713254f, 1.07608521f, 5.71863651f, 1.88972735f, 6.70401478f, 0.473055631f, 5.43756247f, 0.899734795f,
    7.11412716f, 0.274240553f, 7.18338633f, 2.09856892f, 5.64867401f, 0.275818914f, 6.83825302f, 1.72759807f,
    6.11033154f, 1.73344326f, 4.86349154f, 2.86947894f, 5.88259172f, -0.499491006f, 6.36553955f, 0.738978207f,
    5.95262671f, 2.18449664f, 4.92268372f, 2.46078205f, 4.80922604f, 2.8747592f, 4.95983601f, 2.05842972f,
    5.92409611f, 1.37969744f, 6.35982752f, 1.71608531f, 6.02239132f, 0.756680012f, 5.00484276f, 0.979187548f,
    5.09602642f, -0.131499276f, 7.56036711f, 1.47860038f, 5.15045452f, 1.61239254f, 6.91626024f, 0.44725129f,
    5.02366114f, 0.147868723f, 5.59171486f, -0.323579431f, 6.80747843f, 0.0463035032f, 4.93055058f, 0.759136856f,
    5.37543678f, 0.177673057f, 5.33404016f, -0.619209111f, 5.21551609f, 2.81203628f, 6.42320871f, 1.80410123f,
    6.50104809f, 0.700924218f, 5.98048544f, 1.62827659f, 5.49372339f, 3.39174414f, 6.52856445f, 0.891999066f,
    3.59025884f, 7.62885571f, 1.57219553f, 6.4568696f, 1.16742218f, 6.58137798f, 2.34569693f, 7.53504992f,
    -0.0303031001f, 6.98819304f, 1.01164103f, 7.43190384f, 2.81797028f, 6.50772667f, 1.59802365f, 6.39814377f,
    2.34979129f, 5.98177052f, 0.9932549f, 6.56700563f, 3.09703183f, 8.51945686f, 2.01785135f, 6.22108603f,
    2.06635451f, 6.45036459f, 2.41127515f, 6.29563141f, 1.6695205f, 6.99107885f, 2.46505189f, 6.95137167f,
    3.13224506f, 7.0785718f, 0.377674609f, 7.5844264f, 1.73962021f, 6.57640505f, 3.34851408f, 6.37158823f,
    2.06499577f, 6.54907513f, 3.20964932f, 6.76977539f, 2.21081591f, 6.11944199f, 3.28326511f, 6.32357597f,
    2.81433964f, 7.70436907f, 3.10221648f, 8.14734554f, 0.952860057f, 7.25423574f, 2.12340379f, 7.26557779f,
    2.9823668f, 7.06916666f, 1.26932526f, 6.93849182f, 3.37673497f, 6.25434303f, 2.07127166f, 6.37937117f,
    2.99172235f, 5.95742941f, 1.69492304f, 6.92145205f, 2.10457253f, 8.49336624f, 3.39098525f, 6.34865952f,
    3.9314301f, 6.2457757f, 0.326624662f, 6.05227661f, 2.18197155f, 7.33827543f, 0.0223446731f, 7.27573442f,
    1.7611413f, 7.44676018f, 1.65599716f, 7.56926155f, 2.50476551f, 6.25835419f, 3.29297686f, 7.13435078f,
    2.65297556f, 7.79801464f, 1.12814963f, 6.94640732f, 1.26505101f, 6.40399122f, 2.2378993f, 7.21490288f,
    3.19084358f, 7.87629271f, 1.98089659f, 6.47059393f, 4.86278343f, 8.3584404f, 1.90459609f, 6.41171837f,
    1.62105417f, 7.17769527f, 3.01209021f, 7.61309195f, 2.38944721f, 6.84370375f, 2.15042949f, 6.80354357f,
    2.06344485f, 6.93462181f, 2.46986532f, 5.80929041f, 1.69081616f, 6.81575966f, 0.988726318f, 6.89075947f,
    1.05768311f, 6.57969952f, 1.74090052f, 6.83987999f, 1.48679268f, 7.69789886f, 2.17992759f, 7.20387316f,
    2.20848441f, 6.57747841f, 1.21002495f, 7.53103495f, 1.68419755f, 5.87983418f, 0.0333450288f, 7.14025354f,
    1.34073806f, 6.95725632f, 1.51052105f, 6.74232817f, 1.8454988f, 6.21107054f, 1.98321843f, 7.62367916f,
    2.62223005f, 5.89976501f, 0.800004184f, 6.15704679f, 1.77812052f, 7.54064512f, 2.28888607f, 5.8908987f,
    2.0490911f, 7.51065207f, 1.59838974f, 8.20430851f, 1.41730905f, 7.74154282f, 4.10300112f, 6.19271898f,
    1.71048594f, 7.3634696f, 4.8723793f, 5.86887503f, 2.50629067f, 7.18012094f, 1.62221527f, 6.47199297f,
    1.52960622f, 6.80833197f, 0.864203155f, 7.9964242f, 1.0085721f, 6.72961283f, 1.40835333f, 6.73863506f,
    2.08316207f, 6.52085352f, 1.78879893f, 8.09064484f, 2.94469428f, 6.81783438f, 2.81140423f, 6.51396179f,
    2.20207906f, 6.09651041f, 0.976669133f, 6.45194149f, 3.10688567f, 7.14590216f, 2.48993421f, 7.09591389f,
    2.32816529f, 7.2653017f, 2.68452406f, 7.10198784f, 1.1806736f, 6.49977875f, 3.08598948f, 7.89290285f,
};

/* ---- PCA ------------------------------------------------------------------------------------------ */

static const float pca_X[10 * 4] = {
    2.5f, 2.4f, 0.5f, 1.0f,  0.5f, 0.7f, 1.5f, -1.0f, 2.2f, 2.9f, 0.1f, 0.3f,  1.9f, 2.2f, 0.8f, 0.0f,
    3.1f, 3.0f, -0.2f, 1.2f, 2.3f, 2.7f, 0.4f, 0.6f,  2.0f, 1.6f, 1.1f, -0.4f, 1.0f, 1.1f, 1.9f, -0.8f,
    1.5f, 1.6f, 0.9f, 0.1f,  1.1f, 0.9f, 1.6f, -0.6f};

/* numpy: U,S,Vt = svd(X - mean); sign: largest-|value| entry of each row of Vt positive; ev = S^2/(n-1) */
static const double pca_components[3][4] = {
    {0.5125227875602438, 0.5557905721926176, -0.4406036879868922, 0.4840306005054115},
    {0.40938121234946956, -0.566043546194539, 0.407966916534521, 0.5878475327838876},
    {0.6701794700092415, 0.21573318141526532, 0.43530973841087256, -0.5610918855760056}};
static const double pca_ev[3] = {2.2131250048265163, 0.07363220672649923, 0.04493595510330554};
static const double pca_ratio[3] = {0.940155044306912, 0.03127961160187338, 0.01908919051973446};
static const double pca_scores[3][3] = {{1.2492648465851333, 0.42257720533792692, -0.12722660104833311},
                                        {-2.1292896498903788, -0.20163927913366592, -0.27683846305554261},
                                        {1.2108233808068725, -0.55793894389028909, -0.0017734008880450479}};

Test(analysis, pca_matches_numpy_svd)
{
    fl_ctx *ctx = fl_ctx_new();
    fl_pca_result r;
    cr_assert_eq(fl_pca(ctx, pca_X, 10, 4, 3, &r), FL_OK, "%s", fl_ctx_message(ctx));
    cr_assert_eq(r.k, 3);
    for (int c = 0; c < 3; c++) {
        for (int j = 0; j < 4; j++)
            cr_assert_float_eq(r.components[c * 4 + j], pca_components[c][j], 1e-9, "component %d[%d]: %.12g", c, j,
                               r.components[c * 4 + j]);
        cr_assert_float_eq(r.explained_variance[c], pca_ev[c], 1e-10 * (1 + pca_ev[c]), "ev %d", c);
        cr_assert_float_eq(r.explained_variance_ratio[c], pca_ratio[c], 1e-10, "ratio %d", c);
    }
    for (int i = 0; i < 3; i++)
        for (int c = 0; c < 3; c++)
            cr_assert_float_eq(r.scores[i * 3 + c], pca_scores[i][c], 1e-5, "score %d,%d", i, c);
    /* the same result with one thread, bit for bit */
    fl_pca_result r1;
    fl_ctx_set_threads(ctx, 1);
    cr_assert_eq(fl_pca(ctx, pca_X, 10, 4, 3, &r1), FL_OK);
    cr_assert(memcmp(r.components, r1.components, 12 * sizeof(double)) == 0);
    cr_assert(memcmp(r.scores, r1.scores, 30 * sizeof(float)) == 0);
    fl_pca_result_free(&r);
    fl_pca_result_free(&r1);
    cr_assert_null(r.scores);
    fl_ctx_free(ctx);
}

Test(analysis, pca_rejects_bad_input_and_leaves_the_result_empty)
{
    fl_ctx *ctx = fl_ctx_new();
    fl_pca_result r;
    cr_assert_eq(fl_pca(ctx, pca_X, 10, 4, 5, &r), FL_EINVAL);
    cr_assert(strstr(fl_ctx_message(ctx), "at most 4") != NULL, "%s", fl_ctx_message(ctx));
    cr_assert_null(r.components);
    cr_assert_eq(fl_pca(ctx, pca_X, 10, 4, 0, &r), FL_EINVAL);
    cr_assert_eq(fl_pca(ctx, pca_X, 1, 4, 1, &r), FL_EINVAL);
    float bad[40];
    memcpy(bad, pca_X, sizeof bad);
    bad[13] = NAN;
    cr_assert_eq(fl_pca(ctx, bad, 10, 4, 2, &r), FL_EINVAL);
    cr_assert(strstr(fl_ctx_message(ctx), "sample 3, feature 1") != NULL, "%s", fl_ctx_message(ctx));
    cr_assert(isnan(bad[13]) && bad[0] == 2.5f, "input modified");
    fl_ctx_free(ctx);
}

/* ---- NMF ------------------------------------------------------------------------------------------ */

#define NMF_N 40
#define NMF_D 12
#define NMF_K 3

static double lcg(unsigned long long *s)
{
    *s = (*s * 1103515245ull + 12345ull) % 2147483648ull;
    return (double)*s / 2147483648.0;
}

/* Planted separable factors: sample c is pure component c, feature c belongs to component c only. */
static void nmf_planted(double W[NMF_N][NMF_K], double H[NMF_K][NMF_D], float *X)
{
    unsigned long long s = 12345;
    for (int i = 0; i < NMF_N; i++)
        for (int c = 0; c < NMF_K; c++) W[i][c] = lcg(&s);
    for (int c = 0; c < NMF_K; c++)
        for (int j = 0; j < NMF_D; j++) H[c][j] = lcg(&s);
    for (int c = 0; c < NMF_K; c++) {
        for (int b = 0; b < NMF_K; b++) W[c][b] = b == c;
        for (int b = 0; b < NMF_K; b++) H[b][c] = b == c;
        H[(c + 1) % NMF_K][3 + c] = 0;
    }
    for (int i = 0; i < NMF_N; i++)
        for (int j = 0; j < NMF_D; j++) {
            double v = 0;
            for (int c = 0; c < NMF_K; c++) v += W[i][c] * H[c][j];
            X[i * NMF_D + j] = (float)v;
        }
}

static double cosine(const double *a, int sa, const float *b, int sb, int n)
{
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; i++) {
        ab += a[i * sa] * b[i * sb];
        aa += a[i * sa] * a[i * sa];
        bb += (double)b[i * sb] * b[i * sb];
    }
    return ab / sqrt(aa * bb);
}

Test(analysis, nmf_recovers_a_planted_low_rank_matrix)
{
    double W[NMF_N][NMF_K], H[NMF_K][NMF_D];
    float X[NMF_N * NMF_D];
    nmf_planted(W, H, X);
    fl_ctx *ctx = fl_ctx_new();
    fl_nmf_config cfg;
    fl_nmf_config_default(&cfg);
    cfg.k = NMF_K;
    cfg.tol = 0;
    /* the error decreases with more iterations (multiplicative updates never increase it) */
    double prev = INFINITY;
    const int iters[] = {10, 100, 1000};
    for (int t = 0; t < 3; t++) {
        fl_nmf_result r;
        cfg.max_iter = iters[t];
        cr_assert_eq(fl_nmf(ctx, X, NMF_N, NMF_D, &cfg, &r), FL_OK, "%s", fl_ctx_message(ctx));
        cr_assert_eq(r.iterations, iters[t]);
        cr_assert_lt(r.relative_err, prev, "error did not decrease: %g after %d iterations", r.relative_err, iters[t]);
        prev = r.relative_err;
        fl_nmf_result_free(&r);
    }
    fl_nmf_result r;
    cfg.max_iter = 5000;
    cr_assert_eq(fl_nmf(ctx, X, NMF_N, NMF_D, &cfg, &r), FL_OK);
    cr_assert_lt(r.relative_err, 1e-3, "relative error %g", r.relative_err);
    for (int i = 0; i < NMF_N * NMF_K; i++) cr_assert_geq(r.W[i], 0.f);
    for (int i = 0; i < NMF_K * NMF_D; i++) cr_assert_geq(r.H[i], 0.f);
    /* every planted component is matched by exactly one recovered one (rows of H, columns of W) */
    int used[NMF_K] = {0};
    for (int c = 0; c < NMF_K; c++) {
        int best = -1;
        double bc = -1;
        for (int e = 0; e < NMF_K; e++) {
            double cs = cosine(&H[c][0], 1, r.H + e * NMF_D, 1, NMF_D);
            if (cs > bc) bc = cs, best = e;
        }
        cr_assert_gt(bc, 0.999, "component %d: best cosine %g", c, bc);
        cr_assert(!used[best], "two planted components matched recovered component %d", best);
        used[best] = 1;
        double cw = cosine(&W[0][c], NMF_K, r.W + best, NMF_K, NMF_N);
        cr_assert_gt(cw, 0.999, "loadings of component %d: cosine %g", c, cw);
    }
    /* deterministic and independent of the thread count */
    fl_nmf_result r1;
    fl_ctx_set_threads(ctx, 1);
    cr_assert_eq(fl_nmf(ctx, X, NMF_N, NMF_D, &cfg, &r1), FL_OK);
    cr_assert(memcmp(r.W, r1.W, sizeof(float) * NMF_N * NMF_K) == 0);
    cr_assert(memcmp(r.H, r1.H, sizeof(float) * NMF_K * NMF_D) == 0);
    fl_nmf_result_free(&r);
    fl_nmf_result_free(&r1);
    fl_ctx_free(ctx);
}

Test(analysis, nmf_negative_input_needs_a_shift)
{
    double W[NMF_N][NMF_K], H[NMF_K][NMF_D];
    float X[NMF_N * NMF_D], Xs[NMF_N * NMF_D];
    nmf_planted(W, H, X);
    for (int i = 0; i < NMF_N * NMF_D; i++) Xs[i] = X[i] - 2.0f; /* minimum of X is 0: shifted min -2 */
    fl_ctx *ctx = fl_ctx_new();
    fl_nmf_config cfg;
    fl_nmf_config_default(&cfg);
    cfg.k = NMF_K;
    fl_nmf_result r;
    cr_assert_eq(fl_nmf(ctx, Xs, NMF_N, NMF_D, &cfg, &r), FL_EINVAL);
    cr_assert(strstr(fl_ctx_message(ctx), "negative") && strstr(fl_ctx_message(ctx), "shift"), "%s",
              fl_ctx_message(ctx));
    cr_assert_null(r.W);
    cfg.shift = 1;
    cfg.max_iter = 300;
    cfg.tol = 0;
    cr_assert_eq(fl_nmf(ctx, Xs, NMF_N, NMF_D, &cfg, &r), FL_OK, "%s", fl_ctx_message(ctx));
    cr_assert_float_eq(r.shift, -2.0, 1e-6);
    /* shifting back gives the unshifted factorisation: same error as on X itself */
    fl_nmf_result r0;
    cfg.shift = 0;
    cr_assert_eq(fl_nmf(ctx, X, NMF_N, NMF_D, &cfg, &r0), FL_OK);
    cr_assert_float_eq(r.relative_err, r0.relative_err, 1e-5 * r0.relative_err);
    fl_nmf_result_free(&r);
    fl_nmf_result_free(&r0);
    /* random init, k too large for nndsvda, NaN */
    cfg.k = NMF_D + 1;
    cr_assert_eq(fl_nmf(ctx, X, NMF_N, NMF_D, &cfg, &r), FL_EINVAL);
    cfg.init = FL_NMF_INIT_RANDOM;
    cr_assert_eq(fl_nmf(ctx, X, NMF_N, NMF_D, &cfg, &r), FL_OK, "%s", fl_ctx_message(ctx));
    fl_nmf_result_free(&r);
    cfg.k = NMF_N + 1;
    cr_assert_eq(fl_nmf(ctx, X, NMF_N, NMF_D, &cfg, &r), FL_EINVAL);
    cfg.k = 2;
    X[5] = INFINITY;
    cr_assert_eq(fl_nmf(ctx, X, NMF_N, NMF_D, &cfg, &r), FL_EINVAL);
    fl_ctx_free(ctx);
}

/* ---- k-means, GMM, nearest ------------------------------------------------------------------------ */

static const double gmm_true_means[3][2] = {{0, 0}, {6, 1}, {2, 7}};
static const double gmm_true_cov[3][3] = {{1.0, 0.3, 0.5}, {0.6, -0.2, 1.2}, {0.8, 0.0, 0.4}}; /* xx, xy, yy */
/* sklearn GaussianMixture(3, full, random_state=0).fit(gmm_data).score(gmm_data) */
#define SKLEARN_GMM_SCORE (-3.531501641677324)

/* recovered component matching true cluster c (nearest mean) */
static int match(const double *means, int c)
{
    int best = 0;
    double bd = INFINITY;
    for (int e = 0; e < 3; e++) {
        double dx = means[e * 2] - gmm_true_means[c][0], dy = means[e * 2 + 1] - gmm_true_means[c][1];
        if (dx * dx + dy * dy < bd) bd = dx * dx + dy * dy, best = e;
    }
    return best;
}

Test(analysis, gmm_recovers_three_clusters_and_matches_sklearn)
{
    fl_ctx *ctx = fl_ctx_new();
    fl_gmm_config cfg;
    fl_gmm_config_default(&cfg);
    cfg.k = 3;
    fl_gmm_result r;
    cr_assert_eq(fl_gmm_fit(ctx, gmm_data, 300, 2, &cfg, &r), FL_OK, "%s", fl_ctx_message(ctx));
    cr_assert(r.converged);
    cr_assert_geq(r.iterations, 1);
    int perm[3], hit[3] = {0};
    for (int c = 0; c < 3; c++) {
        perm[c] = match(r.means, c);
        cr_assert(!hit[perm[c]], "two clusters share component %d", perm[c]);
        hit[perm[c]] = 1;
        const double *m = r.means + perm[c] * 2, *S = r.covariances + perm[c] * 4;
        /* sampling error of 100 points: ~0.1 on the means, ~0.15 relative on the variances */
        cr_assert_float_eq(m[0], gmm_true_means[c][0], 0.25, "mean %d x %g", c, m[0]);
        cr_assert_float_eq(m[1], gmm_true_means[c][1], 0.25, "mean %d y %g", c, m[1]);
        cr_assert_float_eq(S[0], gmm_true_cov[c][0], 0.3, "cov %d xx %g", c, S[0]);
        cr_assert_float_eq(S[1], gmm_true_cov[c][1], 0.2, "cov %d xy %g", c, S[1]);
        cr_assert_float_eq(S[3], gmm_true_cov[c][2], 0.3, "cov %d yy %g", c, S[3]);
        cr_assert_float_eq(S[1], S[2], 1e-15);
        cr_assert_float_eq(r.weights[perm[c]], 1.0 / 3.0, 0.02);
    }
    int correct = 0;
    for (int i = 0; i < 300; i++) correct += r.labels[i] == perm[i / 100];
    cr_assert_gt(correct / 300.0, 0.98, "label accuracy %g", correct / 300.0);
    cr_assert_float_eq(r.mean_log_likelihood, SKLEARN_GMM_SCORE, 1e-6, "score %.12g vs sklearn %.12g",
                       r.mean_log_likelihood, SKLEARN_GMM_SCORE);
    cr_assert_float_eq(r.log_likelihood, 300 * SKLEARN_GMM_SCORE, 3e-4);
    /* the same for one thread, bit for bit */
    fl_gmm_result r1;
    fl_ctx_set_threads(ctx, 1);
    cr_assert_eq(fl_gmm_fit(ctx, gmm_data, 300, 2, &cfg, &r1), FL_OK);
    cr_assert(memcmp(r.means, r1.means, sizeof(double) * 6) == 0);
    cr_assert(memcmp(r.covariances, r1.covariances, sizeof(double) * 12) == 0);
    cr_assert(memcmp(r.labels, r1.labels, sizeof(int32_t) * 300) == 0);
    cr_assert_eq(r.log_likelihood, r1.log_likelihood);
    fl_gmm_result_free(&r);
    fl_gmm_result_free(&r1);
    fl_ctx_free(ctx);
}

Test(analysis, gmm_and_kmeans_reject_bad_input)
{
    fl_ctx *ctx = fl_ctx_new();
    fl_gmm_config cfg;
    fl_gmm_config_default(&cfg);
    fl_gmm_result r;
    cfg.k = 301;
    cr_assert_eq(fl_gmm_fit(ctx, gmm_data, 300, 2, &cfg, &r), FL_EINVAL);
    cr_assert(strstr(fl_ctx_message(ctx), "301 components for only 300 samples"), "%s", fl_ctx_message(ctx));
    cr_assert_null(r.means);
    cfg.k = 0;
    cr_assert_eq(fl_gmm_fit(ctx, gmm_data, 300, 2, &cfg, &r), FL_EINVAL);
    cfg.k = 3;
    cr_assert_eq(fl_gmm_fit(ctx, gmm_data, 300, 0, &cfg, &r), FL_EINVAL);
    float bad[600];
    memcpy(bad, gmm_data, sizeof bad);
    bad[77] = NAN;
    cr_assert_eq(fl_gmm_fit(ctx, bad, 300, 2, &cfg, &r), FL_EINVAL);
    cr_assert(strstr(fl_ctx_message(ctx), "NaN"), "%s", fl_ctx_message(ctx));
    double C[6];
    int32_t lab[300];
    cr_assert_eq(fl_kmeans(ctx, gmm_data, 300, 2, 301, 100, 1, C, lab, NULL, NULL), FL_EINVAL);
    cr_assert_eq(fl_kmeans(ctx, bad, 300, 2, 3, 100, 1, C, lab, NULL, NULL), FL_EINVAL);
    fl_ctx_free(ctx);
}

Test(analysis, kmeans_finds_the_clusters_and_is_seeded)
{
    fl_ctx *ctx = fl_ctx_new();
    double C[6], C2[6];
    int32_t lab[300], lab2[300];
    double inertia;
    int32_t it;
    cr_assert_eq(fl_kmeans(ctx, gmm_data, 300, 2, 3, 300, 7, C, lab, &inertia, &it), FL_OK, "%s", fl_ctx_message(ctx));
    int correct = 0, perm[3];
    for (int c = 0; c < 3; c++) perm[c] = match(C, c);
    for (int i = 0; i < 300; i++) correct += lab[i] == perm[i / 100];
    cr_assert_gt(correct, 294, "%d of 300 correct", correct);
    /* inertia is the sum of squared distances to the assigned centres */
    double s = 0;
    for (int i = 0; i < 300; i++) {
        double dx = gmm_data[2 * i] - C[2 * lab[i]], dy = gmm_data[2 * i + 1] - C[2 * lab[i] + 1];
        s += dx * dx + dy * dy;
    }
    cr_assert_float_eq(inertia, s, 1e-9 * s);
    fl_ctx_set_threads(ctx, 1);
    cr_assert_eq(fl_kmeans(ctx, gmm_data, 300, 2, 3, 300, 7, C2, lab2, NULL, NULL), FL_OK);
    cr_assert(memcmp(C, C2, sizeof C) == 0 && memcmp(lab, lab2, sizeof lab) == 0);
    fl_ctx_free(ctx);
}

Test(analysis, nearest_samples_in_order_with_mask)
{
    fl_ctx *ctx = fl_ctx_new();
    const float X[] = {0, 0, 1, 0, 0, 2, 5, 5, 1, 1, -1, 0};
    const double p[2] = {0.25, 0.5};
    int64_t idx[6], found;
    cr_assert_eq(fl_nearest_samples(ctx, X, 6, 2, p, NULL, 3, idx, &found), FL_OK);
    cr_assert_eq(found, 3);
    /* squared distances (exact in binary): 0.3125, 0.8125, 2.3125, 41.3125, 0.8125, 1.8125 */
    cr_assert_eq(idx[0], 0);
    cr_assert_eq(idx[1], 1);
    cr_assert_eq(idx[1], 1); /* tie with 4: lower index first */
    cr_assert_eq(idx[2], 4);
    const uint8_t valid[6] = {0, 1, 1, 1, 0, 1};
    cr_assert_eq(fl_nearest_samples(ctx, X, 6, 2, p, valid, 10, idx, &found), FL_OK);
    cr_assert_eq(found, 4);
    cr_assert_eq(idx[0], 1);
    cr_assert_eq(idx[1], 5);
    cr_assert_eq(idx[2], 2);
    cr_assert_eq(idx[3], 3);
    cr_assert_eq(fl_nearest_samples(ctx, X, 6, 2, p, NULL, 0, idx, &found), FL_EINVAL);
    /* NaN rows the mask leaves out (a latent map's frame edge) do not matter; a kept one is refused */
    float Xn[12];
    for (int i = 0; i < 12; i++) Xn[i] = X[i];
    Xn[0] = NAN;
    Xn[9] = INFINITY;
    cr_assert_eq(fl_nearest_samples(ctx, Xn, 6, 2, p, NULL, 3, idx, &found), FL_EINVAL);
    cr_assert_eq(fl_nearest_samples(ctx, Xn, 6, 2, p, valid, 10, idx, &found), FL_OK);
    cr_assert_eq(found, 4);
    cr_assert_eq(idx[0], 1);
    cr_assert_eq(idx[3], 3);
    const uint8_t keep_nan[6] = {1, 1, 0, 0, 0, 0};
    cr_assert_eq(fl_nearest_samples(ctx, Xn, 6, 2, p, keep_nan, 1, idx, &found), FL_EINVAL);
    fl_ctx_free(ctx);
}
