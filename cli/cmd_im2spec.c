/* ferrolens im2spec|spec2im train|apply: family 2 on a structure image + a grid of spectra. */
#include "cli.h"
#include "fl_internal.h"
#include "ferrolens/im2spec.h"
#include "io/spectral_grid.h"
#include "io/tiff.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define I2S_OUTPUTS                                                                                           \
    "Outputs in --out:\n"                                                                                     \
    "  model.safetensors  the trained model (train only; PyTorch state_dict names of ziatdinovmax/im2spec)\n"  \
    "  predicted.tif      im2spec: W x H x P grid of predicted spectra with the input's axis labels;\n"        \
    "                     spec2im: montage of the predicted p x p patches, tile (x, y) = pixel (x, y)\n"       \
    "  latent.tif         W x H x z latent vectors, slices 'z1'..'zN'\n"                                       \
    "  errors.tif         'MSE', 'normalised RMS', 'loop area error' (im2spec) or '1-SSIM' (spec2im), when\n"  \
    "                     the truth is given\n"                                                                \
    "  train_region.tif   0 = skipped edge pixel (patch leaves the frame), 1 = train, 2 = test\n"              \
    "  loss.csv           epoch, train MSE, test MSE\n"                                                        \
    "  summary.json       test-region mean errors, the mean-loop / mean-patch baseline and their ratio\n"      \
    "Pixels whose patch leaves the frame are NaN in every map.\n"

#define OPT_STRUCTURE {"structure", CLI_STRING, "FILE", "structure image (TIFF, one plane or see --structure-slice)", NULL, 0, 0, 0, 0, 0, NULL}
#define OPT_SSLICE {"structure-slice", CLI_INT, "N", "plane (1-based) of a multi-plane structure file", "0", 0, 1e9, 0, 0, 0, NULL}
#define OPT_GRID {"input", CLI_STRING, "FILE", "grid of spectra (TIFF hyperstack, spectral axis Z or T)", NULL, 0, 0, 0, 0, 0, NULL}

static cli_option train_opts[] = {
    OPT_STRUCTURE,
    OPT_SSLICE,
    OPT_GRID,
    CLI_OPT_OUT,
    {"roi", CLI_STRING, "x,y,w,h", "training rectangle in pixels (patch centres); the rest is the test region", NULL, 0, 0, 0, 0, 0, NULL},
    {"train-fraction", CLI_FLOAT, "F", "without --roi: train on the usable columns left of this fraction", NULL, 0.001, 0.999, 0, 0, 0, NULL},
    {"patch", CLI_INT, "8|16", "patch size in pixels", NULL, 8, 16, 0, 0, 0, NULL},
    {"latent", CLI_INT, "N", "latent size", NULL, 1, 4096, 0, 0, 0, NULL},
    {"filters", CLI_INT, "N", "convolution filters", NULL, 1, 1024, 0, 0, 0, NULL},
    {"epochs", CLI_INT, "N", "training epochs", NULL, 1, 1e7, 0, 0, 0, NULL},
    {"batch", CLI_INT, "N", "mini-batch size", NULL, 2, 100000, 0, 0, 0, NULL},
    {"lr", CLI_FLOAT, "X", "Adam learning rate", NULL, 1e-9, 1, 0, 0, 0, NULL},
    {"standardise", CLI_FLAG, NULL, "z-score inputs and targets with training-pixel statistics (default: raw, as the paper)", NULL, 0, 0, 0, 0, 0, NULL},
    {"seed", CLI_INT, "N", "random seed (same seed: bit-identical model)", NULL, 0, 9.2e18, 0, 0, 0, NULL},
    CLI_OPT_THREADS,
    CLI_OPT_JSON,
    CLI_OPT_MEMORY,
    CLI_OPT_END};

static cli_option apply_opts[] = {
    CLI_OPT_MODEL,
    OPT_STRUCTURE,
    OPT_SSLICE,
    OPT_GRID,
    CLI_OPT_OUT,
    CLI_OPT_THREADS,
    CLI_OPT_JSON,
    CLI_OPT_MEMORY,
    CLI_OPT_END};

static void set_engine_defaults(cli_option *opts)
{
    static char buf[8][32];
    fl_i2s_config c;
    fl_i2s_config_default(&c);
    const cli_default d[] = {{"train-fraction", c.train_fraction, 0}, {"patch", c.patch, 1}, {"latent", c.latent, 1},
                             {"filters", c.filters, 1}, {"epochs", c.epochs, 1}, {"batch", c.batch, 1}, {"lr", c.lr, 0},
                             {"seed", (double)c.seed, 1}};
    cli_set_defaults(opts, d, sizeof d / sizeof d[0], buf);
}

