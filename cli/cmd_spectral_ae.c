/* ferrolens spectral-ae train|apply|traverse: family 1 on a grid of curves (TIFF hyperstack). */
#include "cli.h"
#include "fl_internal.h"
#include "analysis/curve_filters.h"
#include "io/spectral_grid.h"
#include "io/tiff.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SAE_OUTPUTS                                                                                          \
    "Outputs in --out:\n"                                                                                    \
    "  model.safetensors     the trained model (train only)\n"                                              \
    "  embedding.tif         one slice per latent channel ('latent k', '(inactive)' when all zero)\n"      \
    "  reconstruction.tif    the decoded curves, same dimensions and axis labels as the input\n"           \
    "  error.tif             per-pixel mean squared reconstruction error (input units)\n"                  \
    "  decoded_curves.csv    axis value, then one column per active channel and level (latent traversal)\n" \
    "  summary.json          what --json prints\n"

/* Options shared by train and apply. */
#define SAE_OPT_AXIS {"axis", CLI_STRING, "auto|z|t", "spectral axis of the hyperstack", "auto", 0, 0, 0, 0, 0, NULL}
#define SAE_OPT_RESAMPLE \
    {"resample", CLI_INT, "N", "resample every curve linearly to N points (0: keep)", "0", 0, 100000, 0, 0, 0, NULL}
#define SAE_OPT_LEVELS {"levels", CLI_INT, "N", "levels of the latent traversal", "10", 1, 10000, 0, 0, 0, NULL}
#define SAE_OPT_OTHERS \
    {"others", CLI_STRING, "zero|mean", "other channels during the traversal", "zero", 0, 0, 0, 0, 0, NULL}

static cli_option train_opts[] = {
    CLI_OPT_INPUT,
    CLI_OPT_OUT,
    {"layers", CLI_INT, "N", "encoder (Bi)LSTM layers", NULL, 1, 16, 0, 0, 0, NULL},
    {"decoder-layers", CLI_INT, "N", "decoder (Bi)LSTM layers (default: as --layers)", NULL, 1, 16, 0, 0, 0, NULL},
    {"hidden", CLI_INT, "N", "LSTM units per direction", NULL, 1, 2048, 0, 0, 0, NULL},
    {"bidirectional", CLI_INT, "0|1", "bidirectional LSTMs", NULL, 0, 1, 0, 0, 0, NULL},
    {"latent", CLI_INT, "N", "embedding channels", NULL, 1, 4096, 0, 0, 0, NULL},
    {"l1", CLI_FLOAT, "X", "L1 activity weight, summed over the mini-batch (Keras 2.1)", NULL, 0, 10, 0, 0, 0, NULL},
    {"dropout", CLI_FLOAT, "P", "dropout after every recurrent layer", NULL, 0, 0.99, 0, 0, 0, NULL},
    {"batch-norm", CLI_INT, "0|1", "batch norm after the encoder and after the embedding", NULL, 0, 1, 0, 0, 0, NULL},
    {"recurrent", CLI_STRING, "hard-sigmoid|logistic", "recurrent activation", "hard-sigmoid", 0, 0, 0, 0, 0, NULL},
    {"batch", CLI_INT, "N", "mini-batch size", NULL, 1, 1e6, 0, 0, 0, NULL},
    {"lr", CLI_FLOAT, "X", "Adam learning rate", NULL, 1e-9, 1, 0, 0, 0, NULL},
    {"epochs", CLI_INT, "N", "maximum epochs", NULL, 1, 1e7, 0, 0, 0, NULL},
    {"val-split", CLI_FLOAT, "F", "fraction of pixels held out for validation / early stopping", NULL, 0, 0.9, 0, 0, 0, NULL},
    {"patience", CLI_INT, "N", "stop after N epochs without validation improvement (0: never)", NULL, 0, 1e9, 0, 0, 0, NULL},
    {"norm", CLI_STRING, "global|per-curve|none", "normalisation of the curves", "global", 0, 0, 0, 0, 0, NULL},
    {"outlier-repair", CLI_FLAG, NULL, "Savitzky-Golay outlier repair (window 7, order 3, 3 points), NaN interpolation", NULL, 0, 0, 0, 0, 0, NULL},
    SAE_OPT_AXIS,
    SAE_OPT_RESAMPLE,
    SAE_OPT_LEVELS,
    SAE_OPT_OTHERS,
    {"seed", CLI_INT, "N", "random seed (same seed: bit-identical model)", NULL, 0, 9.2e18, 0, 0, 0, NULL},
    CLI_OPT_THREADS,
    CLI_OPT_JSON,
    CLI_OPT_MEMORY,
    CLI_OPT_END};

