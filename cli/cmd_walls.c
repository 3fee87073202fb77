/* ferrolens walls <action>: domain-wall masks: skeleton, measurement points, metrics; the
 * segmentation network's actions (train, retrain, apply, live) are in cmd_walls_model.c. */
#include "cli.h"
#include "fl_internal.h"
#include "analysis/skeleton.h"
#include "io/tiff.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- reading masks ------------------------------------------------------------------------------ */

typedef struct mask_stack {
    fl_image img;      /* as read */
    uint8_t *m;        /* planes x w x h, 0/1 */
    int64_t w, h, planes;
    int probability;   /* 1: thresholded from a probability map */
} mask_stack;

static void mask_free(mask_stack *s)
{
    fl_image_free(&s->img);
    fl_free(s->m);
    memset(s, 0, sizeof *s);
}

/* Read a mask (0/1 or 0/255). With allow_prob, any other image with all values in [0, 1] is a
 * probability map, thresholded at `threshold`. Returns 0 or an exit code (message printed). */
static int mask_read(fl_ctx *ctx, const char *opt, const char *path, int allow_prob, double threshold, mask_stack *s)
{
    memset(s, 0, sizeof *s);
    fl_image_init(&s->img);
    if (fl_tiff_read(ctx, path, &s->img) != FL_OK) return cli_engine_error(ctx);
    if (s->img.is_rgb || !s->img.data) {
        cli_error("%s %s is an RGB (colour) image; a wall mask must be a greyscale image (8, 16 or 32 bit)", opt, path);
        return CLI_EXIT_FAIL;
    }
    s->w = s->img.width;
    s->h = s->img.height;
    s->planes = fl_image_planes(&s->img);
    const int64_t n = s->w * s->h * s->planes;
    int is01 = 1, is255 = 1;
    int64_t bad_bin = -1, bad_range = -1; /* first pixel that makes it non-binary / not in [0, 1] */
    for (int64_t i = 0; i < n; i++) {
        float v = s->img.data[i];
        if (v != 0.0f && v != 1.0f) is01 = 0;
        if (v != 0.0f && v != 255.0f) is255 = 0;
        if (!is01 && !is255 && bad_bin < 0) bad_bin = i;
        if (!(v >= 0.0f && v <= 1.0f) && bad_range < 0) bad_range = i;
    }
    s->m = fl_alloc((size_t)n);
    if (!s->m) {
        cli_error("out of memory for a %lld x %lld x %lld mask", (long long)s->w, (long long)s->h, (long long)s->planes);
        return CLI_EXIT_FAIL;
    }
    if (is01 || is255) {
        for (int64_t i = 0; i < n; i++) s->m[i] = s->img.data[i] != 0.0f;
        return 0;
    }
    int64_t np = s->w * s->h;
    if (!allow_prob || bad_range >= 0) {
        int64_t bad = allow_prob ? bad_range : bad_bin;
        cli_error("%s %s is not a binary mask: pixel (%lld, %lld) of slice %lld holds %g; a mask holds only 0 and 1 "
                  "(or 0 and 255)%s",
                  opt, path, (long long)(bad % s->w), (long long)((bad % np) / s->w), (long long)(bad / np + 1),
                  (double)s->img.data[bad], allow_prob ? ", a probability map only values in [0, 1]" : "");
        return CLI_EXIT_FAIL;
    }
    s->probability = 1;
    for (int64_t p = 0; p < s->planes; p++)
        if (fl_walls_threshold(ctx, s->img.data + p * np, s->w, s->h, (float)threshold, s->m + p * np) != FL_OK)
            return cli_engine_error(ctx);
    return 0;
}

/* A 0/1 float image with the geometry and calibration of `like`. */
static fl_status image_like(fl_ctx *ctx, const fl_image *like, fl_image *out)
{
    fl_image_init(out);
    fl_status st = fl_image_alloc(ctx, out, like->width, like->height, like->channels, like->slices, like->frames);
    if (st) return st;
    fl_image_copy_calibration(out, like);
    return FL_OK;
}