typedef struct inputs {
    fl_image simg, gimg;
    float *structure; /* points into simg (the chosen plane) */
    float *curves;
    int64_t n;
    int32_t P;
    double *axis;
    char unit[32], label[64];
} inputs;

static void inputs_free(inputs *in)
{
    fl_image_free(&in->simg);
    fl_image_free(&in->gimg);
    fl_free(in->curves);
    fl_free(in->axis);
}

static fl_status read_inputs(fl_ctx *ctx, const char *spath, int64_t sslice, const char *gpath, inputs *in)
{
    memset(in, 0, sizeof *in);
    fl_image_init(&in->simg);
    fl_image_init(&in->gimg);
    fl_status st = FL_OK;
    if (spath) {
        st = fl_tiff_read(ctx, spath, &in->simg);
        if (!st && (in->simg.is_rgb || !in->simg.data)) st = fl_fail(ctx, FL_EUNSUPPORTED, "'%s' is an RGB image; the structure must be grey values", spath);
        const int64_t planes = st ? 0 : fl_image_planes(&in->simg);
        if (!st && sslice == 0 && planes != 1)
            st = fl_fail(ctx, FL_EINVAL, "'%s' has %lld planes: choose one with --structure-slice", spath, (long long)planes);
        if (!st && sslice > planes)
            st = fl_fail(ctx, FL_EINVAL, "--structure-slice %lld: '%s' has only %lld planes", (long long)sslice, spath,
                         (long long)planes);
        if (!st) in->structure = in->simg.data + (sslice > 0 ? sslice - 1 : 0) * in->simg.width * in->simg.height;
    }
    if (!st && gpath) {
        st = fl_tiff_read(ctx, gpath, &in->gimg);
        if (!st)
            st = fl_grid_to_curves(ctx, &in->gimg, 0, &in->curves, &in->n, &in->P, &in->axis, in->unit, in->label);
    }
    return st;
}

static fl_i2s_data make_data(const inputs *in)
{
    fl_i2s_data d = {in->structure, in->simg.width, in->simg.height, in->curves, in->gimg.width, in->gimg.height,
                     in->P, in->axis};
    return d;
}