static cli_option apply_opts[] = {
    CLI_OPT_INPUT,
    CLI_OPT_MODEL,
    CLI_OPT_OUT,
    SAE_OPT_AXIS,
    SAE_OPT_RESAMPLE,
    SAE_OPT_LEVELS,
    SAE_OPT_OTHERS,
    CLI_OPT_THREADS,
    CLI_OPT_JSON,
    CLI_OPT_MEMORY,
    CLI_OPT_END};

/* --others: the other channels during the traversal (index = fl_sae_traverse's others_at_mean) */
static int parse_others(const char *cmd, const cli_option *opts)
{
    static const char *const names[] = {"zero", "mean", NULL};
    return cli_choice(cmd, "others", cli_str(opts, "others"), names);
}

static int parse_axis(const char *cmd, const cli_option *opts)
{
    static const char *const names[] = {"auto", "z", "t", NULL};
    int a = cli_choice(cmd, "axis", cli_str(opts, "axis"), names);
    return a < 0 ? -1 : a == 0 ? 0 : a == 1 ? 'z' : 't';
}

/* A grid read from a TIFF file, as curves. */
typedef struct grid {
    fl_image img;
    float *curves;
    int64_t n;
    int32_t T;
    double *axis;
    char unit[32], label[64];
} grid;

static void grid_free(grid *g)
{
    fl_image_free(&g->img);
    fl_free(g->curves);
    fl_free(g->axis);
}

/* Reads the grid; resample > 0 resamples every curve to that many points. */
static fl_status grid_read(fl_ctx *ctx, const char *path, int axis, int32_t resample, grid *g)
{
    memset(g, 0, sizeof *g);
    fl_image_init(&g->img);
    fl_status st = fl_tiff_read(ctx, path, &g->img);
    if (!st) st = fl_grid_to_curves(ctx, &g->img, axis, &g->curves, &g->n, &g->T, &g->axis, g->unit, g->label);
    if (st || resample <= 0 || resample == g->T) return st;
    if (resample < 8) return fl_fail(ctx, FL_EINVAL, "--resample needs at least 8 points");
    float *c = fl_alloc((size_t)g->n * resample * sizeof(float));
    double *a = fl_alloc((size_t)resample * sizeof(double));
    if (!c || !a) {
        fl_free(c);
        fl_free(a);
        return fl_fail(ctx, FL_ENOMEM, "out of memory for the resampled curves");
    }
    fl_curves_resample(g->curves, g->n, g->T, g->axis, resample, c, a);
    fl_free(g->curves);
    fl_free(g->axis);
    g->curves = c;
    g->axis = a;
    g->T = resample;
    return FL_OK;
}

