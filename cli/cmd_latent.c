/* ferrolens latent gmm: clustering of a latent/embedding stack (X x Y x d) with a Gaussian mixture,
 * and the "inverse" views of the clusters (structure patches, decoded centroid curves). */
#include "cli.h"
#include "ferrolens/im2spec.h"
#include "io/model_meta.h"
#include "io/safetensors.h"
#include "fl_internal.h"
#include "ferrolens/analysis.h"
#include "io/spectral_grid.h"
#include "io/tiff.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GMM_CMD "latent gmm"
#define SCATTER 256
#define GRID_MAX 128

static const char gmm_outputs[] =
    "Outputs in --out (written only when the fit succeeded):\n"
    "  clusters.tif            X x Y map of the cluster of every pixel, 1..K (argmax responsibility); 0 where\n"
    "                          the latent vector is NaN (e.g. the frame edge im2spec skips)\n"
    "  centroids.csv           cluster, weight, pixel count, then the mean of every latent dimension\n"
    "  scatter.tif             256 x 256 x K: 2-D histogram of latent dims 0 (x, left to right) and 1 (y, bottom\n"
    "                          to top), one slice of counts per cluster; the ranges are in summary.json\n"
    "  nearest_patches.tif     with --structure: P x P x K, mean structure patch of the --nearest pixels\n"
    "                          nearest each centroid in latent space (patches leaving the frame are skipped)\n"
    "  decoded_centroids.csv   with --model of spectral-ae or im2spec: axis value, then each centroid decoded\n"
    "                          to a curve\n"
    "  decoded_centroids.tif   with --model of spec2im: each centroid decoded to a structure patch\n"
    "  latent_grid.tif         with --model of spec2im: --grid x --grid tiles of P x P decoded patches (P: the\n"
    "                          model's patch size, pixels of the stack's calibration); tile column c (left to\n"
    "                          right) decodes z0 = lo0 + (hi0 - lo0) c / (n - 1), tile row r (bottom to top)\n"
    "                          z1 likewise; lo/hi: the range of dims 0 and 1 over the stack, other dims at their\n"
    "                          mean; the values are grid_z0 / grid_z1 in summary.json (also: 'ferrolens latent\n"
    "                          grid', which takes a given range)\n"
    "  summary.json            what --json prints: weights, means, covariances, log-likelihood, convergence\n";

static cli_option gmm_opts[] = {
    {"input", CLI_STRING, "FILE", "latent stack: X x Y x d slices (or channels/frames), e.g. embedding.tif", NULL, 0, 0,
     0, 0, 0, NULL},
    CLI_OPT_OUT,
    {"components", CLI_INT, "K", "number of clusters (mixture components)", "3", 1, 4096, 0, 0, 0, NULL},
    {"max-iter", CLI_INT, "N", "maximum EM iterations", "100", 1, 1e9, 0, 0, 0, NULL},
    {"tol", CLI_FLOAT, "X", "stop when the mean log-likelihood changes by less than X", "1e-3", 0, 1e9, 0, 0, 0, NULL},
    {"reg-covar", CLI_FLOAT, "X", "added to every covariance diagonal", "1e-6", 0, 1e9, 0, 0, 0, NULL},
    {"structure", CLI_STRING, "FILE", "structure image (X x Y, one plane) for nearest_patches.tif", NULL, 0, 0, 0, 0, 0,
     NULL},
    {"patch", CLI_INT, "P", "patch size for --structure (rows i-P/2 .. i+P/2-1, as im2spec)", "16", 1, 65536, 0, 0, 0,
     NULL},
    {"nearest", CLI_INT, "N", "pixels averaged per centroid for --structure", "20", 1, 1e9, 0, 0, 0, NULL},
    CLI_OPT_MODEL,
    {"grid", CLI_INT, "N", "with a spec2im --model: N x N tiles in latent_grid.tif (0: no montage)", "8", 0, GRID_MAX, 0,
     0, 0, NULL},
    CLI_OPT_SEED,
    CLI_OPT_THREADS,
    CLI_OPT_JSON,
    CLI_OPT_MEMORY,
    CLI_OPT_END};

/* The latent stack as an n x d matrix (pixel-major). The stack has one non-singleton of channels,
 * slices and frames; its length is d. */
static fl_status latent_read(fl_ctx *ctx, const char *path, fl_image *img, float **X, int64_t *n, int32_t *d)
{
    fl_status st = fl_tiff_read(ctx, path, img);
    if (st) return st;
    if (img->is_rgb || !img->data)
        return fl_fail(ctx, FL_EUNSUPPORTED, "'%s' is an RGB image; a latent stack needs one grey-value slice per latent "
                                             "dimension", path);
    const int64_t C = img->channels, Z = img->slices, T = img->frames;
    if ((C > 1) + (Z > 1) + (T > 1) > 1)
        return fl_fail(ctx, FL_EINVAL,
                       "'%s' has %lld channels, %lld slices and %lld frames; a latent stack needs its dimensions along "
                       "one axis only",
                       path, (long long)C, (long long)Z, (long long)T);
    const int64_t D = C * Z * T;
    if (D < 2)
        return fl_fail(ctx, FL_EINVAL, "'%s' has a single plane; a latent stack needs at least 2 slices (one per latent "
                                       "dimension)", path);
    if (D > 4096) return fl_fail(ctx, FL_EINVAL, "'%s' has %lld planes; at most 4096 latent dimensions", path, (long long)D);
    const int64_t np = img->width * img->height;
    float *x = fl_alloc((size_t)np * D * sizeof(float));
    if (!x) return fl_fail(ctx, FL_ENOMEM, "out of memory for %lld x %lld latent values", (long long)np, (long long)D);
    for (int64_t i = 0; i < np; i++)
        for (int64_t k = 0; k < D; k++) x[i * D + k] = img->data[k * np + i];
    *X = x;
    *n = np;
    *d = (int32_t)D;
    return FL_OK;
}

