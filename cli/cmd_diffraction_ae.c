/* ferrolens diffraction-ae train|apply: family 3 (4D-STEM diffraction autoencoder) on a TIFF hyperstack or
 * a raw file, streamed from disk (inference over files larger than --memory). The source options are
 * those of `ferrolens stem` (cli_stem.c). */
#include "cli.h"
#include "cli_stem.h"
#include "fl_internal.h"
#include "ferrolens/diffraction_ae.h"
#include "ferrolens/stem.h"
#include "io/tiff.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAE_SOURCE_OPTS CLI_STEM_FILE_OPTS, CLI_OPT_OUT, CLI_OPT_THREADS, CLI_OPT_MEMORY, CLI_OPT_JSON

#define DAE_SOURCE_HELP                                                                                       \
    CLI_STEM_FILE_HELP                                                                                        \
    "The data are streamed: --memory bounds the network and batch buffers (files larger than memory work)."

#define DAE_OUTPUTS                                                                                                \
    "Outputs in --out:\n"                                                                                          \
    "  model.safetensors  the trained model (train only)\n"                                                        \
    "  embedding.tif      scan x by scan y, one slice per channel (\"channel 1\" ...)\n"                          \
    "  apertures.tif      binned-pattern-sized, one slice per channel: mean raw pattern of the top 5 % minus\n"   \
    "                     the bottom 5 % of that channel's activations (virtual-aperture difference)\n"          \
    "  loss.csv           epoch, lr, loss, mse, l1, contrastive, divergence (train only)\n"                      \
    "  summary.json       what --json prints"

static fl_status write_stack(fl_ctx *ctx, const char *dir, const char *name, int64_t w, int64_t h, int32_t n,
                             const float *planes /* n x w x h */, int transpose_from /* 0, or K: planes[p*K + k] */)
{
    fl_image im;
    fl_image_init(&im);
    fl_status st = fl_image_alloc(ctx, &im, w, h, 1, n, 1);
    const int64_t HW = w * h;
    for (int32_t k = 0; k < n && !st; k++) {
        float *dst = im.data + (size_t)k * HW;
        if (transpose_from)
            for (int64_t p = 0; p < HW; p++) dst[p] = planes[p * transpose_from + k];
        else
            memcpy(dst, planes + (size_t)k * HW, (size_t)HW * sizeof(float));
        char label[32];
        snprintf(label, sizeof label, "channel %d", k + 1);
        st = fl_image_set_label(ctx, &im, k, label);
    }
    if (!st) st = cli_write_tiff(ctx, dir, name, &im);
    fl_image_free(&im);
    return st;
}

static fl_status write_loss_csv(fl_ctx *ctx, const char *dir, const fl_dae *m)
{
    char path[CLI_PATH_MAX];
    fl_status st = cli_out_path(ctx, path, sizeof path, dir, "loss.csv");
    if (st) return st;
    FILE *f = fopen(path, "w");
    if (!f) return fl_fail(ctx, FL_EIO, "cannot write %s: %s", path, strerror(errno));
    int32_t ne;
    const fl_dae_epoch *h = fl_dae_history(m, &ne);
    fprintf(f, "epoch,lr,loss,mse,l1,contrastive,divergence\n");
    for (int32_t e = 0; e < ne; e++)
        fprintf(f, "%d,%.7g,%.9g,%.9g,%.7g,%.7g,%.7g\n", e + 1, h[e].lr, h[e].loss, h[e].mse, h[e].l1, h[e].contrastive,
                h[e].divergence);
    if (fclose(f)) return fl_fail(ctx, FL_EIO, "cannot write %s", path);
    return FL_OK;
}