static fl_status write_u8(fl_ctx *ctx, const char *dir, const char *name, const fl_image *like, const uint8_t *m)
{
    fl_image out;
    fl_status st = image_like(ctx, like, &out);
    if (st) return st;
    int64_t n = like->width * like->height * fl_image_planes(like);
    for (int64_t i = 0; i < n; i++) out.data[i] = m[i] ? 1.0f : 0.0f;
    st = cli_write_tiff(ctx, dir, name, &out);
    fl_image_free(&out);
    return st;
}

static int64_t count_set(const uint8_t *m, int64_t n)
{
    int64_t c = 0;
    for (int64_t i = 0; i < n; i++) c += m[i] != 0;
    return c;
}

/* ---- skeleton ------------------------------------------------------------------------------------ */

#define SK_CMD "walls skeleton"

static int act_skeleton(int argc, char **argv)
{
    cli_option opts[] = {
        CLI_OPT_INPUT,
        CLI_OPT_OUT,
        {"threshold", CLI_FLOAT, "P", "probability threshold for a probability map (mask = p >= P)", "0.5", 0, 1, 0, 0, 0, NULL},
        CLI_OPT_THREADS,
        CLI_OPT_MEMORY,
        CLI_OPT_JSON,
        CLI_OPT_END};
    int rc = cli_parse(SK_CMD, opts, argc, argv);
    if (rc == CLI_HELP) {
        cli_print_help(stdout, SK_CMD,
                       "Threshold a wall probability map (or take a 0/1 or 0/255 mask as it is) and thin every slice to a\n"
                       "one-pixel-wide skeleton (the algorithm of skimage.morphology.skeletonize, bit for bit).",
                       opts,
                       "Outputs in --out:\n  mask.tif       the binary mask (0/1), same dimensions as the input\n"
                       "  skeleton.tif   its skeleton (0/1)\n  summary.json   counts (also printed on stdout with --json)");
        return CLI_EXIT_OK;
    }
    if (rc != 0) return rc;
    const char *in = cli_str(opts, "input"), *out = cli_str(opts, "out");
    if (!in) return cli_usage_error(SK_CMD, "--input FILE is required");
    if (!out) return cli_usage_error(SK_CMD, "--out DIR is required");
    fl_ctx *ctx = cli_ctx_new(opts);
    if (!ctx) return CLI_EXIT_FAIL;
    mask_stack s;
    double thr = cli_float(opts, "threshold");
    rc = mask_read(ctx, "--input", in, 1, thr, &s);
    if (rc) goto done;
    const int64_t np = s.w * s.h, n = np * s.planes;
    uint8_t *sk = fl_alloc((size_t)n);
    if (!sk) {
        rc = cli_error("out of memory for the skeleton");
        goto done;
    }
    fl_status st = FL_OK;
    for (int64_t p = 0; p < s.planes && !st; p++) st = fl_walls_skeletonize(ctx, s.m + p * np, s.w, s.h, sk + p * np);
    if (!st && cli_mkdirs(out) != 0) {
        fl_free(sk);
        rc = CLI_EXIT_FAIL;
        goto done;
    }
    if (!st) st = write_u8(ctx, out, "mask.tif", &s.img, s.m);
    if (!st) st = write_u8(ctx, out, "skeleton.tif", &s.img, sk);
    if (st) {
        fl_free(sk);
        rc = cli_engine_error(ctx);
        goto done;
    }
    int64_t nm = count_set(s.m, n), ns = count_set(sk, n);
    fl_free(sk);
    cli_json j;
    cli_json_begin(&j);
    cli_json_str(&j, "command", SK_CMD);
    cli_json_str(&j, "input", in);
    cli_json_str(&j, "input_kind", s.probability ? "probability" : "mask");
    if (s.probability) cli_json_num(&j, "threshold", thr);
    cli_json_int(&j, "width", s.w);
    cli_json_int(&j, "height", s.h);
    cli_json_int(&j, "slices", s.planes);
    cli_json_int(&j, "mask_pixels", nm);
    cli_json_int(&j, "skeleton_pixels", ns);
    cli_json_raw(&j, "files", "{\"mask\":\"mask.tif\",\"skeleton\":\"skeleton.tif\",\"summary\":\"summary.json\"}");
    rc = cli_summary_write(&j, opts, out);
    cli_json_free(&j);
    if (!rc && !cli_flag(opts, "json"))
        fprintf(stderr, "ferrolens: %lld mask pixels, %lld skeleton pixels in %lld slice(s); wrote %s/mask.tif and %s/skeleton.tif\n",
                (long long)nm, (long long)ns, (long long)s.planes, out, out);
done:
    mask_free(&s);
    fl_ctx_free(ctx);
    return rc;
}

