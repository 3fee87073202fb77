/* ferrolens decompose pca|nmf: linear decompositions of a grid of curves (TIFF hyperstack). */
#include "cli.h"
#include "fl_internal.h"
#include "ferrolens/analysis.h"
#include "io/spectral_grid.h"
#include "io/tiff.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DEC_OUTPUTS                                                                                               \
    "Outputs in --out (written only when the decomposition succeeded):\n"                                        \
    "  components.csv   first column the spectral-axis value (slice labels or calibration), then one column\n"   \
    "                   per component (PCA: unit eigenvectors, sign: largest |value| positive; NMF: rows of H)\n" \
    "  loadings.tif     X x Y x K stack: per-pixel scores (PCA, slices 'PC1 (43.1 %)') or NMF weights W\n"       \
    "                   (slices 'NMF 1', ...)\n"                                                              \
    "  summary.json     what --json prints: explained variance and ratios (PCA), reconstruction error,\n"       \
    "                   iterations, convergence and shift (NMF)\n"

#define DEC_COMMON_OPTS                                                                                               \
    CLI_OPT_INPUT, CLI_OPT_OUT,                                                                                       \
        {"components", CLI_INT, "K", "number of components", "3", 1, 4096, 0, 0, 0, NULL},                           \
        {"axis", CLI_STRING, "auto|z|t", "spectral axis of the hyperstack", "auto", 0, 0, 0, 0, 0, NULL}

static cli_option pca_opts[] = {DEC_COMMON_OPTS, CLI_OPT_THREADS, CLI_OPT_JSON, CLI_OPT_MEMORY, CLI_OPT_END};

static cli_option nmf_opts[] = {
    DEC_COMMON_OPTS,
    {"max-iter", CLI_INT, "N", "maximum multiplicative-update iterations", "200", 1, 1e9, 0, 0, 0, NULL},
    {"tol", CLI_FLOAT, "X", "stop when the error improves by less than X (relative to the initial error) in 10 "
                            "iterations; 0: run --max-iter iterations",
     "1e-4", 0, 1, 0, 0, 0, NULL},
    {"init", CLI_STRING, "nndsvda|random", "initialisation (nndsvda needs K <= points per curve)", "nndsvda", 0, 0, 0,
     0, 0, NULL},
    {"shift", CLI_FLAG, NULL,
     "NMF needs non-negative data: subtract the global minimum first when it is negative (signed curves such as "
     "hysteresis loops); the components then describe data - minimum (the shift is in summary.json)",
     NULL, 0, 0, 0, 0, 0, NULL},
    CLI_OPT_SEED,
    CLI_OPT_THREADS,
    CLI_OPT_JSON,
    CLI_OPT_MEMORY,
    CLI_OPT_END};

/* components (k x T, doubles or floats through get) -> CSV with the axis in the first column */
static fl_status write_components(fl_ctx *ctx, const char *out, const double *axis, const char *label, const char *unit,
                                  int32_t T, int32_t k, const double *cd, const float *cf, const char *prefix)
{
    char path[CLI_PATH_MAX];
    if (cli_path_join(path, sizeof path, out, "components.csv")) return fl_fail(ctx, FL_EINVAL, "output path too long");
    FILE *f = fopen(path, "w");
    if (!f) return fl_fail(ctx, FL_EIO, "cannot write '%s'", path);
    fprintf(f, "%s%s%s%s", label[0] ? label : "axis", unit[0] ? " (" : "", unit, unit[0] ? ")" : "");
    for (int32_t c = 0; c < k; c++) fprintf(f, ",%s%d", prefix, (int)c + 1);
    fputc('\n', f);
    for (int32_t t = 0; t < T; t++) {
        fprintf(f, "%.9g", axis ? axis[t] : (double)t);
        for (int32_t c = 0; c < k; c++)
            fprintf(f, ",%.9g", cd ? cd[(int64_t)c * T + t] : (double)cf[(int64_t)c * T + t]);
        fputc('\n', f);
    }
    if (fclose(f) != 0) return fl_fail(ctx, FL_EIO, "cannot write '%s'", path);
    return FL_OK;
}