/* embedding + apertures + the summary fields (after "command", in j); m trained or loaded. */
static fl_status finish(const cli_option *opts, fl_ctx *ctx, fl_stem4d *src, const fl_dae *m,
                        const fl_dae_report *rep, const char *out, cli_json *jp)
{
    const fl_dae_config *c = fl_dae_get_config(m);
    fl_stem4d_info info;
    fl_stem4d_get_info(src, &info);
    const int64_t n = info.patterns, K = c->embedding;
    float *emb = malloc((size_t)(n * K) * sizeof(float));
    float *ap = malloc((size_t)K * c->pattern_w * c->pattern_h * sizeof(float));
    if (!emb || !ap) {
        free(emb);
        free(ap);
        return fl_fail(ctx, FL_ENOMEM, "out of memory for the embedding of %lld patterns", (long long)n);
    }
    const double t0 = fl_now_seconds();
    fl_status st = fl_dae_embed(ctx, m, src, emb);
    const double t_embed = fl_now_seconds() - t0;
    if (!st) st = write_stack(ctx, out, "embedding.tif", info.scan_x, info.scan_y, (int32_t)K, emb, (int)K);
    if (!st) st = fl_dae_apertures(ctx, src, c->bin, emb, n, (int32_t)K, 0.05, ap);
    if (!st) st = write_stack(ctx, out, "apertures.tif", c->pattern_w, c->pattern_h, (int32_t)K, ap, 0);
    int64_t active = 0;
    for (int64_t k = 0; k < K && !st; k++) {
        int any = 0;
        for (int64_t p = 0; p < n && !any; p++) any = emb[p * K + k] != 0.f;
        active += any;
    }
    if (!st) {
        cli_json_str(jp, "version", FL_VERSION_STRING);
        cli_json_str(jp, "input", cli_str(opts, "input") ? cli_str(opts, "input") : cli_str(opts, "raw"));
        cli_json_int(jp, "detector_w", info.det_w);
        cli_json_int(jp, "detector_h", info.det_h);
        cli_json_int(jp, "scan_x", info.scan_x);
        cli_json_int(jp, "scan_y", info.scan_y);
        cli_json_int(jp, "bin", c->bin);
        cli_json_int(jp, "pattern_w", c->pattern_w);
        cli_json_int(jp, "pattern_h", c->pattern_h);
        double pools[FL_DAE_MAX_POOLS];
        int np = 0;
        while (np < FL_DAE_MAX_POOLS && c->pools[np]) pools[np] = c->pools[np], np++;
        cli_json_num_array(jp, "pools", pools, np);
        cli_json_int(jp, "width", c->width);
        cli_json_int(jp, "embedding", c->embedding);
        cli_json_int(jp, "params", fl_dae_param_count(m));
        cli_json_int(jp, "active_channels", active);
        cli_json_num(jp, "embed_seconds", t_embed);
        if (rep) {
            cli_json_int(jp, "epochs_run", rep->epochs_run);
            cli_json_int(jp, "best_epoch", rep->best_epoch + 1);
            cli_json_num(jp, "best_loss", rep->best_loss);
            cli_json_int(jp, "train_patterns", rep->train_patterns);
            cli_json_bool(jp, "training_set_in_memory", rep->cached);
            cli_json_num(jp, "train_patterns_per_second", rep->patterns_per_second);
            cli_json_bool(jp, "cancelled", rep->cancelled);
            cli_json_raw(jp, "files", "{\"model\":\"model.safetensors\",\"embedding\":\"embedding.tif\",\"apertures\":"
                                      "\"apertures.tif\",\"loss\":\"loss.csv\",\"summary\":\"summary.json\"}");
        } else {
            cli_json_str(jp, "model", cli_str(opts, "model"));
            cli_json_raw(jp, "files", "{\"embedding\":\"embedding.tif\",\"apertures\":\"apertures.tif\",\"summary\":"
                                      "\"summary.json\"}");
        }
        cli_json_str(jp, "out", out);
    }
    free(emb);
    free(ap);
    return st;
}

/* "4,2" -> pools */
static int parse_pools(const char *s, int32_t *pools)
{
    int n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (errno || end == p || v < 2 || v > 8 || n >= FL_DAE_MAX_POOLS) return 0;
        pools[n++] = (int32_t)v;
        if (*end == ',') p = end + 1;
        else if (*end) return 0;
        else p = end;
    }
    return n > 0;
}

/* Opens the source (and loads the model of apply) before the command frame (cli_command_start) creates
 * --out, so a bad source or model (usage error, exit 2, or engine error, exit 1; printed) creates no
 * folder. The opening has its own context: neither the stream nor the model keeps one. */