/* Everything written after a model exists: embedding, reconstruction, error map, traversal. */
static fl_status write_results(fl_ctx *ctx, const fl_sae *m, const grid *g, const char *out, int levels, int others,
                               cli_json *j)
{
    const fl_sae_config *c = fl_sae_get_config(m);
    const int64_t n = g->n, L = c->latent, W = g->img.width, H = g->img.height;
    const int32_t T = g->T;
    float *emb = fl_alloc((size_t)n * L * sizeof(float)), *rec = fl_alloc((size_t)n * T * sizeof(float));
    float *err = fl_alloc((size_t)n * sizeof(float));
    char **labels = calloc((size_t)L, sizeof(char *));
    int *active = calloc((size_t)L, sizeof(int));
    fl_status st = (!emb || !rec || !err || !labels || !active) ? fl_fail(ctx, FL_ENOMEM, "out of memory") : FL_OK;
    if (!st) st = fl_sae_apply(ctx, m, g->curves, n, T, emb, rec);
    double sse = 0, mean = 0, var = 0;
    int nactive = 0;
    fl_image im;
    fl_image_init(&im);
    if (!st) {
        for (int64_t i = 0; i < n * T; i++) mean += g->curves[i];
        mean /= (double)(n * T);
        for (int64_t i = 0; i < n; i++) {
            double e = 0;
            for (int32_t t = 0; t < T; t++) {
                double d = (double)rec[i * T + t] - g->curves[i * T + t];
                e += d * d;
                var += ((double)g->curves[i * T + t] - mean) * ((double)g->curves[i * T + t] - mean);
            }
            sse += e;
            err[i] = (float)(e / T);
        }
        for (int64_t k = 0; k < L; k++) {
            for (int64_t i = 0; i < n && !active[k]; i++) active[k] = emb[i * L + k] > 0.f;
            nactive += active[k];
            labels[k] = malloc(48);
            if (labels[k]) snprintf(labels[k], 48, "latent %lld%s", (long long)k, active[k] ? "" : " (inactive)");
        }
        st = fl_maps_to_image(ctx, emb, W, H, (int32_t)L, (const char *const *)labels, &g->img, &im);
    }
    if (!st) st = cli_write_tiff(ctx, out, "embedding.tif", &im);
    fl_image_free(&im);
    if (!st) st = fl_curves_to_grid(ctx, rec, W, H, T, g->axis, g->unit, &g->img, &im);
    if (!st) st = cli_write_tiff(ctx, out, "reconstruction.tif", &im);
    fl_image_free(&im);
    const char *errlabel = "reconstruction MSE";
    if (!st) st = fl_maps_to_image(ctx, err, W, H, 1, &errlabel, &g->img, &im);
    if (!st) st = cli_write_tiff(ctx, out, "error.tif", &im);
    fl_image_free(&im);
    /* latent traversal of every active channel */
    float *vals = NULL, *curves = NULL;
    if (!st && nactive) {
        vals = fl_alloc((size_t)nactive * levels * sizeof(float));
        curves = fl_alloc((size_t)nactive * levels * T * sizeof(float));
        if (!vals || !curves) st = fl_fail(ctx, FL_ENOMEM, "out of memory");
        for (int64_t k = 0, a = 0; k < L && !st; k++)
            if (active[k]) {
                st = fl_sae_traverse(ctx, m, emb, n, (int32_t)k, levels, others, vals + a * levels,
                                     curves + a * levels * T);
                a++;
            }
    }
    if (!st) {
        char path[CLI_PATH_MAX];
        FILE *f = cli_path_join(path, sizeof path, out, "decoded_curves.csv") ? NULL : fopen(path, "w");
        if (!f) st = fl_fail(ctx, FL_EIO, "cannot write '%s'", path);
        if (f) {
            fprintf(f, "%s%s%s%s", g->label[0] ? g->label : "axis", g->unit[0] ? " (" : "", g->unit, g->unit[0] ? ")" : "");
            for (int64_t k = 0, a = 0; k < L; k++)
                if (active[k]) {
                    for (int lv = 0; lv < levels; lv++)
                        fprintf(f, ",latent %lld = %.6g", (long long)k, vals[a * levels + lv]);
                    a++;
                }
            fputc('\n', f);
            for (int32_t t = 0; t < T; t++) {
                fprintf(f, "%.9g", g->axis ? g->axis[t] : (double)t);
                for (int64_t a = 0; a < nactive; a++)
                    for (int lv = 0; lv < levels; lv++) fprintf(f, ",%.7g", curves[(a * levels + lv) * T + t]);
                fputc('\n', f);
            }
            if (fclose(f) != 0) st = fl_fail(ctx, FL_EIO, "cannot write '%s'", path);
        }
    }
    if (!st) {
        double act[4096];
        int na = 0;
        for (int64_t k = 0; k < L && na < 4096; k++)
            if (active[k]) act[na++] = (double)k;
        cli_json_int(j, "curves", n);
        cli_json_int(j, "points", T);
        cli_json_num(j, "reconstruction_r2", var > 0 ? 1.0 - sse / var : NAN);
        cli_json_num(j, "reconstruction_mse", sse / (double)(n * T));
        cli_json_num_array(j, "active_channels", act, na);
    }
    fl_free(vals);
    fl_free(curves);
    for (int64_t k = 0; labels && k < L; k++) free(labels[k]);
    free(labels);
    free(active);
    fl_free(emb);
    fl_free(rec);
    fl_free(err);
    return st;
}