static FILE *open_out(fl_ctx *ctx, const char *out, const char *name, char *path)
{
    if (cli_path_join(path, CLI_PATH_MAX, out, name)) {
        fl_fail(ctx, FL_EINVAL, "output path too long");
        return NULL;
    }
    FILE *f = fopen(path, "w");
    if (!f) fl_fail(ctx, FL_EIO, "cannot write '%s'", path);
    return f;
}

static fl_status close_out(fl_ctx *ctx, FILE *f, const char *path)
{
    return fclose(f) != 0 ? fl_fail(ctx, FL_EIO, "cannot write '%s'", path) : FL_OK;
}

/* nearest_patches.tif: P x P x K mean patches of the N valid pixels nearest each centroid. */
static fl_status nearest_patches(fl_ctx *ctx, const fl_image *lat, const float *X, int64_t n, int32_t d,
                                 const fl_gmm_result *g, const fl_image *s, int64_t P, int64_t N, fl_image *out,
                                 int64_t *used)
{
    const int64_t W = lat->width, H = lat->height, h = P / 2;
    uint8_t *valid = fl_calloc((size_t)n, 1);
    int64_t *idx = fl_alloc((size_t)N * sizeof(int64_t));
    fl_status st = (!valid || !idx) ? fl_fail(ctx, FL_ENOMEM, "out of memory") : FL_OK;
    int64_t nvalid = 0;
    for (int64_t y = 0; !st && y < H; y++)
        for (int64_t x = 0; x < W; x++) {
            int ok = x - h >= 0 && x - h + P <= W && y - h >= 0 && y - h + P <= H;
            for (int32_t q = 0; ok && q < d; q++) ok = isfinite(X[(y * W + x) * d + q]) != 0;
            valid[y * W + x] = (uint8_t)ok;
            nvalid += ok;
        }
    if (!st && !nvalid)
        st = fl_fail(ctx, FL_EINVAL, "--patch %lld does not fit in the %lld x %lld image: no pixel has a whole patch",
                     (long long)P, (long long)W, (long long)H);
    if (!st) st = fl_image_alloc(ctx, out, P, P, 1, g->k, 1);
    for (int32_t c = 0; !st && c < g->k; c++) {
        int64_t found = 0;
        st = fl_nearest_samples(ctx, X, n, d, g->means + (int64_t)c * d, valid, N, idx, &found);
        if (st) break;
        float *dst = out->data + (int64_t)c * P * P;
        for (int64_t r = 0; r < P; r++)
            for (int64_t q = 0; q < P; q++) {
                double sum = 0;
                for (int64_t m = 0; m < found; m++) {
                    const int64_t x = idx[m] % W, y = idx[m] / W;
                    sum += s->data[(y - h + r) * W + (x - h + q)];
                }
                dst[r * P + q] = (float)(sum / (double)found);
            }
        char lab[64];
        snprintf(lab, sizeof lab, "cluster %d (%lld nearest)", (int)c + 1, (long long)found);
        st = fl_image_set_label(ctx, out, c, lab);
        *used = found;
    }
    if (!st) fl_image_copy_calibration(out, s);
    fl_free(valid);
    fl_free(idx);
    return st;
}

/* The decoder of a model file, for the centroids: spectral-ae and im2spec decode to curves, spec2im to
 * structure patches. */
typedef struct centroid_decoder {
    fl_sae *sae;
    fl_i2s *i2s;
    int32_t latent, out_len;  /* latent size, values per decoded centroid */
    int32_t patch;            /* spec2im: output is patch x patch; 0 for curves */
    const double *axis;       /* curves: axis values (NULL: index) */
    const char *label, *unit;
} centroid_decoder;

static void decoder_free(centroid_decoder *dc)
{
    fl_sae_free(dc->sae);
    fl_i2s_free(dc->i2s);
    memset(dc, 0, sizeof *dc);
}

