/* ferrolens walls train|retrain|apply|live: the ResHedNet wall-segmentation ensemble (family 4,
 * ferrolens/reshednet.h). Dispatched from cmd_walls.c. */
#include "cli.h"
#include "fl_internal.h"
#include "ferrolens/reshednet.h"
#include "ferrolens/walls.h"
#include "io/tiff.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OPT_MASKS {"masks", CLI_STRING, "FILE", "wall masks (0 = background, one value for walls), one plane per input plane", NULL, 0, 0, 0, 0, 0, NULL}

static cli_option train_opts[] = {
    {"input", CLI_STRING, "FILE", "PFM images (TIFF; every plane is one image)", NULL, 0, 0, 0, 0, 0, NULL},
    OPT_MASKS,
    CLI_OPT_OUT,
    {"members", CLI_INT, "N", "ensemble members", "10", 1, 1000, 0, 0, 0, NULL},
    {"filters", CLI_INT, "F", "ResHedNet width nb_filters (paper: 64)", "16", 1, 512, 0, 0, 0, NULL},
    {"iterations", CLI_INT, "N", "mini-batches per member", "800", 1, 1e7, 0, 0, 0, NULL},
    {"patch", CLI_INT, "P", "patch side in pixels, multiple of 4 (paper: 250)", "64", 16, 4096, 0, 0, 0, NULL},
    {"batch", CLI_INT, "B", "patches per mini-batch", "10", 1, 4096, 0, 0, 0, NULL},
    {"lr", CLI_FLOAT, "X", "Adam learning rate", "0.001", 1e-9, 1, 0, 0, 0, NULL},
    {"swa-last", CLI_INT, "N", "average the weights of the last N iterations (0: no SWA)", "30", 0, 1e6, 0, 0, 0, NULL},
    {"no-augment", CLI_FLAG, NULL, "no flips/rotations, blur or gamma augmentation", NULL, 0, 0, 0, 0, 0, NULL},
    {"seed", CLI_INT, "N", "member i is initialised and shuffled with seed + i", "0", 0, 9.2e18, 0, 0, 0, NULL},
    CLI_OPT_THREADS,
    CLI_OPT_JSON,
    CLI_OPT_MEMORY,
    CLI_OPT_END};

static cli_option retrain_opts[] = {
    CLI_OPT_MODEL,
    {"input", CLI_STRING, "FILE", "PFM images (TIFF; every plane is one image)", NULL, 0, 0, 0, 0, 0, NULL},
    OPT_MASKS,
    CLI_OPT_OUT,
    {"iterations", CLI_INT, "N", "mini-batches per member", "100", 1, 1e7, 0, 0, 0, NULL},
    CLI_OPT_THREADS,
    CLI_OPT_JSON,
    CLI_OPT_MEMORY,
    CLI_OPT_END};

static cli_option apply_opts[] = {
    CLI_OPT_MODEL,
    {"input", CLI_STRING, "FILE", "PFM images (TIFF; every plane is one image)", NULL, 0, 0, 0, 0, 0, NULL},
    CLI_OPT_OUT,
    {"threshold", CLI_FLOAT, "T", "wall where the mean probability >= T", "0.5", 0, 1, 0, 0, 0, NULL},
    CLI_OPT_THREADS,
    CLI_OPT_JSON,
    CLI_OPT_MEMORY,
    CLI_OPT_END};

static cli_option live_opts[] = {
    CLI_OPT_MODEL,
    {"input", CLI_STRING, "FILE", "a finished scan (first plane) replayed line by line", NULL, 0, 0, 0, 0, 0, NULL},
    CLI_OPT_OUT,
    {"threshold", CLI_FLOAT, "T", "wall where the mean probability >= T", "0.5", 0, 1, 0, 0, 0, NULL},
    {"lo", CLI_FLOAT, "X", "fixed normalisation minimum (with --hi; default: running min/max of the lines so far)", NULL, -1e30, 1e30, 0, 0, 0, NULL},
    {"hi", CLI_FLOAT, "X", "fixed normalisation maximum", NULL, -1e30, 1e30, 0, 0, 0, NULL},
    {"no-check", CLI_FLAG, NULL, "skip the full recompute that checks the final live maps", NULL, 0, 0, 0, 0, 0, NULL},
    CLI_OPT_THREADS,
    CLI_OPT_JSON,
    CLI_OPT_MEMORY,
    CLI_OPT_END};

