/* ferrolens synth pfm-walls: PFM amplitude images of domain walls with one-pixel-wide wall masks. */
#include "cli.h"
#include "io/tiff.h"
#include "synth/pfm_walls.h"

#include <string.h>

#define PW_CMD "synth pfm-walls"

static const char pw_description[] =
    "Synthetic band-excitation PFM amplitude images (toy model, issue 5): 180-degree walls between up/down\n"
    "c domains (open meandering walls and closed bubbles; a dark line where the amplitude dips to ~0 over\n"
    "1-2 px) and a/c ferroelastic stripes (tilted, meandering; a step between two amplitude levels), under\n"
    "AFM acquisition conditions (contrast, Gaussian noise, scan-line offsets and streaks, blur, background\n"
    "tilt), with the truth: a one-pixel-wide 8-connected mask of every wall. The out-of-distribution set\n"
    "cycles through grains without walls, a fine checkerboard of domains, inverted contrast and large noise.\n"
    "The model is documented in native/src/synth/pfm_walls.h and sample-stacks/README.md.\n"
    "--condition set (default) writes the train, test and OOD stacks; in|ood|clean write one stack.";

static const char pw_outputs[] =
    "Outputs in --out (32-bit stacks, one image per slice, slice labels name the kind of image):\n"
    "  --condition set:  pfm_walls_train.tif + pfm_walls_train_mask.tif   (--count images, in-distribution)\n"
    "                    pfm_walls_test.tif  + pfm_walls_test_mask.tif    (--test-count, in-distribution)\n"
    "                    pfm_walls_ood.tif   + pfm_walls_ood_mask.tif     (--ood-count, out-of-distribution)\n"
    "  otherwise:        pfm_walls.tif + pfm_walls_mask.tif               (--count images)\n"
    "  pfm_walls_summary.json   the parameters and file names (also printed on stdout with --json)\n"
    "Masks are 0/1. The stack of --condition in (ood) equals the train (OOD) stack of the same seed.";

static int pick(const char *opt, const char *value, const char *const *names)
{
    for (int i = 0; names[i]; i++)
        if (!strcmp(value, names[i])) return i;
    const char *near = cli_best_match(value, names);
    cli_usage_error(PW_CMD, "--%s: unknown value '%s'%s%s%s", opt, value, near ? "; did you mean '" : "",
                    near ? near : "", near ? "'?" : "");
    return -1;
}

typedef struct pw_file {
    const char *image, *mask;
    fl_synth_pfm_params p;
    int64_t wall_pixels;
} pw_file;