/* patches_only: the latent grid, which needs a spec2im model (latent vectors -> structure patches). */
static fl_status decoder_load(fl_ctx *ctx, const char *path, int patches_only, centroid_decoder *dc)
{
    memset(dc, 0, sizeof *dc);
    fl_tensor_list l;
    fl_status st = fl_safetensors_read(ctx, path, &l);
    if (st) return st;
    static const char *const families[] = {"spectral-ae", "im2spec", "spec2im"};
    int which = -1;
    st = patches_only ? fl_model_meta_check(ctx, &l, path, families + 2, 1,
                                            "a spec2im model (the latent grid decodes latent vectors to structure patches)",
                                            &which)
                      : fl_model_meta_check(ctx, &l, path, families, 3,
                                            "a model that decodes latent vectors (spectral-ae, im2spec or spec2im)", &which);
    fl_tensor_list_free(&l);
    if (st) return st;
    const int is_sae = !patches_only && which == 0;
    if (is_sae) {
        if ((st = fl_sae_load(ctx, path, &dc->sae))) return st;
        const fl_sae_config *c = fl_sae_get_config(dc->sae);
        dc->latent = c->latent;
        dc->out_len = c->steps;
        dc->axis = fl_sae_axis_values(dc->sae);
        dc->label = fl_sae_axis_label(dc->sae);
        dc->unit = fl_sae_axis_unit(dc->sae);
        return FL_OK;
    }
    if ((st = fl_i2s_load(ctx, path, &dc->i2s))) return st;
    const fl_i2s_config *c = fl_i2s_get_config(dc->i2s);
    dc->latent = c->latent;
    dc->out_len = (int32_t)fl_i2s_output_size(dc->i2s);
    if (c->direction == FL_I2S_SPEC2IM) dc->patch = c->patch;
    else dc->axis = fl_i2s_axis_values(dc->i2s);
    return FL_OK;
}

/* Each centroid decoded (k x out_len values in *decoded). */
static fl_status decode_centroids(fl_ctx *ctx, const char *model, const fl_gmm_result *g, centroid_decoder *dc,
                                  float **decoded)
{
    fl_status st = decoder_load(ctx, model, 0, dc);
    if (st) return st;
    const int32_t k = g->k, d = g->d;
    if (dc->latent != d)
        return fl_fail(ctx, FL_EMISMATCH, "the model '%s' has %d latent channels but the latent stack has %d", model,
                       (int)dc->latent, (int)d);
    float *emb = fl_alloc((size_t)k * d * sizeof(float)), *cv = fl_alloc((size_t)k * dc->out_len * sizeof(float));
    if (!emb || !cv) st = fl_fail(ctx, FL_ENOMEM, "out of memory");
    for (int64_t i = 0; !st && i < (int64_t)k * d; i++) emb[i] = (float)g->means[i];
    if (!st) st = dc->sae ? fl_sae_decode(ctx, dc->sae, emb, k, cv) : fl_i2s_decode(ctx, dc->i2s, emb, k, cv);
    fl_free(emb);
    if (st) {
        fl_free(cv);
        return st;
    }
    *decoded = cv;
    return FL_OK;
}

/* decoded_centroids.csv (curves) or decoded_centroids.tif (spec2im patches) */
static fl_status write_decoded(fl_ctx *ctx, const char *out, const centroid_decoder *dc, const float *dec, int32_t k)
{
    if (dc->patch) {
        fl_image im;
        fl_image_init(&im);
        const int64_t P = dc->patch;
        fl_status st = fl_image_alloc(ctx, &im, P, P, 1, k, 1);
        for (int32_t q = 0; !st && q < k; q++) {
            char label[32];
            snprintf(label, sizeof label, "cluster %d", (int)q + 1);
            memcpy(im.data + (size_t)q * P * P, dec + (size_t)q * P * P, (size_t)(P * P) * sizeof(float));
            st = fl_image_set_label(ctx, &im, q, label);
        }
        if (!st) st = cli_write_tiff(ctx, out, "decoded_centroids.tif", &im);
        fl_image_free(&im);
        return st;
    }
    const int32_t T = dc->out_len;
    char path[CLI_PATH_MAX];
    FILE *f = open_out(ctx, out, "decoded_centroids.csv", path);
    if (!f) return FL_EIO;
    const char *unit = dc->unit ? dc->unit : "", *label = dc->label;
    fprintf(f, "%s%s%s%s", label && label[0] ? label : "axis", unit[0] ? " (" : "", unit, unit[0] ? ")" : "");
    for (int32_t q = 0; q < k; q++) fprintf(f, ",cluster %d", (int)q + 1);
    fputc('\n', f);
    for (int32_t t = 0; t < T; t++) {
        fprintf(f, "%.9g", dc->axis ? dc->axis[t] : (double)t);
        for (int32_t q = 0; q < k; q++) fprintf(f, ",%.7g", dec[(int64_t)q * T + t]);
        fputc('\n', f);
    }
    return close_out(ctx, f, path);
}

/* ---- latent grid montage (spec2im) ---------------------------------------------------------------- */

/* Ranges of latent dims 0 and 1 and the mean of every dim over the pixels whose latent vector is finite
 * (X: n x d). FL_EINVAL when there is none. */