static fl_status write_loadings(fl_ctx *ctx, const char *out, const float *maps, const fl_image *like, int32_t k,
                                char labels[][48])
{
    const char *lab[k];
    for (int32_t c = 0; c < k; c++) lab[c] = labels[c];
    fl_image im;
    fl_status st = fl_maps_to_image(ctx, maps, like->width, like->height, k, lab, like, &im);
    if (!st) st = cli_write_tiff(ctx, out, "loadings.tif", &im);
    fl_image_free(&im);
    return st;
}

static int decompose(int argc, char **argv, int is_nmf)
{
    const char *cmd = is_nmf ? "decompose nmf" : "decompose pca";
    cli_option *opts = is_nmf ? nmf_opts : pca_opts;
    int rc = cli_parse(cmd, opts, argc - 1, argv + 1);
    if (rc == CLI_HELP) {
        cli_print_help(stdout, cmd,
                       is_nmf ? "Non-negative matrix factorisation of a grid of curves: curves ~ W H with K "
                                "non-negative spectral components (rows of H) and per-pixel weights W (Lee & Seung "
                                "multiplicative updates, Frobenius loss, as scikit-learn's NMF solver 'mu')."
                              : "Principal component analysis of a grid of curves (mean-centred, unscaled): the K "
                                "leading spectral components, their explained variance and per-pixel scores.",
                       opts, DEC_OUTPUTS);
        return CLI_EXIT_OK;
    }
    if (rc) return rc;
    const char *in = cli_str(opts, "input"), *out = cli_str(opts, "out");
    if (!in || !out) return cli_usage_error(cmd, "--input and --out are required");
    static const char *const axis_names[] = {"auto", "z", "t", NULL};
    static const char *const init_names[] = {"nndsvda", "random", NULL};
    int a = cli_choice(cmd, "axis", cli_str(opts, "axis"), axis_names);
    if (a < 0) return CLI_EXIT_USAGE;
    const int axis = a == 0 ? 0 : a == 1 ? 'z' : 't';
    int init = 0;
    if (is_nmf && (init = cli_choice(cmd, "init", cli_str(opts, "init"), init_names)) < 0) return CLI_EXIT_USAGE;
    const int32_t k = (int32_t)cli_int(opts, "components");

    fl_ctx *ctx = cli_ctx_new(opts);
    if (!ctx) return CLI_EXIT_FAIL;
    fl_image img;
    fl_image_init(&img);
    float *curves = NULL;
    double *axv = NULL;
    int64_t n = 0;
    int32_t T = 0;
    char unit[32] = "", label[64] = "";
    fl_pca_result pr;
    fl_nmf_result nr;
    memset(&pr, 0, sizeof pr);
    memset(&nr, 0, sizeof nr);
    char (*labels)[48] = calloc((size_t)k, 48);
    cli_json j;
    cli_json_begin(&j);
    cli_json_str(&j, "command", cmd);
    cli_json_str(&j, "input", in);
    fl_status st = labels ? FL_OK : fl_fail(ctx, FL_ENOMEM, "out of memory");
    if (!st) st = fl_tiff_read(ctx, in, &img);
    if (!st) st = fl_grid_to_curves(ctx, &img, axis, &curves, &n, &T, &axv, unit, label);
    /* everything is computed before the output directory is created: bad input writes nothing */
    if (!st && !is_nmf) st = fl_pca(ctx, curves, n, T, k, &pr);
    if (!st && is_nmf) {
        fl_nmf_config c;
        fl_nmf_config_default(&c);
        c.k = k;
        c.init = init;
        c.max_iter = (int32_t)cli_int(opts, "max-iter");
        c.tol = cli_float(opts, "tol");
        c.seed = (uint64_t)cli_int(opts, "seed");
        c.shift = cli_flag(opts, "shift");
        st = fl_nmf(ctx, curves, n, T, &c, &nr);
    }
    if (!st && cli_mkdirs(out)) st = fl_fail(ctx, FL_EIO, "cannot create the output directory '%s'", out);
    if (!st && !is_nmf) {
        for (int32_t c = 0; c < k; c++)
            snprintf(labels[c], 48, "PC%d (%.1f %%)", (int)c + 1, 100.0 * pr.explained_variance_ratio[c]);
        st = write_components(ctx, out, axv, label, unit, T, k, pr.components, NULL, "PC");
        if (!st) st = write_loadings(ctx, out, pr.scores, &img, k, labels);
        if (!st) {
            double cum[k];
            for (int32_t c = 0; c < k; c++) cum[c] = pr.explained_variance_ratio[c] + (c ? cum[c - 1] : 0.0);
            cli_json_num_array(&j, "explained_variance", pr.explained_variance, k);
            cli_json_num_array(&j, "explained_variance_ratio", pr.explained_variance_ratio, k);
            cli_json_num_array(&j, "cumulative_ratio", cum, k);
            cli_json_num(&j, "total_variance", pr.total_variance);
        }
    }
    if (!st && is_nmf) {
        for (int32_t c = 0; c < k; c++) snprintf(labels[c], 48, "NMF %d", (int)c + 1);
        st = write_components(ctx, out, axv, label, unit, T, k, NULL, nr.H, "NMF ");
        if (!st) st = write_loadings(ctx, out, nr.W, &img, k, labels);
        if (!st) {
            cli_json_str(&j, "init", init_names[init]);
            cli_json_num(&j, "shift", nr.shift);
            cli_json_num(&j, "reconstruction_err", nr.reconstruction_err);
            cli_json_num(&j, "relative_err", nr.relative_err);
            cli_json_int(&j, "iterations", nr.iterations);
            cli_json_bool(&j, "converged", nr.converged);
        }
    }
    if (!st) {
        cli_json_int(&j, "components", k);
        cli_json_int(&j, "curves", n);
        cli_json_int(&j, "points", T);
        cli_json_str(&j, "axis_label", label);
        cli_json_str(&j, "axis_unit", unit);
        cli_json_raw(&j, "files",
                     "{\"components\":\"components.csv\",\"loadings\":\"loadings.tif\",\"summary\":\"summary.json\"}");
        cli_json_int(&j, "threads", fl_ctx_threads(ctx));
    }
    rc = st ? cli_engine_error(ctx) : cli_summary_write(&j, opts, out);
    cli_json_free(&j);
    free(labels);
    fl_pca_result_free(&pr);
    fl_nmf_result_free(&nr);
    fl_free(curves);
    fl_free(axv);
    fl_image_free(&img);
    fl_ctx_free(ctx);
    return rc;
}

int cmd_decompose(int argc, char **argv)
{
    const char *action = argc > 0 ? argv[0] : "--help";
    if (!strcmp(action, "pca")) return decompose(argc, argv, 0);
    if (!strcmp(action, "nmf")) return decompose(argc, argv, 1);
    if (!strcmp(action, "--help") || !strcmp(action, "-h")) {
        printf("Usage: ferrolens decompose pca|nmf [options]\n"
               "  pca  principal components of a grid of curves (--input, --components, --out)\n"
               "  nmf  non-negative matrix factorisation of a grid of curves (--shift for signed data)\n"
               "Each action has --help.\n");
        return argc > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    }
    static const char *const actions[] = {"pca", "nmf", NULL};
    const char *near = cli_best_match(action, actions);
    return cli_usage_error("decompose", "unknown action '%s'%s%s%s", action, near ? " (did you mean '" : "",
                           near ? near : "", near ? "'?)" : "");
}