static int open_inputs(const char *cmd, const cli_option *opts, const char *model, fl_dae **m, fl_stem4d **src)
{
    fl_ctx *ctx = cli_ctx_new(opts);
    if (!ctx) return CLI_EXIT_FAIL;
    int rc = 0;
    if (model && fl_dae_load(ctx, model, m)) rc = cli_engine_error(ctx);
    if (!rc) rc = cli_stem_open(cmd, opts, ctx, src);
    fl_ctx_free(ctx);
    return rc;
}

static int action_train(int argc, char **argv)
{
    const char *cmd = "diffraction-ae train";
    cli_option opts[] = {
        DAE_SOURCE_OPTS,
        {"bin", CLI_INT, "N", "detector binning 1, 2 or 4 (sum of N x N pixels)", "1", 1, 4, 0, 0, 0, NULL},
        {"width", CLI_INT, "C", "conv channels (paper 128; 16-32 for CPUs)", "32", 1, 4096, 0, 0, 0, NULL},
        {"embedding", CLI_INT, "N", "embedding channels", "32", 1, 4096, 0, 0, 0, NULL},
        {"pools", CLI_STRING, "P,P,..", "max-pooling factors (default: derived so that the bottleneck is 8x8)", NULL, 0, 0, 0, 0, 0, NULL},
        {"epochs", CLI_INT, "N", "training epochs", "10", 1, 1e8, 0, 0, 0, NULL},
        {"batch", CLI_INT, "N", "mini-batch size", "32", 1, 65536, 0, 0, 0, NULL},
        {"lr", CLI_FLOAT, "X", "Adam learning rate (base of the cycle)", "3e-5", 1e-9, 9.99, 0, 0, 0, NULL},
        {"cyclic", CLI_FLAG, NULL, "CyclicLR 'triangular' between --lr and --max-lr, stepped per epoch", NULL, 0, 0, 0, 0, 0, NULL},
        {"max-lr", CLI_FLOAT, "X", "upper learning rate of the cycle", "1e-4", 1e-9, 9.99, 0, 0, 0, NULL},
        {"step-size", CLI_INT, "EPOCHS", "epochs of the rising half of the cycle", "15", 1, 1e8, 0, 0, 0, NULL},
        {"l1", CLI_FLOAT, "X", "L1 activity weight (coef * sum|z| / batch)", "1e-5", 0, 1e6, 0, 0, 0, NULL},
        {"contrastive", CLI_FLOAT, "X", "contrastive-similarity weight", "0", 0, 1e6, 0, 0, 0, NULL},
        {"divergence", CLI_FLOAT, "X", "activation-divergence weight (subtracted)", "0", 0, 1e6, 0, 0, 0, NULL},
        {"schedule-epoch", CLI_INT, "N", "from this epoch (1-based) use the --*-after weights (0: never)", "0", 0, 1e8, 0, 0, 0, NULL},
        {"l1-after", CLI_FLOAT, "X", "L1 weight after the schedule epoch", NULL, 0, 1e6, 0, 0, 0, NULL},
        {"contrastive-after", CLI_FLOAT, "X", "contrastive weight after the schedule epoch", NULL, 0, 1e6, 0, 0, 0, NULL},
        {"divergence-after", CLI_FLOAT, "X", "divergence weight after the schedule epoch", NULL, 0, 1e6, 0, 0, 0, NULL},
        {"stride", CLI_INT, "N", "train on every N-th scan position in x and y", "1", 1, 65536, 0, 0, 0, NULL},
        {"fraction", CLI_FLOAT, "F", "then on this random fraction of them", "1", 1e-9, 1, 0, 0, 0, NULL},
        {"normalise", CLI_FLOAT, "X", "scale every pattern to X mean counts per pixel before log(I + 1) (0: off, as the paper; "
         "-1: automatic, the training set's mean; removes thickness/dose scaling)", "0", -1, 1e9, 0, 0, 0, NULL},
        CLI_OPT_SEED,
        CLI_OPT_END};
    int rc = cli_parse(cmd, opts, argc, argv);
    if (rc == CLI_HELP) {
        cli_print_help(stdout, cmd,
                       "Train the 4D-STEM diffraction autoencoder of Ludacka et al. (2024) on log(I + 1) patterns, then\n"
                       "write the embedding maps and virtual-aperture patterns of every scan position.\n" DAE_SOURCE_HELP
                       "\nThe defaults are the paper's (lr 3e-5, batch 32, 225+ epochs on a GPU). For short CPU runs use many\n"
                       "small steps: --batch 8 --lr 1e-3 --l1 3e-3 --epochs 20..40 --width 8..16 (--bin so that patterns are\n"
                       "16..64 px), and --normalise -1 when a thickness or dose gradient scales the intensities (otherwise it\n"
                       "dominates the error). The stronger L1 (the paper's later-phase values are 5e-4..5e-3) pushes the ReLU\n"
                       "channels into a sparse code where one channel carries one physical factor instead of a rotated mix.\n"
                       "On the 32 x 32 synthetic stem4d set (bin 2, width 8, embedding 8, 20 epochs, ~15-30 s on one core) one\n"
                       "channel then separates +P/-P with balanced accuracy 0.955-0.973 for 7 of 8 seeds (0.922 for the\n"
                       "eighth; alignment is not forced by the loss: train a few seeds and look at all channels).",
                       opts, DAE_OUTPUTS);
        return CLI_EXIT_OK;
    }
    if (rc) return rc;
    const char *out = cli_str(opts, "out");
    if (!out) return cli_usage_error(cmd, "--out DIR is required");
    fl_dae_config c;
    fl_dae_config_default(&c);
    c.bin = (int32_t)cli_int(opts, "bin");
    if (c.bin == 3) return cli_usage_error(cmd, "--bin must be 1, 2 or 4");
    c.width = (int32_t)cli_int(opts, "width");
    c.embedding = (int32_t)cli_int(opts, "embedding");
    if (cli_is_set(opts, "pools") && !parse_pools(cli_str(opts, "pools"), c.pools))
        return cli_usage_error(cmd, "--pools expects up to %d factors 2..8 separated by commas, got '%s'", FL_DAE_MAX_POOLS,
                               cli_str(opts, "pools"));
    c.epochs = (int32_t)cli_int(opts, "epochs");
    c.batch = (int32_t)cli_int(opts, "batch");
    c.lr = (float)cli_float(opts, "lr");
    c.cyclic = cli_flag(opts, "cyclic");
    c.max_lr = (float)cli_float(opts, "max-lr");
    c.step_size_up = (int32_t)cli_int(opts, "step-size");
    c.l1 = (float)cli_float(opts, "l1");
    c.contrastive = (float)cli_float(opts, "contrastive");
    c.divergence = (float)cli_float(opts, "divergence");
    const int64_t se = cli_int(opts, "schedule-epoch");
    c.schedule_epoch = se > 0 ? (int32_t)(se - 1) : 0;
    if (se == 1) return cli_usage_error(cmd, "--schedule-epoch 1 would replace the weights from the start: give the weights directly");
    c.l1_after = cli_is_set(opts, "l1-after") ? (float)cli_float(opts, "l1-after") : c.l1;
    c.contrastive_after = cli_is_set(opts, "contrastive-after") ? (float)cli_float(opts, "contrastive-after") : c.contrastive;
    c.divergence_after = cli_is_set(opts, "divergence-after") ? (float)cli_float(opts, "divergence-after") : c.divergence;
    if (!se && (cli_is_set(opts, "l1-after") || cli_is_set(opts, "contrastive-after") || cli_is_set(opts, "divergence-after")))
        return cli_usage_error(cmd, "--%s needs --schedule-epoch N (the epoch from which it applies)",
                               cli_is_set(opts, "l1-after") ? "l1-after" : cli_is_set(opts, "contrastive-after") ? "contrastive-after" : "divergence-after");
    c.scan_stride = (int32_t)cli_int(opts, "stride");
    c.fraction = (float)cli_float(opts, "fraction");
    c.normalise = (float)cli_float(opts, "normalise");
    if (c.normalise < 0 && c.normalise != -1.f) return cli_usage_error(cmd, "--normalise must be -1 (automatic), 0 (off) or > 0");
    c.seed = (uint64_t)cli_int(opts, "seed");
    fl_stem4d *src = NULL;
    fl_dae *m = NULL;
    if ((rc = open_inputs(cmd, opts, NULL, NULL, &src))) return rc;
    fl_stem4d_info info;
    fl_stem4d_get_info(src, &info);
    if (info.det_w < c.bin || info.det_h < c.bin) {
        rc = cli_usage_error(cmd, "--bin %d is larger than the %lld x %lld detector", c.bin, (long long)info.det_w,
                             (long long)info.det_h);
        fl_stem4d_close(src);
        return rc;
    }
    c.pattern_w = (int32_t)(info.det_w / c.bin);
    c.pattern_h = (int32_t)(info.det_h / c.bin);
    cli_json j;
    fl_ctx *ctx = cli_command_start(cmd, opts, out, &j);
    if (!ctx) {
        fl_stem4d_close(src);
        return CLI_EXIT_FAIL;
    }
    fl_status st = fl_dae_create(ctx, &c, &m);
    fl_dae_report rep;
    memset(&rep, 0, sizeof rep);
    if (!st) st = fl_dae_train(ctx, m, src, &rep);
    if (st == FL_ECANCELLED && m && rep.epochs_run > 0) {
        fprintf(stderr, "ferrolens: training cancelled after %d epochs; writing the best model so far\n", rep.epochs_run);
        fl_ctx_clear_error(ctx);
        st = FL_OK;
    }
    char path[CLI_PATH_MAX];
    if (!st) st = cli_out_path(ctx, path, sizeof path, out, "model.safetensors");
    if (!st) st = fl_dae_save(ctx, m, path);
    if (!st) st = write_loss_csv(ctx, out, m);
    if (!st) st = finish(opts, ctx, src, m, &rep, out, &j);
    fl_dae_free(m);
    fl_stem4d_close(src);
    return cli_command_finish(ctx, st, &j, opts, out);
}