static fl_status latent_stats(fl_ctx *ctx, const char *path, const float *X, int64_t n, int32_t d, double lo[2],
                              double hi[2], double *mean)
{
    int64_t used = 0;
    lo[0] = lo[1] = INFINITY;
    hi[0] = hi[1] = -INFINITY;
    for (int32_t q = 0; q < d; q++) mean[q] = 0;
    for (int64_t i = 0; i < n; i++) {
        int ok = 1;
        for (int32_t q = 0; q < d; q++) ok &= isfinite(X[i * d + q]) != 0;
        if (!ok) continue;
        used++;
        for (int32_t q = 0; q < d; q++) mean[q] += X[i * d + q];
        for (int q = 0; q < 2; q++) {
            lo[q] = fmin(lo[q], X[i * d + q]);
            hi[q] = fmax(hi[q], X[i * d + q]);
        }
    }
    if (!used) return fl_fail(ctx, FL_EINVAL, "the latent stack '%s' has no pixel with finite values", path);
    for (int32_t q = 0; q < d; q++) mean[q] /= (double)used;
    return FL_OK;
}

/* The n x n montage of decoded patches (n*P x n*P pixels, one plane). Tile column c (left to right) has
 * z0 = v0[c], tile row r (top to bottom) z1 = v1[n-1-r] (so z1 grows upwards, as in scatter.tif);
 * v[i] = lo + (hi - lo) i / (n - 1) (the midpoint for n = 1); dims >= 2 are held at hold[q]. cal: the
 * latent stack, whose pixel size the patches share (NULL: uncalibrated). v0, v1: n values each. */
static fl_status grid_montage(fl_ctx *ctx, const centroid_decoder *dc, int32_t n, const double lo[2],
                              const double hi[2], const double *hold, const fl_image *cal, fl_image *out, double *v0,
                              double *v1)
{
    const int32_t z = dc->latent;
    const int64_t P = dc->patch, T = (int64_t)n * n;
    if (!dc->i2s || !P) return fl_fail(ctx, FL_EINVAL, "the latent grid needs a spec2im model");
    if (z < 2)
        return fl_fail(ctx, FL_EINVAL, "the model has %d latent dimension; the latent grid varies dims 0 and 1 and needs "
                                       "a model with at least 2", (int)z);
    if (n < 1 || n > GRID_MAX) return fl_fail(ctx, FL_EINVAL, "the latent grid size must be 1..%d, not %d", GRID_MAX, (int)n);
    for (int q = 0; q < 2; q++)
        if (!isfinite(lo[q]) || !isfinite(hi[q]) || lo[q] > hi[q])
            return fl_fail(ctx, FL_EINVAL, "the latent grid range of dim %d (%g .. %g) is not a finite interval", q, lo[q], hi[q]);
    for (int32_t i = 0; i < n; i++) {
        v0[i] = n == 1 ? 0.5 * (lo[0] + hi[0]) : lo[0] + (hi[0] - lo[0]) * i / (n - 1);
        v1[i] = n == 1 ? 0.5 * (lo[1] + hi[1]) : lo[1] + (hi[1] - lo[1]) * i / (n - 1);
    }
    float *lat = fl_alloc((size_t)T * z * sizeof(float)), *dec = fl_alloc((size_t)T * P * P * sizeof(float));
    fl_status st = (!lat || !dec) ? fl_fail(ctx, FL_ENOMEM, "out of memory for the %d x %d latent grid", (int)n, (int)n) : FL_OK;
    for (int64_t r = 0; !st && r < n; r++)
        for (int64_t c = 0; c < n; c++) {
            float *v = lat + (r * n + c) * z;
            v[0] = (float)v0[c];
            v[1] = (float)v1[n - 1 - r];
            for (int32_t q = 2; q < z; q++) v[q] = (float)hold[q];
        }
    if (!st) st = fl_i2s_decode(ctx, dc->i2s, lat, T, dec);
    for (int64_t i = 0; !st && i < T * P * P; i++)
        if (!isfinite(dec[i]))
            st = fl_fail(ctx, FL_EINVAL, "the model decodes latent vector (%g, %g) of the grid to non-finite values",
                         (double)lat[(i / (P * P)) * z], (double)lat[(i / (P * P)) * z + 1]);
    if (!st) st = fl_image_alloc(ctx, out, n * P, n * P, 1, 1, 1);
    if (!st) {
        const int64_t W = n * P;
        for (int64_t t = 0; t < T; t++) {
            const int64_t r = t / n, c = t % n;
            for (int64_t y = 0; y < P; y++)
                memcpy(out->data + (r * P + y) * W + c * P, dec + t * P * P + y * P, (size_t)P * sizeof(float));
        }
        char lab[160];
        snprintf(lab, sizeof lab, "latent grid: z0 %.4g..%.4g left to right, z1 %.4g..%.4g bottom to top", lo[0], hi[0],
                 lo[1], hi[1]);
        st = fl_image_set_label(ctx, out, 0, lab);
    }
    if (!st && cal) fl_image_copy_calibration(out, cal);
    fl_free(lat);
    fl_free(dec);
    return st;
}

static void grid_json(cli_json *j, int32_t n, const double *v0, const double *v1, const double *hold, int32_t z,
                      int64_t P)
{
    cli_json_int(j, "grid", n);
    cli_json_int(j, "grid_tile", P);
    cli_json_num_array(j, "grid_z0", v0, n);
    cli_json_num_array(j, "grid_z1", v1, n);
    if (z > 2) cli_json_num_array(j, "grid_held", hold + 2, z - 2);
}