int cmd_synth_pfm_walls(int argc, char **argv)
{
    cli_option opts[] = {
        CLI_OPT_OUT,
        {"size", CLI_INT, "N", "image width and height in pixels", "128", 32, 4096, 0, 0, 0, NULL},
        {"count", CLI_INT, "N", "images (training set with --condition set)", "8", 1, 100000, 0, 0, 0, NULL},
        {"test-count", CLI_INT, "N", "test images (--condition set)", "4", 1, 100000, 0, 0, 0, NULL},
        {"ood-count", CLI_INT, "N", "out-of-distribution images (--condition set)", "4", 1, 100000, 0, 0, 0, NULL},
        {"condition", CLI_STRING, "set|in|ood|clean", "what to write (see above)", "set", 0, 0, 0, 0, 0, NULL},
        {"kind", CLI_STRING, "mixed|180|ac", "wall kind of in-distribution images (mixed: alternate)", "mixed", 0, 0, 0, 0, 0, NULL},
        {"contrast", CLI_FLOAT, "A0", "domain amplitude (-1: U(0.8, 1.2) per image)", "-1", -1, 1e6, 0, 0, 0, NULL},
        {"noise", CLI_FLOAT, "F", "Gaussian noise sigma, units of A0 (-1: U(0.02, 0.08))", "-1", -1, 100, 0, 0, 0, NULL},
        {"blur", CLI_FLOAT, "PX", "Gaussian blur sigma (-1: U(0.4, 1.0))", "-1", -1, 20, 0, 0, 0, NULL},
        {"tilt", CLI_FLOAT, "F", "background plane rise across the image, units of A0 (-1: U(0, 0.3))", "-1", -1, 100, 0, 0, 0, NULL},
        {"lines", CLI_FLOAT, "F", "scan-line offset sigma, units of A0 (-1: U(0, 0.06))", "-1", -1, 100, 0, 0, 0, NULL},
        CLI_OPT_SEED,
        CLI_OPT_THREADS,
        CLI_OPT_MEMORY,
        CLI_OPT_JSON,
        CLI_OPT_END};
    int rc = cli_parse(PW_CMD, opts, argc, argv);
    if (rc == CLI_HELP) {
        cli_print_help(stdout, PW_CMD, pw_description, opts, pw_outputs);
        return CLI_EXIT_OK;
    }
    if (rc != 0) return rc;
    const char *out = cli_str(opts, "out");
    if (!out) return cli_usage_error(PW_CMD, "--out DIR is required");
    static const char *const conds[] = {"set", "in", "ood", "clean", NULL};
    static const char *const kinds[] = {"mixed", "180", "ac", NULL};
    int cond = pick("condition", cli_str(opts, "condition"), conds);
    if (cond < 0) return CLI_EXIT_USAGE;
    int kind = pick("kind", cli_str(opts, "kind"), kinds);
    if (kind < 0) return CLI_EXIT_USAGE;

    fl_synth_pfm_params base;
    fl_synth_pfm_params_default(&base);
    base.size = cli_int(opts, "size");
    base.kind = kind;
    base.seed = (uint64_t)cli_int(opts, "seed");
    base.contrast = cli_float(opts, "contrast");
    base.noise = cli_float(opts, "noise");
    base.blur = cli_float(opts, "blur");
    base.tilt = cli_float(opts, "tilt");
    base.lines = cli_float(opts, "lines");
    int json = cli_flag(opts, "json");

    pw_file files[3];
    int nfiles = 0;
    if (cond == 0) {
        const char *img[3] = {"pfm_walls_train.tif", "pfm_walls_test.tif", "pfm_walls_ood.tif"};
        const char *msk[3] = {"pfm_walls_train_mask.tif", "pfm_walls_test_mask.tif", "pfm_walls_ood_mask.tif"};
        const char *cnt[3] = {"count", "test-count", "ood-count"};
        for (int k = 0; k < 3; k++) {
            files[k].image = img[k];
            files[k].mask = msk[k];
            files[k].p = base;
            files[k].p.set = (uint64_t)k;
            files[k].p.count = (int32_t)cli_int(opts, cnt[k]);
            files[k].p.condition = k == 2 ? FL_PFM_OOD : FL_PFM_IN;
        }
        nfiles = 3;
    } else {
        files[0].image = "pfm_walls.tif";
        files[0].mask = "pfm_walls_mask.tif";
        files[0].p = base;
        files[0].p.count = (int32_t)cli_int(opts, "count");
        files[0].p.condition = cond == 1 ? FL_PFM_IN : cond == 2 ? FL_PFM_OOD : FL_PFM_CLEAN;
        files[0].p.set = cond == 2 ? 2 : 0;
        nfiles = 1;
    }
    char summary_path[CLI_PATH_MAX];
    if (cli_path_join(summary_path, sizeof summary_path, out, "pfm_walls_summary.json")) return CLI_EXIT_FAIL;
    if (cli_mkdirs(out) != 0) return CLI_EXIT_FAIL;
    fl_ctx *ctx = cli_ctx_new(opts);
    if (!ctx) return CLI_EXIT_FAIL;
    fl_status st = FL_OK;
    for (int k = 0; k < nfiles && st == FL_OK; k++) {
        char ip[CLI_PATH_MAX], mp[CLI_PATH_MAX];
        if (cli_path_join(ip, sizeof ip, out, files[k].image) || cli_path_join(mp, sizeof mp, out, files[k].mask)) {
            fl_ctx_free(ctx);
            return CLI_EXIT_FAIL;
        }
        fl_image img, msk;
        st = fl_synth_pfm_walls_stack(ctx, &files[k].p, &img, &msk);
        if (st == FL_OK) st = fl_tiff_write(ctx, ip, &img);
        if (st == FL_OK) st = fl_tiff_write(ctx, mp, &msk);
        files[k].wall_pixels = 0;
        if (st == FL_OK) {
            int64_t n = fl_image_planes(&msk) * msk.width * msk.height;
            for (int64_t i = 0; i < n; i++) files[k].wall_pixels += msk.data[i] != 0.0f;
        }
        fl_image_free(&img);
        fl_image_free(&msk);
    }
    if (st != FL_OK) {
        rc = cli_engine_error(ctx);
        fl_ctx_free(ctx);
        return rc;
    }
    cli_json j;
    cli_json_begin(&j);
    cli_json_str(&j, "command", PW_CMD);
    cli_json_str(&j, "version", FL_VERSION_STRING);
    cli_json_str(&j, "out", out);
    cli_json_str(&j, "condition", conds[cond]);
    cli_json_str(&j, "kind", kinds[kind]);
    cli_json_int(&j, "size", base.size);
    cli_json_int(&j, "seed", (int64_t)base.seed);
    cli_json_num(&j, "contrast", base.contrast);
    cli_json_num(&j, "noise", base.noise);
    cli_json_num(&j, "blur", base.blur);
    cli_json_num(&j, "tilt", base.tilt);
    cli_json_num(&j, "lines", base.lines);
    fl_strbuf b;
    fl_strbuf_init(&b);
    fl_strbuf_append(&b, "[", 1);
    for (int k = 0; k < nfiles; k++) {
        char line[512];
        int len = snprintf(line, sizeof line, "%s{\"image\":\"%s\",\"mask\":\"%s\",\"set\":%d,\"count\":%d,\"wall_pixels\":%lld,\"labels\":[",
                           k ? "," : "", files[k].image, files[k].mask, (int)files[k].p.set, (int)files[k].p.count,
                           (long long)files[k].wall_pixels);
        fl_strbuf_append(&b, line, (size_t)len);
        for (int32_t i = 0; i < files[k].p.count && i < 8; i++) {
            if (i) fl_strbuf_append(&b, ",", 1);
            fl_strbuf_json_string(&b, fl_synth_pfm_label(&files[k].p, i));
        }
        fl_strbuf_append(&b, "]}", 2);
    }
    fl_strbuf_append(&b, "]", 1);
    cli_json_raw(&j, "files", b.data);
    fl_strbuf_free(&b);
    cli_json_end(&j);
    rc = cli_json_emit(&j, json, summary_path);
    cli_json_free(&j);
    if (rc == 0 && !json)
        for (int k = 0; k < nfiles; k++)
            fprintf(stderr, "ferrolens: wrote %s/%s and %s (%d images of %lld x %lld, %lld wall pixels)\n", out,
                    files[k].image, files[k].mask, (int)files[k].p.count, (long long)base.size, (long long)base.size,
                    (long long)files[k].wall_pixels);
    fl_ctx_free(ctx);
    return rc;
}