static int action_apply(int argc, char **argv)
{
    const char *cmd = "diffraction-ae apply";
    cli_option opts[] = {DAE_SOURCE_OPTS, CLI_OPT_MODEL, CLI_OPT_END};
    int rc = cli_parse(cmd, opts, argc, argv);
    if (rc == CLI_HELP) {
        cli_print_help(stdout, cmd,
                       "Embedding maps and virtual-aperture patterns of every scan position with a trained diffraction\n"
                       "autoencoder (its detector binning is applied).\n" DAE_SOURCE_HELP,
                       opts, DAE_OUTPUTS);
        return CLI_EXIT_OK;
    }
    if (rc) return rc;
    const char *out = cli_str(opts, "out"), *model = cli_str(opts, "model");
    if (!out) return cli_usage_error(cmd, "--out DIR is required");
    if (!model) return cli_usage_error(cmd, "--model FILE is required");
    fl_stem4d *src = NULL;
    fl_dae *m = NULL;
    if ((rc = open_inputs(cmd, opts, model, &m, &src))) {
        fl_dae_free(m);
        return rc;
    }
    cli_json j;
    fl_ctx *ctx = cli_command_start(cmd, opts, out, &j);
    if (!ctx) {
        fl_dae_free(m);
        fl_stem4d_close(src);
        return CLI_EXIT_FAIL;
    }
    fl_status st = finish(opts, ctx, src, m, NULL, out, &j);
    fl_dae_free(m);
    fl_stem4d_close(src);
    return cli_command_finish(ctx, st, &j, opts, out);
}

int cmd_diffraction_ae(int argc, char **argv)
{
    static const char *names[] = {"train", "apply", NULL};
    if (argc < 1 || !strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) {
        FILE *f = argc < 1 ? stderr : stdout;
        fprintf(f, "Usage: ferrolens diffraction-ae <action> [options]\n\n4D-STEM diffraction autoencoder (Ludacka et al. "
                   "2024).\n\nActions:\n  train      train on a data set, write model, embedding, apertures\n"
                   "  apply      embedding and apertures with a trained model\n\n'ferrolens diffraction-ae <action> --help' "
                   "for the options.\n");
        return argc < 1 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    if (!strcmp(argv[0], "train")) return action_train(argc - 1, argv + 1);
    if (!strcmp(argv[0], "apply")) return action_apply(argc - 1, argv + 1);
    const char *s = cli_best_match(argv[0], names);
    if (s) return cli_usage_error("diffraction-ae", "unknown action '%s' (did you mean '%s'?)", argv[0], s);
    return cli_usage_error("diffraction-ae", "unknown action '%s' (train, apply)", argv[0]);
}