/* ---- points -------------------------------------------------------------------------------------- */

#define PT_CMD "walls points"

static int act_points(int argc, char **argv)
{
    cli_option opts[] = {
        CLI_OPT_INPUT,
        CLI_OPT_OUT,
        {"every", CLI_INT, "K", "a point every K-th skeleton pixel along each path", NULL, 1, 1e9, 0, 0, 0, NULL},
        {"fraction", CLI_FLOAT, "F", "or: a fraction F of each path's pixels, evenly spread", NULL, 1e-9, 1, 0, 0, 0, NULL},
        CLI_OPT_THREADS,
        CLI_OPT_MEMORY,
        CLI_OPT_JSON,
        CLI_OPT_END};
    int rc = cli_parse(PT_CMD, opts, argc, argv);
    if (rc == CLI_HELP) {
        cli_print_help(stdout, PT_CMD,
                       "Measurement points along domain walls: the mask (0/1 or 0/255; every slice) is thinned (a one-pixel-\n"
                       "wide skeleton stays as it is), traced into ordered paths (junctions split paths, closed loops are\n"
                       "paths too) and a point is placed every K-th pixel (--every) or on a fraction of the pixels (--fraction).",
                       opts,
                       "Outputs in --out:\n"
                       "  points.csv     x,y,path,arc,slice: pixel (0-based), path id (unique in the file), arc length from\n"
                       "                 the path's start in pixels, slice (1-based)\n"
                       "  points.tif     marker image: path id + 1 at every point, 0 elsewhere\n"
                       "  summary.json   counts (also printed on stdout with --json)");
        return CLI_EXIT_OK;
    }
    if (rc != 0) return rc;
    const char *in = cli_str(opts, "input"), *out = cli_str(opts, "out");
    if (!in) return cli_usage_error(PT_CMD, "--input FILE is required");
    if (!out) return cli_usage_error(PT_CMD, "--out DIR is required");
    int has_every = cli_is_set(opts, "every"), has_frac = cli_is_set(opts, "fraction");
    if (has_every == has_frac) return cli_usage_error(PT_CMD, "give exactly one of --every K and --fraction F");
    int32_t every = has_every ? (int32_t)cli_int(opts, "every") : 0;
    double frac = has_frac ? cli_float(opts, "fraction") : 0.0;

    fl_ctx *ctx = cli_ctx_new(opts);
    if (!ctx) return CLI_EXIT_FAIL;
    mask_stack s;
    FILE *f = NULL;
    fl_image marks;
    fl_image_init(&marks);
    uint8_t *sk = NULL;
    rc = mask_read(ctx, "--input", in, 0, 0.5, &s);
    if (rc) goto done;
    const int64_t np = s.w * s.h, n = np * s.planes;
    if (count_set(s.m, n) == 0) {
        rc = cli_error("%s: the mask is empty: there are no wall pixels to place points on", in);
        goto done;
    }
    sk = fl_alloc((size_t)n);
    if (!sk) {
        rc = cli_error("out of memory for the skeleton");
        goto done;
    }
    if (image_like(ctx, &s.img, &marks) != FL_OK) {
        rc = cli_engine_error(ctx);
        goto done;
    }
    char cp[CLI_PATH_MAX], tp[CLI_PATH_MAX];
    if (cli_path_join(cp, sizeof cp, out, "points.csv") || cli_path_join(tp, sizeof tp, out, "points.tif") ||
        cli_mkdirs(out) != 0) {
        rc = CLI_EXIT_FAIL;
        goto done;
    }
    f = fopen(cp, "w");
    if (!f) {
        rc = cli_error("cannot write %s", cp);
        goto done;
    }
    fprintf(f, "x,y,path,arc,slice\n");
    int64_t total = 0, paths = 0, loops = 0, junctions = 0, skel_pixels = 0;
    for (int64_t p = 0; p < s.planes; p++) {
        uint8_t *k = sk + p * np;
        if (fl_walls_skeletonize(ctx, s.m + p * np, s.w, s.h, k) != FL_OK) {
            rc = cli_engine_error(ctx);
            goto done;
        }
        if (count_set(k, np) == 0) continue;
        fl_wall_point *pts = NULL;
        int64_t cnt = 0;
        fl_wall_paths_info info;
        if (fl_walls_points(ctx, k, s.w, s.h, every, frac, &pts, &cnt, &info) != FL_OK) {
            rc = cli_engine_error(ctx);
            goto done;
        }
        for (int64_t i = 0; i < cnt; i++) {
            int64_t id = paths + pts[i].path;
            fprintf(f, "%d,%d,%lld,%.4f,%lld\n", pts[i].x, pts[i].y, (long long)id, pts[i].arc, (long long)(p + 1));
            marks.data[p * np + pts[i].x + s.w * pts[i].y] = (float)(id + 1);
        }
        total += cnt;
        paths += info.paths;
        loops += info.loops;
        junctions += info.junction_pixels;
        skel_pixels += info.path_pixels + info.junction_pixels;
        fl_walls_points_free(pts);
    }
    if (fclose(f) != 0) {
        f = NULL;
        rc = cli_error("cannot write %s", cp);
        goto done;
    }
    f = NULL;
    if (fl_tiff_write(ctx, tp, &marks) != FL_OK) {
        rc = cli_engine_error(ctx);
        goto done;
    }
    cli_json j;
    cli_json_begin(&j);
    cli_json_str(&j, "command", PT_CMD);
    cli_json_str(&j, "input", in);
    if (has_every) cli_json_int(&j, "every", every);
    else cli_json_num(&j, "fraction", frac);
    cli_json_int(&j, "slices", s.planes);
    cli_json_int(&j, "skeleton_pixels", skel_pixels);
    cli_json_int(&j, "junction_pixels", junctions);
    cli_json_int(&j, "paths", paths);
    cli_json_int(&j, "loops", loops);
    cli_json_int(&j, "points", total);
    cli_json_raw(&j, "files", "{\"points\":\"points.csv\",\"markers\":\"points.tif\",\"summary\":\"summary.json\"}");
    rc = cli_summary_write(&j, opts, out);
    cli_json_free(&j);
    if (!rc && !cli_flag(opts, "json"))
        fprintf(stderr, "ferrolens: %lld points on %lld paths (%lld closed); wrote %s\n", (long long)total,
                (long long)paths, (long long)loops, cp);
done:
    if (f) fclose(f);
    fl_free(sk);
    fl_image_free(&marks);
    mask_free(&s);
    fl_ctx_free(ctx);
    return rc;
}