static int latent_gmm(int argc, char **argv)
{
    int rc = cli_parse(GMM_CMD, gmm_opts, argc - 1, argv + 1);
    if (rc == CLI_HELP) {
        cli_print_help(stdout, GMM_CMD,
                       "Cluster the pixels of a latent/embedding stack with a Gaussian mixture (full covariances, EM "
                       "from a k-means++ initialisation, as scikit-learn's GaussianMixture) and show what the "
                       "clusters mean: cluster map, latent scatter, mean structure patches near each centroid "
                       "(--structure) and decoded centroids (--model of spectral-ae, im2spec or spec2im).",
                       gmm_opts, gmm_outputs);
        return CLI_EXIT_OK;
    }
    if (rc) return rc;
    const char *in = cli_str(gmm_opts, "input"), *out = cli_str(gmm_opts, "out");
    const char *spath = cli_str(gmm_opts, "structure"), *model = cli_str(gmm_opts, "model");
    if (!in || !out) return cli_usage_error(GMM_CMD, "--input and --out are required");
    if (!spath && (cli_is_set(gmm_opts, "patch") || cli_is_set(gmm_opts, "nearest")))
        return cli_usage_error(GMM_CMD, "--patch and --nearest need --structure");
    if (!model && cli_is_set(gmm_opts, "grid")) return cli_usage_error(GMM_CMD, "--grid needs --model (of spec2im)");
    const int32_t grid_n = (int32_t)cli_int(gmm_opts, "grid");
    const int64_t P = cli_int(gmm_opts, "patch"), N = cli_int(gmm_opts, "nearest");
    fl_gmm_config cfg;
    fl_gmm_config_default(&cfg);
    cfg.k = (int32_t)cli_int(gmm_opts, "components");
    cfg.max_iter = (int32_t)cli_int(gmm_opts, "max-iter");
    cfg.tol = cli_float(gmm_opts, "tol");
    cfg.reg_covar = cli_float(gmm_opts, "reg-covar");
    cfg.seed = (uint64_t)cli_int(gmm_opts, "seed");

    fl_ctx *ctx = cli_ctx_new(gmm_opts);
    if (!ctx) return CLI_EXIT_FAIL;
    fl_image lat, simg, patches, im;
    fl_image_init(&lat);
    fl_image_init(&simg);
    fl_image_init(&patches);
    fl_image_init(&im);
    float *X = NULL, *map = NULL;
    int64_t n = 0, used = 0, *count = NULL;
    int32_t d = 0;
    fl_gmm_result g;
    memset(&g, 0, sizeof g);
    cli_json j;
    cli_json_begin(&j);
    cli_json_str(&j, "command", GMM_CMD);
    cli_json_str(&j, "input", in);
    fl_status st = latent_read(ctx, in, &lat, &X, &n, &d);
    if (!st && spath) {
        st = fl_tiff_read(ctx, spath, &simg);
        if (!st && (simg.is_rgb || !simg.data || fl_image_planes(&simg) != 1))
            st = fl_fail(ctx, FL_EINVAL, "the structure image '%s' must be a single grey-value plane", spath);
        if (!st && (simg.width != lat.width || simg.height != lat.height))
            st = fl_fail(ctx, FL_EMISMATCH, "the structure image is %lld x %lld but the latent stack %lld x %lld",
                         (long long)simg.width, (long long)simg.height, (long long)lat.width, (long long)lat.height);
        for (int64_t i = 0; !st && i < n; i++)
            if (!isfinite(simg.data[i])) st = fl_fail(ctx, FL_EINVAL, "the structure image has NaN or infinite pixels");
    }
    /* Pixels without a latent vector (NaN, e.g. the frame edge that im2spec skips) are left out of the
     * mixture; they get cluster 0 in clusters.tif. */
    int32_t *label = NULL;
    float *Xv = NULL;
    int64_t nv = 0;
    if (!st) {
        label = fl_alloc((size_t)(n > 0 ? n : 1) * sizeof(int32_t));
        Xv = fl_alloc((size_t)(n > 0 ? n : 1) * (size_t)d * sizeof(float));
        if (!label || !Xv) st = fl_fail(ctx, FL_ENOMEM, "out of memory");
        for (int64_t i = 0; !st && i < n; i++) {
            int ok = 1;
            for (int32_t q = 0; q < d; q++) ok &= isfinite(X[i * d + q]) != 0;
            label[i] = ok ? 0 : -1;
            if (ok) memcpy(Xv + nv++ * d, X + i * d, (size_t)d * sizeof(float));
        }
        if (!st && nv == 0) st = fl_fail(ctx, FL_EINVAL, "the latent stack '%s' has no pixel with finite values", in);
    }
    if (!st) st = fl_gmm_fit(ctx, Xv, nv, d, &cfg, &g);
    for (int64_t i = 0, v = 0; !st && i < n; i++)
        if (label[i] == 0) label[i] = g.labels[v++];
    /* inverse views before anything is written: a bad --patch or --model writes nothing */
    if (!st && spath) st = nearest_patches(ctx, &lat, X, n, d, &g, &simg, P, N, &patches, &used);
    centroid_decoder dec = {0};
    float *decoded = NULL;
    if (!st && model) st = decode_centroids(ctx, model, &g, &dec, &decoded);
    /* latent_grid.tif: spec2im models */
    fl_image grid;
    fl_image_init(&grid);
    double v0[GRID_MAX], v1[GRID_MAX], glo[2], ghi[2], *hold = NULL;
    const int want_grid = model && grid_n > 0 && (dec.patch > 0 || cli_is_set(gmm_opts, "grid"));
    if (!st && want_grid && !dec.patch)
        st = fl_fail(ctx, FL_EINVAL, "the latent grid (--grid) needs a spec2im model; '%s' decodes to curves", model);
    if (!st && want_grid) {
        hold = fl_alloc((size_t)d * sizeof(double));
        st = hold ? latent_stats(ctx, in, Xv, nv, d, glo, ghi, hold) : fl_fail(ctx, FL_ENOMEM, "out of memory");
        if (!st) st = grid_montage(ctx, &dec, grid_n, glo, ghi, hold, &lat, &grid, v0, v1);
    }
    if (!st && cli_mkdirs(out)) st = fl_fail(ctx, FL_EIO, "cannot create the output directory '%s'", out);
    if (!st && model) st = write_decoded(ctx, out, &dec, decoded, g.k);
    if (!st && want_grid) st = cli_write_tiff(ctx, out, "latent_grid.tif", &grid);
    if (!st && spath) st = cli_write_tiff(ctx, out, "nearest_patches.tif", &patches);
    /* clusters.tif */
    const int32_t k = g.k;
    map = fl_alloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    count = fl_calloc((size_t)(k > 0 ? k : 1), sizeof(int64_t));
    if (!st && (!map || !count)) st = fl_fail(ctx, FL_ENOMEM, "out of memory");
    if (!st) {
        for (int64_t i = 0; i < n; i++) {
            map[i] = (float)(label[i] + 1);
            if (label[i] >= 0) count[label[i]]++;
        }
        const char *lab = "cluster (1..K)";
        st = fl_maps_to_image(ctx, map, lat.width, lat.height, 1, &lab, &lat, &im);
        if (!st) st = cli_write_tiff(ctx, out, "clusters.tif", &im);
        fl_image_free(&im);
    }
    /* centroids.csv */
    if (!st) {
        char path[CLI_PATH_MAX];
        FILE *f = open_out(ctx, out, "centroids.csv", path);
        if (!f) st = FL_EIO;
        else {
            fprintf(f, "cluster,weight,pixels");
            for (int32_t q = 0; q < d; q++) fprintf(f, ",dim %d", (int)q);
            fputc('\n', f);
            for (int32_t c = 0; c < k; c++) {
                fprintf(f, "%d,%.9g,%lld", (int)c + 1, g.weights[c], (long long)count[c]);
                for (int32_t q = 0; q < d; q++) fprintf(f, ",%.9g", g.means[(int64_t)c * d + q]);
                fputc('\n', f);
            }
            st = close_out(ctx, f, path);
        }
    }
    /* scatter.tif: dims 0 and 1 */
    double lo[2] = {INFINITY, INFINITY}, hi[2] = {-INFINITY, -INFINITY};
    if (!st) {
        for (int64_t i = 0; i < n; i++)
            for (int q = 0; q < 2 && label[i] >= 0; q++) {
                lo[q] = fmin(lo[q], X[i * d + q]);
                hi[q] = fmax(hi[q], X[i * d + q]);
            }
        st = fl_image_alloc(ctx, &im, SCATTER, SCATTER, 1, k, 1);
    }
    if (!st) {
        for (int64_t i = 0; i < n; i++) {
            if (label[i] < 0) continue;
            int b[2];
            for (int q = 0; q < 2; q++) {
                const double span = hi[q] - lo[q];
                b[q] = span > 0 ? (int)((X[i * d + q] - lo[q]) / span * SCATTER) : SCATTER / 2;
                if (b[q] >= SCATTER) b[q] = SCATTER - 1;
            }
            im.data[(int64_t)label[i] * SCATTER * SCATTER + (int64_t)(SCATTER - 1 - b[1]) * SCATTER + b[0]] += 1.f;
        }
        for (int32_t c = 0; c < k && !st; c++) {
            char lab[32];
            snprintf(lab, sizeof lab, "cluster %d", (int)c + 1);
            st = fl_image_set_label(ctx, &im, c, lab);
        }
        if (!st) st = cli_write_tiff(ctx, out, "scatter.tif", &im);
    }
    if (!st) {
        cli_json_int(&j, "components", k);
        cli_json_int(&j, "pixels", n);
        cli_json_int(&j, "dimensions", d);
        cli_json_num_array(&j, "weights", g.weights, k);
        fl_strbuf b;
        fl_strbuf_init(&b);
        fl_strbuf_append(&b, "[", 1);
        for (int32_t c = 0; c < k; c++) {
            fl_strbuf_append(&b, c ? ",[" : "[", c ? 2 : 1);
            for (int32_t q = 0; q < d; q++) fl_strbuf_printf_c(&b, q ? ",%.17g" : "%.17g", g.means[(int64_t)c * d + q]);
            fl_strbuf_append(&b, "]", 1);
        }
        fl_strbuf_append(&b, "]", 1);
        cli_json_raw(&j, "means", b.data);
        fl_strbuf_free(&b);
        double px[4096];
        for (int32_t c = 0; c < k && c < 4096; c++) px[c] = (double)count[c];
        cli_json_num_array(&j, "pixels_per_cluster", px, k < 4096 ? k : 4096);
        cli_json_num(&j, "log_likelihood", g.log_likelihood);
        cli_json_num(&j, "mean_log_likelihood", g.mean_log_likelihood);
        cli_json_num(&j, "lower_bound", g.lower_bound);
        cli_json_bool(&j, "converged", g.converged);
        cli_json_int(&j, "iterations", g.iterations);
        cli_json_int(&j, "seed", (int64_t)cfg.seed);
        cli_json_num_array(&j, "scatter_x_range", (double[]){lo[0], hi[0]}, 2);
        cli_json_num_array(&j, "scatter_y_range", (double[]){lo[1], hi[1]}, 2);
        if (spath) cli_json_int(&j, "nearest_used", used);
        if (want_grid) grid_json(&j, grid_n, v0, v1, hold, d, dec.patch);
        cli_json_int(&j, "threads", fl_ctx_threads(ctx));
    }
    rc = st ? cli_engine_error(ctx) : cli_summary_write(&j, gmm_opts, out);
    cli_json_free(&j);
    fl_gmm_result_free(&g);
    decoder_free(&dec);
    fl_free(decoded);
    fl_free(hold);
    fl_image_free(&grid);
    fl_free(label);
    fl_free(Xv);
    fl_free(X);
    fl_free(map);
    fl_free(count);
    fl_image_free(&lat);
    fl_image_free(&simg);
    fl_image_free(&patches);
    fl_image_free(&im);
    fl_ctx_free(ctx);
    return rc;
}