/* Applies the model to the inputs and writes every map + summary fields. */
static fl_status write_results(fl_ctx *ctx, const fl_i2s *m, const inputs *in, const char *out, cli_json *j)
{
    const fl_i2s_config *c = fl_i2s_get_config(m);
    const int im2spec = c->direction == FL_I2S_IM2SPEC;
    fl_i2s_data d = make_data(in);
    const fl_image *like = im2spec ? &in->simg : &in->gimg;
    const int64_t W = like->width, H = like->height, D = fl_i2s_output_size(m), z = c->latent, npix = W * H;
    const int truth = im2spec ? in->curves != NULL : in->structure != NULL;
    float *pred = fl_alloc((size_t)(npix * D) * sizeof(float)), *lat = fl_alloc((size_t)(npix * z) * sizeof(float));
    float *err = fl_alloc((size_t)(npix * FL_I2S_NERR) * sizeof(float));
    float *maskf = fl_alloc((size_t)npix * sizeof(float));
    uint8_t *mask = malloc((size_t)npix);
    char **labels = calloc((size_t)z, sizeof(char *));
    fl_status st = (!pred || !lat || !err || !maskf || !mask || !labels) ? fl_fail(ctx, FL_ENOMEM, "out of memory") : FL_OK;
    fl_i2s_scores sc;
    if (!st) st = fl_i2s_apply(ctx, m, &d, pred, lat, err, truth ? &sc : NULL);
    fl_image im;
    fl_image_init(&im);
    if (!st) {
        if (im2spec) {
            const double *axis = in->curves ? in->axis : fl_i2s_axis_values(m);
            st = fl_curves_to_grid(ctx, pred, W, H, (int32_t)D, axis, in->curves ? in->unit : "", like, &im);
        } else {
            const int64_t p = c->patch;
            st = fl_image_alloc(ctx, &im, W * p, H * p, 1, 1, 1);
            for (int64_t y = 0; !st && y < H; y++)
                for (int64_t x = 0; x < W; x++)
                    for (int64_t r = 0; r < p; r++)
                        memcpy(im.data + (y * p + r) * W * p + x * p, pred + (y * W + x) * D + r * p, (size_t)p * sizeof(float));
            if (!st) st = fl_image_set_label(ctx, &im, 0, "predicted patches");
        }
    }
    if (!st) st = cli_write_tiff(ctx, out, "predicted.tif", &im);
    fl_image_free(&im);
    for (int64_t k = 0; !st && k < z; k++) {
        labels[k] = malloc(24);
        if (!labels[k]) st = fl_fail(ctx, FL_ENOMEM, "out of memory");
        else snprintf(labels[k], 24, "z%lld", (long long)(k + 1));
    }
    if (!st) st = fl_maps_to_image(ctx, lat, W, H, (int32_t)z, (const char *const *)labels, like, &im);
    if (!st) st = cli_write_tiff(ctx, out, "latent.tif", &im);
    fl_image_free(&im);
    if (!st && truth) {
        const char *el[FL_I2S_NERR];
        for (int k = 0; k < FL_I2S_NERR; k++) el[k] = fl_i2s_error_label(m, k);
        st = fl_maps_to_image(ctx, err, W, H, FL_I2S_NERR, el, like, &im);
        if (!st) st = cli_write_tiff(ctx, out, "errors.tif", &im);
        fl_image_free(&im);
    }
    /* the model's train/test region on this image (all usable pixels are "test" when it does not fit) */
    if (!st) {
        fl_ctx *probe = fl_ctx_new();
        int ok = probe && fl_i2s_region(probe, c, W, H, mask) == FL_OK;
        fl_ctx_free(probe);
        for (int64_t i = 0; i < npix; i++) maskf[i] = ok ? (float)mask[i] : (isnan(lat[i * z]) ? 0.f : 2.f);
        const char *ml = "region (0 skipped, 1 train, 2 test)";
        st = fl_maps_to_image(ctx, maskf, W, H, 1, &ml, like, &im);
        if (!st) st = cli_write_tiff(ctx, out, "train_region.tif", &im);
        fl_image_free(&im);
        cli_json_bool(j, "region_from_model", ok);
    }
    if (!st) {
        cli_json_int(j, "width", W);
        cli_json_int(j, "height", H);
        cli_json_int(j, "patch", c->patch);
        cli_json_int(j, "points", c->points);
        cli_json_int(j, "latent", z);
        if (c->roi_w > 0) {
            double roi[4] = {c->roi_x, c->roi_y, c->roi_w, c->roi_h};
            cli_json_num_array(j, "roi", roi, 4);
        } else {
            cli_json_num(j, "train_fraction", c->train_fraction);
        }
        if (truth) {
            const char *key[FL_I2S_NERR] = {"mse", "normalised_rms", im2spec ? "loop_area_error" : "one_minus_ssim"};
            char k2[64];
            cli_json_int(j, "train_pixels", sc.n_train);
            cli_json_int(j, "test_pixels", sc.n_test);
            for (int k = 0; k < FL_I2S_NERR; k++) {
                snprintf(k2, sizeof k2, "test_%s", key[k]);
                cli_json_num(j, k2, sc.test[k]);
                snprintf(k2, sizeof k2, "train_%s", key[k]);
                cli_json_num(j, k2, sc.train[k]);
                snprintf(k2, sizeof k2, "baseline_test_%s", key[k]);
                cli_json_num(j, k2, sc.baseline_test[k]);
            }
            cli_json_str(j, "baseline", im2spec ? "mean training loop" : "mean training patch");
            cli_json_num(j, "test_mse_over_baseline", sc.mse_ratio);
            cli_json_num(j, "test_third_over_baseline", sc.test[2] / sc.baseline_test[2]);
        }
    }
    for (int64_t k = 0; labels && k < z; k++) free(labels[k]);
    free(labels);
    free(mask);
    fl_free(maskf);
    fl_free(pred);
    fl_free(lat);
    fl_free(err);
    return st;
}



static fl_status write_loss_csv(fl_ctx *ctx, const fl_i2s *m, const char *out)
{
    const double *tr, *te;
    int32_t n = fl_i2s_history(m, &tr, &te);
    char path[CLI_PATH_MAX];
    FILE *f = cli_path_join(path, sizeof path, out, "loss.csv") ? NULL : fopen(path, "w");
    if (!f) return fl_fail(ctx, FL_EIO, "cannot write '%s'", path);
    fprintf(f, "epoch,train,test\n");
    for (int32_t e = 0; e < n; e++) fprintf(f, "%d,%.9g,%.9g\n", e + 1, tr[e], te[e]);
    return fclose(f) ? fl_fail(ctx, FL_EIO, "cannot write '%s'", path) : FL_OK;
}