/* ---- metrics ------------------------------------------------------------------------------------- */

#define MT_CMD "walls metrics"

static void metrics_json(fl_strbuf *b, const fl_walls_metrics *m)
{
    fl_strbuf_printf_c(b, "\"precision\":%.6f,\"recall\":%.6f,\"f1\":%.6f,\"iou\":%.6f,\"pred_pixels\":%lld,"
                          "\"truth_pixels\":%lld,\"pred_correct\":%lld,\"truth_found\":%lld",
                       m->precision, m->recall, m->f1, m->iou, (long long)m->pred_pixels, (long long)m->truth_pixels,
                       (long long)m->pred_correct, (long long)m->truth_found);
}

static int act_metrics(int argc, char **argv)
{
    cli_option opts[] = {
        CLI_OPT_INPUT,
        {"truth", CLI_STRING, "FILE", "truth mask (0/1 or 0/255)", NULL, 0, 0, 0, 0, 0, NULL},
        {"tolerance", CLI_FLOAT, "PX", "a wall pixel counts as found within this distance", "2", 0, 1e6, 0, 0, 0, NULL},
        {"threshold", CLI_FLOAT, "P", "threshold a probability-map prediction (mask = p >= P); without it --input must be a mask", NULL, 0, 1, 0, 0, 0, NULL},
        {"out", CLI_STRING, "DIR", "also write metrics.json there", NULL, 0, 0, 0, 0, 0, NULL},
        CLI_OPT_THREADS,
        CLI_OPT_MEMORY,
        CLI_OPT_JSON,
        CLI_OPT_END};
    int rc = cli_parse(MT_CMD, opts, argc, argv);
    if (rc == CLI_HELP) {
        cli_print_help(stdout, MT_CMD,
                       "Precision, recall, F1 and IoU of a predicted wall mask against a truth mask. A predicted pixel is\n"
                       "correct when a truth pixel lies within --tolerance (Euclidean distance transform); recall likewise\n"
                       "the other way round; IoU is pixel-exact. Stacks are compared slice by slice and pooled.",
                       opts,
                       "Output: one JSON object on stdout: pooled precision, recall, f1, iou, pixel counts, and\n"
                       "per_slice (the same per slice); with --out also DIR/metrics.json.");
        return CLI_EXIT_OK;
    }
    if (rc != 0) return rc;
    const char *in = cli_str(opts, "input"), *tr = cli_str(opts, "truth"), *out = cli_str(opts, "out");
    if (!in) return cli_usage_error(MT_CMD, "--input PRED.tif is required");
    if (!tr) return cli_usage_error(MT_CMD, "--truth TRUTH.tif is required");
    double tol = cli_float(opts, "tolerance");
    int thr_set = cli_is_set(opts, "threshold");
    fl_ctx *ctx = cli_ctx_new(opts);
    if (!ctx) return CLI_EXIT_FAIL;
    mask_stack a, b;
    memset(&b, 0, sizeof b);
    fl_image_init(&b.img);
    rc = mask_read(ctx, "--input", in, thr_set, thr_set ? cli_float(opts, "threshold") : 0.5, &a);
    if (!rc) rc = mask_read(ctx, "--truth", tr, 0, 0.5, &b);
    if (rc) goto done;
    if (a.w != b.w || a.h != b.h || a.planes != b.planes) {
        rc = cli_error("size mismatch: the prediction %s is %lld x %lld with %lld slice(s), the truth %s is %lld x %lld "
                       "with %lld slice(s)",
                       in, (long long)a.w, (long long)a.h, (long long)a.planes, tr, (long long)b.w, (long long)b.h,
                       (long long)b.planes);
        goto done;
    }
    const int64_t np = a.w * a.h;
    fl_walls_metrics pooled;
    memset(&pooled, 0, sizeof pooled);
    fl_strbuf per;
    fl_strbuf_init(&per);
    fl_strbuf_append(&per, "[", 1);
    for (int64_t p = 0; p < a.planes; p++) {
        fl_walls_metrics m;
        if (fl_walls_metrics_compute(ctx, a.m + p * np, b.m + p * np, a.w, a.h, tol, &m) != FL_OK) {
            fl_strbuf_free(&per);
            rc = cli_engine_error(ctx);
            goto done;
        }
        fl_walls_metrics_add(&pooled, &m);
        fl_strbuf_append(&per, p ? ",{" : "{", p ? 2 : 1);
        metrics_json(&per, &m);
        fl_strbuf_append(&per, "}", 1);
    }
    fl_strbuf_append(&per, "]", 1);
    fl_walls_metrics_finish(&pooled);
    fl_strbuf all;
    fl_strbuf_init(&all);
    fl_strbuf_append(&all, "{\"command\":\"walls metrics\",\"input\":", 35);
    fl_strbuf_json_string(&all, in);
    fl_strbuf_append(&all, ",\"truth\":", 9);
    fl_strbuf_json_string(&all, tr);
    fl_strbuf_printf_c(&all, ",\"tolerance\":%.6g,\"slices\":%lld,", tol, (long long)a.planes);
    metrics_json(&all, &pooled);
    fl_strbuf_append(&all, ",\"per_slice\":", 13);
    fl_strbuf_append(&all, per.data, per.len);
    fl_strbuf_append(&all, "}\n", 2);
    fl_strbuf_free(&per);
    if (all.failed) {
        fl_strbuf_free(&all);
        rc = cli_error("out of memory for the metrics");
        goto done;
    }
    if (out) {
        char mp[CLI_PATH_MAX];
        FILE *f = NULL;
        if (cli_path_join(mp, sizeof mp, out, "metrics.json") || cli_mkdirs(out) != 0) rc = CLI_EXIT_FAIL;
        else if (!(f = fopen(mp, "w")) || fwrite(all.data, 1, all.len, f) != all.len) rc = cli_error("cannot write %s", mp);
        if (f && fclose(f) != 0 && !rc) rc = cli_error("cannot write %s", mp);
    }
    if (!rc) fwrite(all.data, 1, all.len, stdout);
    fl_strbuf_free(&all);
done:
    mask_free(&a);
    mask_free(&b);
    fl_ctx_free(ctx);
    return rc;
}