#define TRAIN_OUT "Outputs in --out: model.safetensors (all members), loss.csv (member,iteration,focal_loss), summary.json\n"
#define APPLY_OUT                                                                                              \
    "Outputs in --out (one plane per input plane): probability.tif (ensemble mean), uncertainty.tif (variance\n" \
    "across members), mask.tif (0/1, mean >= threshold), skeleton.tif (0/1, thinned mask), summary.json\n"
#define LIVE_OUT                                                                                                     \
    "Outputs in --out: probability.tif, uncertainty.tif, mask.tif (final live maps), live.csv (line, seconds,\n"     \
    "cumulative seconds), summary.json (seconds per line vs a full recompute, largest difference to it)\n"

static int need(const char *cmd, cli_option *opts, const char *const *names)
{
    for (int i = 0; names[i]; i++)
        if (!cli_str(opts, names[i])) return cli_usage_error(cmd, "--%s is required", names[i]);
    return 0;
}

static fl_status write_stack(fl_ctx *ctx, const char *dir, const char *name, const float *data, int64_t w, int64_t h,
                             int64_t planes)
{
    fl_image img;
    fl_image_init(&img);
    fl_status st = fl_image_alloc(ctx, &img, w, h, 1, planes, 1);
    if (!st) {
        memcpy(img.data, data, (size_t)(w * h * planes) * sizeof(float));
        st = cli_write_tiff(ctx, dir, name, &img);
    }
    fl_image_free(&img);
    return st;
}

/* Reads images and masks into pairs (planes of both files, same count). Returns FL_OK or a status with the
 * message in ctx. */
typedef struct pairs_in {
    fl_image img, msk;
    fl_reshed_pair *p;
    int32_t n;
} pairs_in;

static void pairs_free(pairs_in *q)
{
    fl_image_free(&q->img);
    fl_image_free(&q->msk);
    free(q->p);
}

static fl_status read_pairs(fl_ctx *ctx, cli_option *opts, pairs_in *q)
{
    fl_status st = fl_tiff_read(ctx, cli_str(opts, "input"), &q->img);
    if (!st) st = fl_tiff_read(ctx, cli_str(opts, "masks"), &q->msk);
    if (st) return st;
    if (q->img.is_rgb || q->msk.is_rgb)
        return fl_fail(ctx, FL_EUNSUPPORTED, "RGB images are not supported: convert the images and masks to 8-, 16- or 32-bit grey");
    const int64_t ni = fl_image_planes(&q->img), nm = fl_image_planes(&q->msk);
    if (ni != nm)
        return fl_fail(ctx, FL_EMISMATCH, "--input has %lld planes but --masks has %lld: give one mask per image", (long long)ni,
                       (long long)nm);
    if (ni > 100000) return fl_fail(ctx, FL_EINVAL, "too many planes (%lld)", (long long)ni);
    q->n = (int32_t)ni;
    q->p = calloc((size_t)ni, sizeof *q->p);
    if (!q->p) return fl_fail(ctx, FL_ENOMEM, "out of memory");
    const int64_t si = q->img.width * q->img.height, sm = q->msk.width * q->msk.height;
    for (int64_t i = 0; i < ni; i++)
        q->p[i] = (fl_reshed_pair){q->img.data + i * si, q->img.width, q->img.height, q->msk.data + i * sm, q->msk.width,
                                   q->msk.height};
    return FL_OK;
}

static fl_status write_loss_csv(fl_ctx *ctx, const fl_reshed *m, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) return fl_fail(ctx, FL_EIO, "cannot write %s", path);
    int32_t M, I;
    const float *L = fl_reshed_loss_history(m, &M, &I);
    fprintf(f, "member,iteration,focal_loss\n");
    for (int32_t k = 0; L && k < M; k++)
        for (int32_t i = 0; i < I; i++)
            if (isfinite(L[(int64_t)k * I + i])) fprintf(f, "%d,%d,%.8g\n", k, i + 1, (double)L[(int64_t)k * I + i]);
    if (fclose(f)) return fl_fail(ctx, FL_EIO, "cannot write %s", path);
    return FL_OK;
}