static int do_train(const char *cmd, int direction, int argc, char **argv)
{
    set_engine_defaults(train_opts);
    int rc = cli_parse(cmd, train_opts, argc - 1, argv + 1);
    if (rc == CLI_HELP) {
        cli_print_help(stdout, cmd,
                       direction == FL_I2S_IM2SPEC
                           ? "Train im2spec (Kalinin et al.): predict every pixel's spectrum from the structure patch "
                             "around it; the train/test split is spatial."
                           : "Train spec2im: predict the structure patch around every pixel from its spectrum; the "
                             "train/test split is spatial.",
                       train_opts, I2S_OUTPUTS);
        return 0;
    }
    if (rc) return rc;
    const char *spath = cli_str(train_opts, "structure"), *gpath = cli_str(train_opts, "input");
    const char *out = cli_str(train_opts, "out");
    if (!spath || !gpath || !out) return cli_usage_error(cmd, "--structure, --input and --out are required");
    fl_i2s_config c;
    fl_i2s_config_default(&c);
    c.direction = direction;
    c.patch = (int32_t)cli_int(train_opts, "patch");
    if (c.patch != 8 && c.patch != 16) return cli_usage_error(cmd, "--patch must be 8 or 16 (got %d)", c.patch);
    c.latent = (int32_t)cli_int(train_opts, "latent");
    c.filters = (int32_t)cli_int(train_opts, "filters");
    c.epochs = (int32_t)cli_int(train_opts, "epochs");
    c.batch = (int32_t)cli_int(train_opts, "batch");
    c.lr = (float)cli_float(train_opts, "lr");
    c.seed = (uint64_t)cli_int(train_opts, "seed");
    c.standardise = cli_flag(train_opts, "standardise");
    c.train_fraction = (float)cli_float(train_opts, "train-fraction");
    const char *roi = cli_str(train_opts, "roi");
    if (roi) {
        if (cli_is_set(train_opts, "train-fraction")) return cli_usage_error(cmd, "give --roi or --train-fraction, not both");
        long v[4];
        char tail;
        if (sscanf(roi, "%ld,%ld,%ld,%ld%c", &v[0], &v[1], &v[2], &v[3], &tail) != 4 || v[0] < 0 || v[1] < 0 ||
            v[2] < 1 || v[3] < 1 || v[0] > 1000000 || v[1] > 1000000 || v[2] > 1000000 || v[3] > 1000000)
            return cli_usage_error(cmd, "--roi must be x,y,w,h with x, y >= 0 and w, h >= 1 (got '%s')", roi);
        c.roi_x = (int32_t)v[0], c.roi_y = (int32_t)v[1], c.roi_w = (int32_t)v[2], c.roi_h = (int32_t)v[3];
    }
    cli_json j;
    fl_ctx *ctx = cli_command_start(cmd, train_opts, out, &j);
    if (!ctx) return CLI_EXIT_FAIL;
    inputs in;
    fl_i2s *m = NULL;
    fl_status st = read_inputs(ctx, spath, cli_int(train_opts, "structure-slice"), gpath, &in);
    fl_i2s_data d = make_data(&in);
    double t0 = fl_now_seconds();
    if (!st) st = fl_i2s_train(ctx, &c, &d, &m);
    if (st == FL_ECANCELLED && m) {
        fprintf(stderr, "ferrolens: cancelled; keeping the model of the last finished epoch\n");
        fl_ctx_clear_error(ctx);
        st = FL_OK;
        cli_json_bool(&j, "cancelled", 1);
    }
    char path[CLI_PATH_MAX];
    if (!st && cli_path_join(path, sizeof path, out, "model.safetensors")) st = fl_fail(ctx, FL_EINVAL, "path too long");
    if (!st) st = fl_i2s_save(ctx, m, path);
    if (!st) st = write_loss_csv(ctx, m, out);
    if (!st) {
        const double *tr, *te;
        int32_t ne = fl_i2s_history(m, &tr, &te);
        cli_json_str(&j, "model", path);
        cli_json_int(&j, "parameters", fl_i2s_param_count(m));
        cli_json_int(&j, "epochs_run", ne);
        cli_json_num(&j, "final_train_loss", ne ? tr[ne - 1] : NAN);
        cli_json_num(&j, "final_test_loss", ne ? te[ne - 1] : NAN);
        cli_json_num(&j, "seconds_per_epoch", ne ? (fl_now_seconds() - t0) / ne : NAN);
        cli_json_int(&j, "threads", fl_ctx_threads(ctx));
        st = write_results(ctx, m, &in, out, &j);
    }
    fl_i2s_free(m);
    inputs_free(&in);
    return cli_command_finish(ctx, st, &j, train_opts, out);
}