/* ---- dispatch ------------------------------------------------------------------------------------- */

typedef struct walls_action {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} walls_action;

int cmd_walls(int argc, char **argv)
{
    const walls_action actions[] = {
        {"train", cmd_walls_train, "train the wall-segmentation ensemble on images + masks"},
        {"retrain", cmd_walls_retrain, "retrain an ensemble with new labels"},
        {"apply", cmd_walls_apply, "segment images with a trained ensemble"},
        {"live", cmd_walls_live, "segment images as they arrive"},
        {"skeleton", act_skeleton, "threshold a probability map and thin it to a one-pixel skeleton"},
        {"points", act_points, "measurement points along the walls (every K-th pixel or a fraction)"},
        {"metrics", act_metrics, "precision / recall / F1 with a pixel tolerance, and IoU, against a truth mask"},
    };
    const size_t na = sizeof actions / sizeof actions[0];
    if (argc < 1 || !strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) {
        FILE *f = argc < 1 ? stderr : stdout;
        fprintf(f, "Usage: ferrolens walls <action> [options]\n\nDomain walls in PFM images: segmentation and its post-processing.\n\nActions:\n");
        for (size_t i = 0; i < na; i++)
            fprintf(f, "  %-10s %s\n", actions[i].name, actions[i].summary);
        fprintf(f, "\n'ferrolens walls <action> --help' for the options of an action.\n");
        return argc < 1 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    for (size_t i = 0; i < na; i++) {
        if (!strcmp(argv[0], actions[i].name)) return actions[i].fn(argc - 1, argv + 1);
    }
    const char *names[sizeof actions / sizeof actions[0] + 1];
    for (size_t i = 0; i < na; i++) names[i] = actions[i].name;
    names[na] = NULL;
    const char *m = cli_best_match(argv[0], names);
    if (m) return cli_usage_error("walls", "unknown action '%s'; did you mean '%s'?", argv[0], m);
    return cli_usage_error("walls", "unknown action '%s'", argv[0]);
}