static double final_loss(const fl_reshed *m)
{
    int32_t M, I;
    const float *L = fl_reshed_loss_history(m, &M, &I);
    double s = 0;
    int n = 0;
    for (int32_t k = 0; L && k < M; k++)
        for (int32_t i = I > 10 ? I - 10 : 0; i < I; i++)
            if (isfinite(L[(int64_t)k * I + i])) s += L[(int64_t)k * I + i], n++;
    return n ? s / n : NAN;
}

/* After training: saves the model (also a cancelled training's: every member trained so far) and loss.csv,
 * and adds the summary fields. Returns the status for cli_command_finish. */
static fl_status save_model(fl_ctx *ctx, fl_status st, fl_reshed *m, const char *out, cli_json *j, double secs)
{
    char path[CLI_PATH_MAX], csv[CLI_PATH_MAX];
    const int cancelled = st == FL_ECANCELLED && m;
    if (st && !cancelled) return st;
    if (cancelled) fprintf(stderr, "ferrolens: %s\n", fl_ctx_message(ctx));
    if ((st = cli_out_path(ctx, path, sizeof path, out, "model.safetensors")) || (st = cli_out_path(ctx, csv, sizeof csv, out, "loss.csv")) ||
        (st = fl_reshed_save(ctx, m, path)) || (st = write_loss_csv(ctx, m, csv)))
        return st;
    const fl_reshed_config *c = fl_reshed_get_config(m);
    cli_json_str(j, "model", path);
    cli_json_int(j, "members", fl_reshed_members(m));
    cli_json_int(j, "filters", c->nb_filters);
    cli_json_int(j, "parameters_per_member", fl_reshed_param_count(m));
    cli_json_num(j, "final_loss", final_loss(m));
    cli_json_bool(j, "cancelled", cancelled);
    cli_json_num(j, "seconds", secs);
    cli_json_int(j, "threads", fl_ctx_threads(ctx));
    return FL_OK;
}

/* The commands below run in the shared frame (cli_command_start / cli_command_finish): on failure the
 * --out folders they created are removed again while empty, and every error is one sentence. */

int cmd_walls_train(int argc, char **argv)
{
    const char *cmd = "walls train";
    int rc = cli_parse(cmd, train_opts, argc, argv);
    if (rc == CLI_HELP) {
        cli_print_help(stdout, cmd, "Train an ensemble of ResHedNets (Liu et al. 2022) on PFM images and their wall masks.", train_opts, TRAIN_OUT);
        return 0;
    }
    if (rc) return rc;
    static const char *const req[] = {"input", "masks", "out", NULL};
    if ((rc = need(cmd, train_opts, req))) return rc;
    fl_reshed_config c;
    fl_reshed_config_default(&c);
    c.members = (int32_t)cli_int(train_opts, "members");
    c.nb_filters = (int32_t)cli_int(train_opts, "filters");
    c.iterations = (int32_t)cli_int(train_opts, "iterations");
    c.patch = (int32_t)cli_int(train_opts, "patch");
    c.batch = (int32_t)cli_int(train_opts, "batch");
    c.lr = (float)cli_float(train_opts, "lr");
    c.swa = cli_int(train_opts, "swa-last") > 0;
    if (c.swa) c.swa_last = (int32_t)cli_int(train_opts, "swa-last");
    c.aug_flip = c.aug_blur = c.aug_gamma = !cli_flag(train_opts, "no-augment");
    c.seed = (uint64_t)cli_int(train_opts, "seed");
    if (c.patch % 4) return cli_usage_error(cmd, "--patch must be a multiple of 4 (got %d)", c.patch);
    const char *out = cli_str(train_opts, "out");
    cli_json j;
    fl_ctx *ctx = cli_command_start(cmd, train_opts, out, &j);
    if (!ctx) return CLI_EXIT_FAIL;
    pairs_in q;
    memset(&q, 0, sizeof q);
    fl_image_init(&q.img);
    fl_image_init(&q.msk);
    fl_reshed *m = NULL;
    fl_status st = read_pairs(ctx, train_opts, &q);
    if (!st) {
        cli_json_int(&j, "pairs", q.n);
        cli_json_int(&j, "iterations", c.iterations);
        cli_json_int(&j, "patch", c.patch);
        cli_json_int(&j, "batch", c.batch);
        const double t0 = fl_now_seconds();
        st = fl_reshed_train(ctx, &c, q.p, q.n, &m);
        st = save_model(ctx, st, m, out, &j, fl_now_seconds() - t0);
    }
    fl_reshed_free(m);
    pairs_free(&q);
    return cli_command_finish(ctx, st, &j, train_opts, out);
}