/* The defaults shown and used are the engine's (fl_sae_config_default), so the CLI, Fiji and the
 * library never disagree. */
static void set_engine_defaults(cli_option *opts)
{
    static char buf[16][32];
    fl_sae_config c;
    fl_sae_config_default(&c);
    const cli_default d[] = {{"layers", c.enc_layers, 1},     {"hidden", c.hidden, 1},       {"bidirectional", c.bidirectional, 1},
                             {"latent", c.latent, 1},         {"l1", c.l1, 0},               {"dropout", c.dropout, 0},
                             {"batch-norm", c.batch_norm, 1}, {"batch", c.batch, 1},         {"lr", c.lr, 0},
                             {"epochs", c.epochs, 1},         {"val-split", c.val_split, 0}, {"patience", c.patience, 1},
                             {"seed", (double)c.seed, 1}};
    cli_set_defaults(opts, d, sizeof d / sizeof d[0], buf);
}

static int sae_train(int argc, char **argv)
{
    const char *cmd = "spectral-ae train";
    set_engine_defaults(train_opts);
    int rc = cli_parse(cmd, train_opts, argc - 1, argv + 1);
    if (rc == CLI_HELP) {
        cli_print_help(stdout, cmd,
                       "Train the sparse (Bi)LSTM autoencoder (Agar 2019 / Holstad 2020) on a grid of curves and write "
                       "embedding maps, reconstruction, error map, decoded curves and the model.",
                       train_opts, SAE_OUTPUTS);
        return 0;
    }
    if (rc) return rc;
    const char *in = cli_str(train_opts, "input"), *out = cli_str(train_opts, "out");
    if (!in || !out) return cli_usage_error(cmd, "--input and --out are required");
    static const char *const rec_names[] = {"hard-sigmoid", "logistic", NULL};
    static const char *const norm_names[] = {"global", "per-curve", "none", NULL};
    int recurrent = cli_choice(cmd, "recurrent", cli_str(train_opts, "recurrent"), rec_names);
    int norm = cli_choice(cmd, "norm", cli_str(train_opts, "norm"), norm_names);
    int others = parse_others(cmd, train_opts);
    int axis = parse_axis(cmd, train_opts);
    if (recurrent < 0 || norm < 0 || others < 0 || axis < 0) return CLI_EXIT_USAGE;
    fl_sae_config c;
    fl_sae_config_default(&c);
    c.enc_layers = (int32_t)cli_int(train_opts, "layers");
    c.dec_layers = cli_is_set(train_opts, "decoder-layers") ? (int32_t)cli_int(train_opts, "decoder-layers") : c.enc_layers;
    c.hidden = (int32_t)cli_int(train_opts, "hidden");
    c.bidirectional = (int32_t)cli_int(train_opts, "bidirectional");
    c.latent = (int32_t)cli_int(train_opts, "latent");
    c.l1 = (float)cli_float(train_opts, "l1");
    c.dropout = (float)cli_float(train_opts, "dropout");
    c.batch_norm = (int32_t)cli_int(train_opts, "batch-norm");
    c.hard_sigmoid = recurrent == 0;
    c.batch = (int32_t)cli_int(train_opts, "batch");
    c.lr = (float)cli_float(train_opts, "lr");
    c.epochs = (int32_t)cli_int(train_opts, "epochs");
    c.val_split = (float)cli_float(train_opts, "val-split");
    c.patience = (int32_t)cli_int(train_opts, "patience");
    c.norm_mode = norm;
    c.outlier_repair = cli_flag(train_opts, "outlier-repair");
    c.seed = (uint64_t)cli_int(train_opts, "seed");
    cli_json j;
    fl_ctx *ctx = cli_command_start(cmd, train_opts, out, &j);
    if (!ctx) return CLI_EXIT_FAIL;
    grid g;
    fl_sae *m = NULL;
    fl_sae_report rep = {0};
    fl_status st = grid_read(ctx, in, axis, (int32_t)cli_int(train_opts, "resample"), &g);
    if (!st) st = fl_sae_create(ctx, &c, &m);
    if (!st) st = fl_sae_set_axis(ctx, m, g.axis, g.T, g.label, g.unit);
    if (!st) st = fl_sae_train(ctx, m, g.curves, g.n, g.T, &rep);
    char path[CLI_PATH_MAX];
    if (!st && cli_path_join(path, sizeof path, out, "model.safetensors")) st = fl_fail(ctx, FL_EINVAL, "path too long");
    if (!st) st = fl_sae_save(ctx, m, path);
    if (!st) {
        cli_json_str(&j, "model", path);
        cli_json_int(&j, "parameters", fl_sae_param_count(m));
        cli_json_int(&j, "epochs_run", rep.epochs_run);
        cli_json_int(&j, "best_epoch", rep.best_epoch);
        cli_json_num(&j, "best_val_loss", rep.best_val_loss);
        cli_json_num(&j, "final_train_loss", rep.final_train_loss);
        cli_json_num(&j, "seconds_per_epoch", rep.seconds_per_epoch);
        cli_json_bool(&j, "cancelled", rep.cancelled);
        cli_json_int(&j, "threads", fl_ctx_threads(ctx));
        st = write_results(ctx, m, &g, out, (int)cli_int(train_opts, "levels"), others, &j);
    }
    fl_sae_free(m);
    grid_free(&g);
    return cli_command_finish(ctx, st, &j, train_opts, out);
}