#define GRID_CMD "latent grid"

static const char grid_outputs[] =
    "Outputs in --out (written only when decoding succeeded):\n"
    "  latent_grid.tif  n*P x n*P pixels (P: the model's patch size), one plane: n x n tiles, each the patch the\n"
    "                   spec2im decoder makes of one latent vector. Tile column c (0 = left) decodes\n"
    "                   z0 = lo0 + (hi0 - lo0) c / (n - 1), tile row r counted from the BOTTOM decodes\n"
    "                   z1 = lo1 + (hi1 - lo1) r / (n - 1) (n = 1: the midpoints); latent dims >= 2 are held at\n"
    "                   their mean over --input (0 without it). Pixel size: that of --input (the patches are\n"
    "                   pixels of the field of view), uncalibrated without it. The slice label gives the ranges.\n"
    "  summary.json     what --json prints: grid_z0 and grid_z1 (the n values of each axis), grid_held, range\n"
    "'ferrolens latent gmm --model M' of a spec2im model writes the same montage (--grid, auto range).\n";

static cli_option grid_opts[] = {
    CLI_OPT_MODEL,
    CLI_OPT_OUT,
    {"input", CLI_STRING, "FILE", "latent stack (X x Y x d, e.g. the model's latent.tif): the ranges of dims 0 and 1 "
     "and the mean of the others", NULL, 0, 0, 0, 0, 0, NULL},
    {"n", CLI_INT, "N", "tiles per side", "8", 1, GRID_MAX, 0, 0, 0, NULL},
    {"range", CLI_STRING, "auto|a,b|a,b,c,d", "latent range: auto (min..max of dims 0 and 1 over --input), a..b for "
     "both dims, or a..b for dim 0 and c..d for dim 1", "auto", 0, 0, 0, 0, 0, NULL},
    CLI_OPT_THREADS,
    CLI_OPT_JSON,
    CLI_OPT_MEMORY,
    CLI_OPT_END};