static int do_apply(const char *cmd, int direction, int argc, char **argv)
{
    int rc = cli_parse(cmd, apply_opts, argc - 1, argv + 1);
    if (rc == CLI_HELP) {
        cli_print_help(stdout, cmd,
                       direction == FL_I2S_IM2SPEC
                           ? "Apply a trained im2spec model: --structure is required, --input (the true spectra) "
                             "adds the error maps and scores."
                           : "Apply a trained spec2im model: --input is required, --structure (the true image) adds "
                             "the error maps and scores.",
                       apply_opts, I2S_OUTPUTS);
        return 0;
    }
    if (rc) return rc;
    const char *spath = cli_str(apply_opts, "structure"), *gpath = cli_str(apply_opts, "input");
    const char *out = cli_str(apply_opts, "out"), *model = cli_str(apply_opts, "model");
    if (!model || !out) return cli_usage_error(cmd, "--model and --out are required");
    if (direction == FL_I2S_IM2SPEC && !spath) return cli_usage_error(cmd, "--structure is required");
    if (direction == FL_I2S_SPEC2IM && !gpath) return cli_usage_error(cmd, "--input is required");
    cli_json j;
    fl_ctx *ctx = cli_command_start(cmd, apply_opts, out, &j);
    if (!ctx) return CLI_EXIT_FAIL;
    cli_json_str(&j, "model", model);
    inputs in;
    memset(&in, 0, sizeof in);
    fl_image_init(&in.simg);
    fl_image_init(&in.gimg);
    fl_i2s *m = NULL;
    fl_status st = fl_i2s_load(ctx, model, &m);
    if (!st && fl_i2s_get_config(m)->direction != direction)
        st = fl_fail(ctx, FL_EMISMATCH, "'%s' holds a %s model; use 'ferrolens %s apply'", model,
                     direction == FL_I2S_IM2SPEC ? "spec2im" : "im2spec (image to spectrum)",
                     direction == FL_I2S_IM2SPEC ? "spec2im" : "im2spec");
    if (!st) st = read_inputs(ctx, spath, cli_int(apply_opts, "structure-slice"), gpath, &in);
    if (!st) {
        double t0 = fl_now_seconds();
        st = write_results(ctx, m, &in, out, &j);
        cli_json_num(&j, "seconds", fl_now_seconds() - t0);
    }
    fl_i2s_free(m);
    inputs_free(&in);
    return cli_command_finish(ctx, st, &j, apply_opts, out);
}

static int dispatch(const char *group, int direction, int argc, char **argv)
{
    const char *action = argc > 0 ? argv[0] : "--help";
    char cmd[64];
    snprintf(cmd, sizeof cmd, "%s %s", group, action);
    if (!strcmp(action, "train")) return do_train(cmd, direction, argc, argv);
    if (!strcmp(action, "apply")) return do_apply(cmd, direction, argc, argv);
    if (!strcmp(action, "--help") || !strcmp(action, "-h")) {
        printf("Usage: ferrolens %s train|apply [options]\n"
               "  train  train on a structure image + spectra grid (--structure, --input, --out)\n"
               "  apply  predict with a trained model (--model, --out, and %s)\n"
               "Each action has --help.\n",
               group, direction == FL_I2S_IM2SPEC ? "--structure [--input]" : "--input [--structure]");
        return 0;
    }
    static const char *const actions[] = {"train", "apply", NULL};
    const char *near = cli_best_match(action, actions);
    return cli_usage_error(group, "unknown action '%s'%s%s%s", action, near ? " (did you mean '" : "", near ? near : "",
                           near ? "'?)" : "");
}

int cmd_im2spec(int argc, char **argv) { return dispatch("im2spec", FL_I2S_IM2SPEC, argc, argv); }
int cmd_spec2im(int argc, char **argv) { return dispatch("spec2im", FL_I2S_SPEC2IM, argc, argv); }