static int sae_apply(int argc, char **argv)
{
    /* traverse runs as apply, but messages name the action the user typed */
    const char *cmd = argc > 0 && !strcmp(argv[0], "traverse") ? "spectral-ae traverse" : "spectral-ae apply";
    int rc = cli_parse(cmd, apply_opts, argc - 1, argv + 1);
    if (rc == CLI_HELP) {
        cli_print_help(stdout, cmd,
                       "Apply a trained spectral autoencoder to a grid of curves of the same length.", apply_opts,
                       SAE_OUTPUTS);
        return 0;
    }
    if (rc) return rc;
    const char *in = cli_str(apply_opts, "input"), *out = cli_str(apply_opts, "out"), *model = cli_str(apply_opts, "model");
    if (!in || !out || !model) return cli_usage_error(cmd, "--input, --model and --out are required");
    int others = parse_others(cmd, apply_opts);
    int axis = parse_axis(cmd, apply_opts);
    if (others < 0 || axis < 0) return CLI_EXIT_USAGE;
    cli_json j;
    fl_ctx *ctx = cli_command_start(cmd, apply_opts, out, &j);
    if (!ctx) return CLI_EXIT_FAIL;
    cli_json_str(&j, "model", model);
    grid g;
    memset(&g, 0, sizeof g);
    fl_sae *m = NULL;
    fl_status st = fl_sae_load(ctx, model, &m);
    if (!st) st = grid_read(ctx, in, axis, (int32_t)cli_int(apply_opts, "resample"), &g);
    if (!st) {
        double t0 = fl_now_seconds();
        st = write_results(ctx, m, &g, out, (int)cli_int(apply_opts, "levels"), others, &j);
        cli_json_num(&j, "seconds", fl_now_seconds() - t0);
    }
    fl_sae_free(m);
    grid_free(&g);
    return cli_command_finish(ctx, st, &j, apply_opts, out);
}

int cmd_spectral_ae(int argc, char **argv)
{
    const char *action = argc > 0 ? argv[0] : "--help";
    if (!strcmp(action, "train")) return sae_train(argc, argv);
    /* traverse = apply: the decoded curves need the embedding statistics of a grid */
    if (!strcmp(action, "apply") || !strcmp(action, "traverse")) return sae_apply(argc, argv);
    if (!strcmp(action, "--help") || !strcmp(action, "-h")) {
        printf("Usage: ferrolens spectral-ae train|apply|traverse [options]\n"
               "  train     train the sparse LSTM autoencoder on a curve grid (--input, --out)\n"
               "  apply     embed and reconstruct a grid with a trained model (--input, --model, --out)\n"
               "  traverse  the same outputs as apply, for the decoded curves (latent traversal)\n"
               "Each action has --help.\n");
        return 0;
    }
    static const char *const actions[] = {"train", "apply", "traverse", NULL};
    const char *near = cli_best_match(action, actions);
    return cli_usage_error("spectral-ae", "unknown action '%s'%s%s%s", action, near ? " (did you mean '" : "",
                           near ? near : "", near ? "'?)" : "");
}