/* "a,b" or "a,b,c,d" (finite, a < b, c < d) -> lo/hi; 0 on success. */
static int parse_range(const char *text, double lo[2], double hi[2])
{
    double v[4];
    int k = 0;
    const char *p = text;
    while (k < 4) {
        char *end;
        v[k] = strtod(p, &end);
        if (end == p || !isfinite(v[k])) return -1;
        k++;
        if (*end == '\0') break;
        if (*end != ',') return -1;
        p = end + 1;
    }
    if (k != 2 && k != 4) return -1;
    if (k == 2) v[2] = v[0], v[3] = v[1];
    if (!(v[0] < v[1]) || !(v[2] < v[3])) return -1;
    lo[0] = v[0], hi[0] = v[1], lo[1] = v[2], hi[1] = v[3];
    return 0;
}

static int latent_grid(int argc, char **argv)
{
    int rc = cli_parse(GRID_CMD, grid_opts, argc - 1, argv + 1);
    if (rc == CLI_HELP) {
        cli_print_help(stdout, GRID_CMD,
                       "Decode an n x n grid of latent vectors with a spec2im model into a montage of structure "
                       "patches: how the decoded structure changes across the latent space (latent dims 0 and 1; "
                       "the model needs at least 2).",
                       grid_opts, grid_outputs);
        return CLI_EXIT_OK;
    }
    if (rc) return rc;
    const char *model = cli_str(grid_opts, "model"), *out = cli_str(grid_opts, "out"), *in = cli_str(grid_opts, "input");
    const char *range = cli_str(grid_opts, "range");
    if (!model || !out) return cli_usage_error(GRID_CMD, "--model and --out are required");
    const int autorange = !strcmp(range, "auto");
    double lo[2] = {0, 0}, hi[2] = {0, 0};
    if (!autorange && parse_range(range, lo, hi))
        return cli_usage_error(GRID_CMD, "--range must be auto, a,b or a,b,c,d with finite a < b and c < d, not '%s'", range);
    if (autorange && !in)
        return cli_usage_error(GRID_CMD, "--range auto needs --input (the latent stack whose ranges the grid spans); or "
                                         "give --range a,b");
    const int32_t n = (int32_t)cli_int(grid_opts, "n");
    fl_ctx *ctx = cli_ctx_new(grid_opts);
    if (!ctx) return CLI_EXIT_FAIL;
    centroid_decoder dc;
    fl_image lat, grid;
    fl_image_init(&lat);
    fl_image_init(&grid);
    float *X = NULL;
    double *hold = NULL, v0[GRID_MAX], v1[GRID_MAX];
    int64_t np = 0;
    int32_t d = 0;
    fl_status st = decoder_load(ctx, model, 1, &dc);
    if (!st && dc.latent < 2)
        st = fl_fail(ctx, FL_EINVAL, "the model '%s' has 1 latent dimension; the latent grid varies dims 0 and 1 and "
                                     "needs a model with at least 2", model);
    if (!st && in) {
        st = latent_read(ctx, in, &lat, &X, &np, &d);
        if (!st && d != dc.latent)
            st = fl_fail(ctx, FL_EMISMATCH, "the model '%s' has %d latent channels but the latent stack has %d", model,
                         (int)dc.latent, (int)d);
    }
    if (!st) {
        hold = fl_calloc((size_t)dc.latent, sizeof(double));
        if (!hold) st = fl_fail(ctx, FL_ENOMEM, "out of memory");
    }
    if (!st && in) {
        double slo[2], shi[2];
        st = latent_stats(ctx, in, X, np, d, slo, shi, hold);
        if (!st && autorange) memcpy(lo, slo, sizeof lo), memcpy(hi, shi, sizeof hi);
    }
    if (!st) st = grid_montage(ctx, &dc, n, lo, hi, hold, in ? &lat : NULL, &grid, v0, v1);
    if (!st && cli_mkdirs(out)) st = fl_fail(ctx, FL_EIO, "cannot create the output directory '%s'", out);
    if (!st) st = cli_write_tiff(ctx, out, "latent_grid.tif", &grid);
    cli_json j;
    cli_json_begin(&j);
    if (!st) {
        cli_json_str(&j, "command", GRID_CMD);
        cli_json_str(&j, "model", model);
        cli_json_str(&j, "input", in);
        cli_json_int(&j, "latent", dc.latent);
        cli_json_str(&j, "range", autorange ? "auto" : "given");
        cli_json_num_array(&j, "range_z0", (double[]){lo[0], hi[0]}, 2);
        cli_json_num_array(&j, "range_z1", (double[]){lo[1], hi[1]}, 2);
        grid_json(&j, n, v0, v1, hold, dc.latent, dc.patch);
        cli_json_int(&j, "width", grid.width);
        cli_json_int(&j, "height", grid.height);
        cli_json_int(&j, "threads", fl_ctx_threads(ctx));
    }
    rc = st ? cli_engine_error(ctx) : cli_summary_write(&j, grid_opts, out);
    cli_json_free(&j);
    decoder_free(&dc);
    fl_free(hold);
    fl_free(X);
    fl_image_free(&lat);
    fl_image_free(&grid);
    fl_ctx_free(ctx);
    return rc;
}

int cmd_latent(int argc, char **argv)
{
    const char *action = argc > 0 ? argv[0] : "--help";
    if (!strcmp(action, "gmm")) return latent_gmm(argc, argv);
    if (!strcmp(action, "grid")) return latent_grid(argc, argv);
    if (!strcmp(action, "--help") || !strcmp(action, "-h")) {
        printf("Usage: ferrolens latent gmm|grid [options]\n"
               "  gmm   Gaussian-mixture clustering of a latent/embedding stack, with cluster map, scatter,\n"
               "        structure patches (--structure) and decoded centroids (--model)\n"
               "  grid  montage of the structure patches a spec2im model decodes from an n x n latent grid\n"
               "Each action has --help.\n");
        return argc > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    }
    static const char *const actions[] = {"gmm", "grid", NULL};
    const char *near = cli_best_match(action, actions);
    return cli_usage_error("latent", "unknown action '%s'%s%s%s", action, near ? " (did you mean '" : "",
                           near ? near : "", near ? "'?)" : "");
}