int cmd_walls_retrain(int argc, char **argv)
{
    const char *cmd = "walls retrain";
    int rc = cli_parse(cmd, retrain_opts, argc, argv);
    if (rc == CLI_HELP) {
        cli_print_help(stdout, cmd, "Fine-tune every member of a wall ensemble on new or corrected labels (fresh Adam state).", retrain_opts, TRAIN_OUT);
        return 0;
    }
    if (rc) return rc;
    static const char *const req[] = {"model", "input", "masks", "out", NULL};
    if ((rc = need(cmd, retrain_opts, req))) return rc;
    const char *out = cli_str(retrain_opts, "out");
    cli_json j;
    fl_ctx *ctx = cli_command_start(cmd, retrain_opts, out, &j);
    if (!ctx) return CLI_EXIT_FAIL;
    fl_reshed *m = NULL;
    pairs_in q;
    memset(&q, 0, sizeof q);
    fl_image_init(&q.img);
    fl_image_init(&q.msk);
    fl_status st = fl_reshed_load(ctx, cli_str(retrain_opts, "model"), &m);
    if (!st) st = read_pairs(ctx, retrain_opts, &q);
    if (!st) {
        cli_json_int(&j, "pairs", q.n);
        cli_json_int(&j, "iterations", cli_int(retrain_opts, "iterations"));
        const double t0 = fl_now_seconds();
        st = fl_reshed_retrain(ctx, m, q.p, q.n, (int32_t)cli_int(retrain_opts, "iterations"));
        /* a cancelled retrain leaves the ensemble unchanged: nothing is written */
        if (st != FL_ECANCELLED) st = save_model(ctx, st, m, out, &j, fl_now_seconds() - t0);
    }
    fl_reshed_free(m);
    pairs_free(&q);
    return cli_command_finish(ctx, st, &j, retrain_opts, out);
}

/* mask and skeleton (as floats) from the mean probability */
static fl_status post(fl_ctx *ctx, const float *mean, int64_t w, int64_t h, double thr, float *mask, float *skel,
                      uint8_t *tmp, int64_t *walls)
{
    fl_status st = fl_walls_threshold(ctx, mean, w, h, (float)thr, tmp);
    if (st) return st;
    for (int64_t j = 0; j < w * h; j++) {
        mask[j] = tmp[j];
        *walls += tmp[j];
    }
    if (!skel) return FL_OK;
    st = fl_walls_skeletonize(ctx, tmp, w, h, tmp);
    for (int64_t j = 0; !st && j < w * h; j++) skel[j] = tmp[j];
    return st;
}

int cmd_walls_apply(int argc, char **argv)
{
    const char *cmd = "walls apply";
    int rc = cli_parse(cmd, apply_opts, argc, argv);
    if (rc == CLI_HELP) {
        cli_print_help(stdout, cmd, "Segment PFM images with a wall ensemble: mean probability, uncertainty, mask, skeleton.", apply_opts, APPLY_OUT);
        return 0;
    }
    if (rc) return rc;
    static const char *const req[] = {"model", "input", "out", NULL};
    if ((rc = need(cmd, apply_opts, req))) return rc;
    const char *out = cli_str(apply_opts, "out");
    cli_json j;
    fl_ctx *ctx = cli_command_start(cmd, apply_opts, out, &j);
    if (!ctx) return CLI_EXIT_FAIL;
    fl_reshed *m = NULL;
    fl_image img;
    fl_image_init(&img);
    float *mean = NULL, *var = NULL, *mask = NULL, *skel = NULL;
    uint8_t *tmp = NULL;
    fl_status st = fl_reshed_load(ctx, cli_str(apply_opts, "model"), &m);
    if (!st) st = fl_tiff_read(ctx, cli_str(apply_opts, "input"), &img);
    if (!st && img.is_rgb) st = fl_fail(ctx, FL_EUNSUPPORTED, "RGB images are not supported: convert the image to grey");
    const int64_t w = img.width, h = img.height, P = fl_image_planes(&img), n = w * h;
    if (!st) {
        const size_t bytes = (size_t)(n * P) * sizeof(float);
        mean = malloc(bytes), var = malloc(bytes), mask = malloc(bytes), skel = malloc(bytes);
        tmp = malloc((size_t)n);
        if (!mean || !var || !mask || !skel || !tmp) st = fl_fail(ctx, FL_ENOMEM, "out of memory for the %lld x %lld x %lld output maps", (long long)w, (long long)h, (long long)P);
    }
    const double t0 = fl_now_seconds();
    int64_t walls = 0;
    double usum = 0;
    for (int64_t p = 0; !st && p < P; p++) {
        st = fl_reshed_apply(ctx, m, img.data + p * n, w, h, mean + p * n, var + p * n);
        if (!st) st = post(ctx, mean + p * n, w, h, cli_float(apply_opts, "threshold"), mask + p * n, skel + p * n, tmp, &walls);
        for (int64_t i = 0; !st && i < n; i++) usum += var[p * n + i];
    }
    const double secs = fl_now_seconds() - t0;
    if (!st && !(st = write_stack(ctx, out, "probability.tif", mean, w, h, P)) && !(st = write_stack(ctx, out, "uncertainty.tif", var, w, h, P)) &&
        !(st = write_stack(ctx, out, "mask.tif", mask, w, h, P)))
        st = write_stack(ctx, out, "skeleton.tif", skel, w, h, P);
    if (!st) {
        cli_json_int(&j, "images", P);
        cli_json_int(&j, "width", w);
        cli_json_int(&j, "height", h);
        cli_json_int(&j, "members", fl_reshed_members(m));
        cli_json_num(&j, "threshold", cli_float(apply_opts, "threshold"));
        cli_json_num(&j, "wall_fraction", (double)walls / (double)(n * P));
        cli_json_num(&j, "mean_uncertainty", usum / (double)(n * P));
        cli_json_num(&j, "seconds_per_image", secs / (double)P);
        cli_json_int(&j, "threads", fl_ctx_threads(ctx));
    }
    free(mean), free(var), free(mask), free(skel), free(tmp);
    fl_image_free(&img);
    fl_reshed_free(m);
    return cli_command_finish(ctx, st, &j, apply_opts, out);
}

int cmd_walls_live(int argc, char **argv)
{
    const char *cmd = "walls live";
    int rc = cli_parse(cmd, live_opts, argc, argv);
    if (rc == CLI_HELP) {
        cli_print_help(stdout, cmd,
                       "Replay a finished scan line by line through a wall ensemble, as during acquisition: each new line\n"
                       "recomputes only the rows it reaches in every layer (or, when those activations exceed the memory\n"
                       "budget, a band of rows within the receptive-field radius of 69 rows).",
                       live_opts, LIVE_OUT);
        return 0;
    }
    if (rc) return rc;
    static const char *const req[] = {"model", "input", "out", NULL};
    if ((rc = need(cmd, live_opts, req))) return rc;
    if (cli_is_set(live_opts, "lo") != cli_is_set(live_opts, "hi") ||
        (cli_is_set(live_opts, "lo") && !(cli_float(live_opts, "lo") < cli_float(live_opts, "hi"))))
        return cli_usage_error(cmd, "give both --lo and --hi, with lo < hi");
    const char *out = cli_str(live_opts, "out");
    cli_json j;
    fl_ctx *ctx = cli_command_start(cmd, live_opts, out, &j);
    if (!ctx) return CLI_EXIT_FAIL;
    fl_ctx_set_progress(ctx, NULL, NULL); /* one progress line per scan line would flood stderr */
    fl_reshed *m = NULL;
    fl_reshed_live *lv = NULL;
    fl_image img;
    fl_image_init(&img);
    double *t = NULL;
    float *mask = NULL, *full = NULL;
    uint8_t *tmp = NULL;
    fl_status st = fl_reshed_load(ctx, cli_str(live_opts, "model"), &m);
    if (!st) st = fl_tiff_read(ctx, cli_str(live_opts, "input"), &img);
    if (!st && img.is_rgb) st = fl_fail(ctx, FL_EUNSUPPORTED, "RGB images are not supported: convert the image to grey");
    const int64_t w = img.width, h = img.height, n = w * h;
    const double lo = cli_is_set(live_opts, "lo") ? cli_float(live_opts, "lo") : 0, hi = cli_is_set(live_opts, "hi") ? cli_float(live_opts, "hi") : 0;
    if (!st) st = fl_reshed_live_begin(ctx, m, w, h, lo, hi, &lv);
    if (!st) {
        t = malloc((size_t)h * sizeof(double));
        mask = malloc((size_t)n * sizeof(float));
        full = malloc((size_t)n * sizeof(float));
        tmp = malloc((size_t)n);
        if (!t || !mask || !full || !tmp) st = fl_fail(ctx, FL_ENOMEM, "out of memory for a %lld x %lld scan", (long long)w, (long long)h);
    }
    double total = 0, fin = 0;
    int shown = 0; /* a progress line is on stderr */
    for (int64_t r = 0; !st && r < h; r++) {
        const double t0 = fl_now_seconds();
        st = fl_reshed_live_add_line(ctx, lv, img.data + r * w);
        t[r] = fl_now_seconds() - t0;
        total += t[r];
        if (!st && (r % 16 == 15 || r == h - 1)) shown = 1, fprintf(stderr, "\rline %lld/%lld  %.3f s/line", (long long)r + 1, (long long)h, total / (double)(r + 1));
    }
    if (shown) fprintf(stderr, "\n");
    if (!st) {
        const double t0 = fl_now_seconds();
        st = fl_reshed_live_finish(ctx, lv);
        fin = fl_now_seconds() - t0;
    }
    int64_t walls = 0;
    if (!st) st = post(ctx, fl_reshed_live_mean(lv), w, h, cli_float(live_opts, "threshold"), mask, NULL, tmp, &walls);
    if (!st && !(st = write_stack(ctx, out, "probability.tif", fl_reshed_live_mean(lv), w, h, 1)) &&
        !(st = write_stack(ctx, out, "uncertainty.tif", fl_reshed_live_variance(lv), w, h, 1)))
        st = write_stack(ctx, out, "mask.tif", mask, w, h, 1);
    if (!st) {
        char path[CLI_PATH_MAX];
        FILE *f = NULL;
        if (!(st = cli_out_path(ctx, path, sizeof path, out, "live.csv")) && !(f = fopen(path, "w")))
            st = fl_fail(ctx, FL_EIO, "cannot write %s", path);
        if (f) {
            double cum = 0;
            fprintf(f, "line,seconds,cumulative_seconds\n");
            for (int64_t r = 0; r < h; r++) fprintf(f, "%lld,%.6f,%.6f\n", (long long)r + 1, t[r], cum += t[r]);
            if (fclose(f)) st = fl_fail(ctx, FL_EIO, "cannot write %s", path);
        }
    }
    double full_s = NAN, maxdiff = NAN;
    if (!st && !cli_flag(live_opts, "no-check")) {
        const double t0 = fl_now_seconds();
        /* the full recompute normalises with the image's own min/max: with --lo/--hi set to other values
         * the difference also shows the effect of the normalisation */
        st = fl_reshed_apply(ctx, m, img.data, w, h, full, NULL);
        full_s = fl_now_seconds() - t0;
        maxdiff = 0;
        for (int64_t j = 0; !st && j < n; j++) maxdiff = fmax(maxdiff, fabs((double)full[j] - fl_reshed_live_mean(lv)[j]));
    }
    if (!st) {
        cli_json_int(&j, "width", w);
        cli_json_int(&j, "height", h);
        cli_json_int(&j, "members", fl_reshed_members(m));
        cli_json_str(&j, "live_mode", fl_reshed_live_incremental(lv) ? "rows" : "band");
        cli_json_int(&j, "band_rows", fl_reshed_live_band_rows(lv));
        cli_json_int(&j, "receptive_field_radius", FL_RESHED_RF_RADIUS);
        cli_json_num(&j, "seconds_per_line", total / (double)h);
        cli_json_num(&j, "finish_seconds", fin);
        cli_json_int(&j, "full_refreshes", fl_reshed_live_full_refreshes(lv));
        cli_json_num(&j, "full_recompute_seconds", full_s);
        cli_json_num(&j, "max_difference_to_full", maxdiff);
        cli_json_bool(&j, "fixed_range", lo < hi);
        cli_json_num(&j, "wall_fraction", (double)walls / (double)n);
        cli_json_int(&j, "threads", fl_ctx_threads(ctx));
    }
    free(t), free(mask), free(full), free(tmp);
    fl_reshed_live_free(lv);
    fl_image_free(&img);
    fl_reshed_free(m);
    return cli_command_finish(ctx, st, &j, live_opts, out);
}
