/* ferrolens stem com|vdf|compare: 4D-STEM reciprocal-space tools on a TIFF hyperstack or a raw file,
 * streamed pattern by pattern (files larger than memory work; --memory bounds the batch buffers). */
#include "cli.h"
#include "cli_stem.h"
#include "fl_internal.h"
#include "ferrolens/stem.h"
#include "io/tiff.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define STEM_SOURCE_HELP                                                                                      \
    CLI_STEM_FILE_HELP                                                                                        \
    "--bin 2|4 sums bin x bin detector pixels (remainder rows/columns dropped); detector coordinates are\n"   \
    "always in original detector pixels."

#define STEM_SOURCE_OPTS                                                                                                 \
    CLI_STEM_FILE_OPTS,                                                                                                  \
    {"bin", CLI_INT, "N", "detector binning 1, 2 or 4 (sum of N x N pixels)", "1", 1, 4, 0, 0, 0, NULL},                 \
    CLI_OPT_OUT, CLI_OPT_THREADS, CLI_OPT_MEMORY, CLI_OPT_JSON

/* "1,2.5,3" -> n numbers */
static int parse_nums(const char *s, double *v, int n)
{
    const char *p = s;
    for (int i = 0; i < n; i++) {
        char *end;
        errno = 0;
        v[i] = strtod(p, &end);
        if (errno || end == p || !isfinite(v[i])) return 0;
        if (i < n - 1) {
            if (*end != ',') return 0;
            p = end + 1;
        } else if (*end) {
            return 0;
        }
    }
    return 1;
}

static fl_status write_planes(fl_ctx *ctx, const char *dir, const char *name, int64_t w, int64_t h, int n,
                              const float *const *planes, const char *const *labels)
{
    fl_image im;
    fl_image_init(&im);
    fl_status st = fl_image_alloc(ctx, &im, w, h, 1, n, 1);
    for (int i = 0; i < n && !st; i++) {
        memcpy(im.data + (size_t)i * w * h, planes[i], (size_t)w * h * sizeof(float));
        if (labels && labels[i]) st = fl_image_set_label(ctx, &im, i, labels[i]);
    }
    if (!st) st = cli_write_tiff(ctx, dir, name, &im);
    fl_image_free(&im);
    return st;
}

static void json_source(cli_json *j, const cli_option *opts, fl_stem4d *src, int32_t bin)
{
    fl_stem4d_info info;
    fl_stem4d_get_info(src, &info);
    cli_json_str(j, "version", FL_VERSION_STRING);
    cli_json_str(j, "input", cli_str(opts, "input") ? cli_str(opts, "input") : cli_str(opts, "raw"));
    cli_json_str(j, "dtype", fl_stem_dtype_name(info.dtype));
    cli_json_int(j, "detector_w", info.det_w);
    cli_json_int(j, "detector_h", info.det_h);
    cli_json_int(j, "scan_x", info.scan_x);
    cli_json_int(j, "scan_y", info.scan_y);
    cli_json_int(j, "bin", bin);
    cli_json_str(j, "out", cli_str(opts, "out"));
}

/* Opens the source, then starts the command frame (cli_command_start creates --out): a bad source (usage
 * error, exit 2, or an unreadable file, exit 1; printed) creates no folder. The opening has its own
 * context: the stream keeps none. Returns 0 with *src and *ctx set, or the exit code. */
static int open_source_and_start(const char *cmd, const cli_option *opts, const char *out, cli_json *j,
                                 fl_stem4d **src, fl_ctx **ctx)
{
    fl_ctx *open_ctx = cli_ctx_new(opts);
    if (!open_ctx) return CLI_EXIT_FAIL;
    int rc = cli_stem_open(cmd, opts, open_ctx, src);
    fl_ctx_free(open_ctx);
    if (rc) return rc;
    if (!(*ctx = cli_command_start(cmd, opts, out, j))) {
        fl_stem4d_close(*src);
        return CLI_EXIT_FAIL;
    }
    return 0;
}

/* ---- com ------------------------------------------------------------------------------------------ */
static int action_com(int argc, char **argv)
{
    const char *cmd = "stem com";
    cli_option opts[] = {
        STEM_SOURCE_OPTS,
        {"threshold", CLI_FLOAT, "I", "subtract this intensity and clip at 0 before the COM", "0", 0, 1e30, 0, 0, 0, NULL},
        {"mask", CLI_STRING, "CX,CY,R", "only detector pixels within R of (CX, CY)", NULL, 0, 0, 0, 0, 0, NULL},
        {"degrees", CLI_FLAG, NULL, "direction in degrees (default radians)", NULL, 0, 0, 0, 0, 0, NULL},
        {"hist-bins", CLI_INT, "N", "bins per axis of the COM histogram", "128", 2, 4096, 0, 0, 0, NULL},
        {"hist-range", CLI_FLOAT, "PX", "histogram covers [-PX, PX] on both axes (0: largest |shift|)", "0", 0, 1e9, 0, 0, 0, NULL},
        CLI_OPT_END};
    int rc = cli_parse(cmd, opts, argc, argv);
    if (rc == CLI_HELP) {
        cli_print_help(stdout, cmd,
                       "Centre of mass of every pattern (shift from the COM of the mean pattern), its magnitude and\n"
                       "direction (atan2(com y, com x), ky pointing down), a 2-D histogram of the shifts and the mean\n"
                       "pattern.\n" STEM_SOURCE_HELP,
                       opts,
                       "Outputs in --out:\n  com.tif            scan-sized, slices \"com x\", \"com y\", \"magnitude\", \"direction\"\n"
                       "                     (detector pixels; radians or degrees)\n"
                       "  com_histogram.tif  hist-bins^2 counts of (com x, com y) over [-range, range]^2 (row 0 = -range)\n"
                       "  mean_pattern.tif   the mean (binned) pattern\n  summary.json");
        return CLI_EXIT_OK;
    }
    if (rc) return rc;
    const char *out = cli_str(opts, "out");
    if (!out) return cli_usage_error(cmd, "--out DIR is required");
    fl_stem_com_params p;
    fl_stem_com_params_default(&p);
    p.bin = (int32_t)cli_int(opts, "bin");
    if (p.bin == 3) return cli_usage_error(cmd, "--bin must be 1, 2 or 4");
    p.threshold = cli_float(opts, "threshold");
    p.degrees = cli_flag(opts, "degrees");
    p.hist_bins = (int32_t)cli_int(opts, "hist-bins");
    p.hist_range = cli_float(opts, "hist-range");
    if (cli_is_set(opts, "mask")) {
        double v[3];
        if (!parse_nums(cli_str(opts, "mask"), v, 3) || v[2] <= 0)
            return cli_usage_error(cmd, "--mask expects CX,CY,R with R > 0, got '%s'", cli_str(opts, "mask"));
        p.mask_cx = v[0];
        p.mask_cy = v[1];
        p.mask_r = v[2];
    }
    fl_stem4d *src = NULL;
    cli_json j;
    fl_ctx *ctx = NULL;
    if ((rc = open_source_and_start(cmd, opts, out, &j, &src, &ctx))) return rc;
    fl_stem_com_result r;
    memset(&r, 0, sizeof r);
    fl_status st = fl_stem_com(ctx, src, &p, &r);
    const float *planes[4] = {r.com_x, r.com_y, r.magnitude, r.direction};
    const char *labels[4] = {"com x", "com y", "magnitude", p.degrees ? "direction (degrees)" : "direction (radians)"};
    if (!st) st = write_planes(ctx, out, "com.tif", r.scan_x, r.scan_y, 4, planes, labels);
    const float *hp[1] = {r.hist}, *mp[1] = {r.mean_pattern};
    if (!st) st = write_planes(ctx, out, "com_histogram.tif", r.hist_bins, r.hist_bins, 1, hp, NULL);
    if (!st) st = write_planes(ctx, out, "mean_pattern.tif", r.pattern_w, r.pattern_h, 1, mp, NULL);
    if (!st) {
        double sum_mag = 0;
        int64_t n = r.scan_x * r.scan_y, nf = 0;
        for (int64_t i = 0; i < n; i++)
            if (isfinite(r.magnitude[i])) sum_mag += r.magnitude[i], nf++;
        json_source(&j, opts, src, p.bin);
        cli_json_raw(&j, "files", "{\"com\":\"com.tif\",\"histogram\":\"com_histogram.tif\",\"mean_pattern\":\"mean_pattern.tif\",\"summary\":\"summary.json\"}");
        cli_json_num(&j, "reference_x", r.ref_x);
        cli_json_num(&j, "reference_y", r.ref_y);
        cli_json_num(&j, "mean_magnitude", nf ? sum_mag / (double)nf : NAN);
        cli_json_int(&j, "undefined_patterns", n - nf);
        cli_json_int(&j, "hist_bins", r.hist_bins);
        cli_json_num(&j, "hist_range", r.hist_range);
        cli_json_str(&j, "direction_unit", p.degrees ? "degrees" : "radians");
    }
    fl_stem_com_result_free(&r);
    fl_stem4d_close(src);
    return cli_command_finish(ctx, st, &j, opts, out);
}

/* ---- vdf ------------------------------------------------------------------------------------------ */
static int action_vdf(int argc, char **argv)
{
    const char *cmd = "stem vdf";
    cli_option opts[] = {
        STEM_SOURCE_OPTS,
        {"rect", CLI_STRING, "X,Y,W,H", "rectangular aperture (detector pixels x <= kx < x + w, ...)", NULL, 0, 0, 0, 0, 0, NULL},
        {"annulus", CLI_STRING, "CX,CY,RIN,ROUT", "annular aperture rin <= r <= rout (a disc with rin 0)", NULL, 0, 0, 0, 0, 0, NULL},
        {"mask-image", CLI_STRING, "FILE", "aperture weights: a TIFF of the (binned) pattern size", NULL, 0, 0, 0, 0, 0, NULL},
        {"sum", CLI_FLAG, NULL, "sum inside the aperture (default: mean raw intensity)", NULL, 0, 0, 0, 0, 0, NULL},
        CLI_OPT_END};
    int rc = cli_parse(cmd, opts, argc, argv);
    if (rc == CLI_HELP) {
        cli_print_help(stdout, cmd,
                       "Virtual detector image: the mean (or --sum) of every pattern inside an aperture.\n" STEM_SOURCE_HELP, opts,
                       "Outputs in --out:\n  vdf.tif       scan-sized virtual detector image\n  summary.json");
        return CLI_EXIT_OK;
    }
    if (rc) return rc;
    const char *out = cli_str(opts, "out");
    if (!out) return cli_usage_error(cmd, "--out DIR is required");
    int nshape = cli_is_set(opts, "rect") + cli_is_set(opts, "annulus") + cli_is_set(opts, "mask-image");
    if (nshape != 1) return cli_usage_error(cmd, "give exactly one aperture: --rect, --annulus or --mask-image");
    fl_stem_vdf_params p;
    memset(&p, 0, sizeof p);
    p.bin = (int32_t)cli_int(opts, "bin");
    if (p.bin == 3) return cli_usage_error(cmd, "--bin must be 1, 2 or 4");
    p.mean = !cli_flag(opts, "sum");
    double v[4];
    if (cli_is_set(opts, "rect")) {
        if (!parse_nums(cli_str(opts, "rect"), v, 4) || v[2] <= 0 || v[3] <= 0)
            return cli_usage_error(cmd, "--rect expects X,Y,W,H with W, H > 0, got '%s'", cli_str(opts, "rect"));
        p.shape = FL_VDF_RECT;
        p.x = v[0], p.y = v[1], p.w = v[2], p.h = v[3];
    } else if (cli_is_set(opts, "annulus")) {
        if (!parse_nums(cli_str(opts, "annulus"), v, 4) || v[2] < 0 || v[3] < v[2])
            return cli_usage_error(cmd, "--annulus expects CX,CY,RIN,ROUT with 0 <= RIN <= ROUT, got '%s'", cli_str(opts, "annulus"));
        p.shape = FL_VDF_ANNULUS;
        p.cx = v[0], p.cy = v[1], p.r_in = v[2], p.r_out = v[3];
    } else {
        p.shape = FL_VDF_MASK;
    }
    fl_stem4d *src = NULL;
    cli_json j;
    fl_ctx *ctx = NULL;
    if ((rc = open_source_and_start(cmd, opts, out, &j, &src, &ctx))) return rc;
    fl_image mask;
    fl_image_init(&mask);
    float *img = NULL;
    fl_stem4d_info info;
    fl_stem4d_get_info(src, &info);
    fl_status st = FL_OK;
    if (p.shape == FL_VDF_MASK) {
        st = fl_tiff_read(ctx, cli_str(opts, "mask-image"), &mask);
        if (!st && (mask.width != info.det_w / p.bin || mask.height != info.det_h / p.bin || fl_image_planes(&mask) != 1))
            st = fl_fail(ctx, FL_EMISMATCH, "--mask-image is %lld x %lld x %lld planes, but the (binned) pattern is %lld x %lld (one plane)",
                         (long long)mask.width, (long long)mask.height, (long long)fl_image_planes(&mask),
                         (long long)(info.det_w / p.bin), (long long)(info.det_h / p.bin));
        p.mask = mask.data;
    }
    if (!st && !(img = fl_alloc((size_t)info.patterns * sizeof(float)))) st = fl_fail(ctx, FL_ENOMEM, "out of memory");
    if (!st) st = fl_stem_vdf(ctx, src, &p, img);
    const float *planes[1] = {img};
    const char *labels[1] = {p.mean ? "mean intensity in aperture" : "summed intensity in aperture"};
    if (!st) st = write_planes(ctx, out, "vdf.tif", info.scan_x, info.scan_y, 1, planes, labels);
    if (!st) {
        double mn = INFINITY, mx = -INFINITY;
        for (int64_t i = 0; i < info.patterns; i++) mn = fmin(mn, img[i]), mx = fmax(mx, img[i]);
        json_source(&j, opts, src, p.bin);
        cli_json_raw(&j, "files", "{\"vdf\":\"vdf.tif\",\"summary\":\"summary.json\"}");
        cli_json_str(&j, "aperture", p.shape == FL_VDF_RECT ? "rect" : p.shape == FL_VDF_ANNULUS ? "annulus" : "mask");
        cli_json_str(&j, "reduction", p.mean ? "mean" : "sum");
        cli_json_num(&j, "min", mn);
        cli_json_num(&j, "max", mx);
    }
    fl_free(img);
    fl_image_free(&mask);
    fl_stem4d_close(src);
    return cli_command_finish(ctx, st, &j, opts, out);
}

/* ---- compare -------------------------------------------------------------------------------------- */
static fl_status read_selection(fl_ctx *ctx, const char *path, const char *opt, const fl_stem4d_info *info, fl_image *im)
{
    fl_status st = fl_tiff_read(ctx, path, im);
    if (st) return st;
    if (im->width != info->scan_x || im->height != info->scan_y || fl_image_planes(im) != 1)
        return fl_fail(ctx, FL_EMISMATCH, "%s '%s' is %lld x %lld x %lld planes, but the scan is %lld x %lld (one plane)", opt,
                       path, (long long)im->width, (long long)im->height, (long long)fl_image_planes(im),
                       (long long)info->scan_x, (long long)info->scan_y);
    return FL_OK;
}

static int action_compare(int argc, char **argv)
{
    const char *cmd = "stem compare";
    cli_option opts[] = {
        STEM_SOURCE_OPTS,
        {"select-a", CLI_STRING, "MASK.tif", "scan-sized mask (non-zero = selected) of the first region", NULL, 0, 0, 0, 0, 0, NULL},
        {"select-b", CLI_STRING, "MASK.tif", "scan-sized mask of the second region", NULL, 0, 0, 0, 0, 0, NULL},
        CLI_OPT_END};
    int rc = cli_parse(cmd, opts, argc, argv);
    if (rc == CLI_HELP) {
        cli_print_help(stdout, cmd,
                       "Compare the mean patterns of two scan regions: normalised cross-correlation (FFT, periodic;\n"
                       "zero shift at pixel (w/2, h/2)), its peak and shift, and the difference A - B.\n" STEM_SOURCE_HELP,
                       opts,
                       "Outputs in --out:\n  compare.tif   pattern-sized, slices \"ncc\", \"difference\" (A - B), \"mean A\", \"mean B\"\n"
                       "  summary.json  peak value and shift (binned detector pixels, B relative to A)");
        return CLI_EXIT_OK;
    }
    if (rc) return rc;
    const char *out = cli_str(opts, "out");
    if (!out) return cli_usage_error(cmd, "--out DIR is required");
    if (!cli_is_set(opts, "select-a") || !cli_is_set(opts, "select-b"))
        return cli_usage_error(cmd, "--select-a MASK.tif and --select-b MASK.tif are required");
    int32_t bin = (int32_t)cli_int(opts, "bin");
    if (bin == 3) return cli_usage_error(cmd, "--bin must be 1, 2 or 4");
    fl_stem4d *src = NULL;
    cli_json j;
    fl_ctx *ctx = NULL;
    if ((rc = open_source_and_start(cmd, opts, out, &j, &src, &ctx))) return rc;
    fl_image a, b;
    fl_image_init(&a);
    fl_image_init(&b);
    fl_stem_compare_result r;
    memset(&r, 0, sizeof r);
    fl_stem4d_info info;
    fl_stem4d_get_info(src, &info);
    fl_status st = read_selection(ctx, cli_str(opts, "select-a"), "--select-a", &info, &a);
    if (!st) st = read_selection(ctx, cli_str(opts, "select-b"), "--select-b", &info, &b);
    if (!st) st = fl_stem_compare(ctx, src, bin, a.data, b.data, &r);
    const float *planes[4] = {r.ncc, r.difference, r.mean_a, r.mean_b};
    const char *labels[4] = {"ncc", "difference", "mean A", "mean B"};
    if (!st) st = write_planes(ctx, out, "compare.tif", r.pattern_w, r.pattern_h, 4, planes, labels);
    if (!st) {
        double l2 = 0;
        for (int64_t i = 0; i < r.pattern_w * r.pattern_h; i++) l2 += (double)r.difference[i] * r.difference[i];
        json_source(&j, opts, src, bin);
        cli_json_raw(&j, "files", "{\"compare\":\"compare.tif\",\"summary\":\"summary.json\"}");
        cli_json_int(&j, "count_a", r.count_a);
        cli_json_int(&j, "count_b", r.count_b);
        cli_json_num(&j, "ncc_peak", r.peak);
        cli_json_int(&j, "shift_x", r.shift_x);
        cli_json_int(&j, "shift_y", r.shift_y);
        cli_json_num(&j, "difference_rms", sqrt(l2 / (double)(r.pattern_w * r.pattern_h)));
    }
    fl_stem_compare_result_free(&r);
    fl_image_free(&a);
    fl_image_free(&b);
    fl_stem4d_close(src);
    return cli_command_finish(ctx, st, &j, opts, out);
}

typedef struct stem_action {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} stem_action;

static const stem_action actions[] = {
    {"com", action_com, "centre-of-mass maps, COM histogram and mean pattern"},
    {"vdf", action_vdf, "virtual detector image from a rectangle, annulus or mask"},
    {"compare", action_compare, "NCC and difference of the mean patterns of two scan regions"},
};
#define NACT (sizeof actions / sizeof actions[0])

int cmd_stem(int argc, char **argv)
{
    if (argc < 1 || !strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) {
        FILE *f = argc < 1 ? stderr : stdout;
        fprintf(f, "Usage: ferrolens stem <action> [options]\n\n4D-STEM reciprocal-space tools (streamed from disk).\n\nActions:\n");
        for (size_t i = 0; i < NACT; i++) fprintf(f, "  %-10s %s\n", actions[i].name, actions[i].summary);
        fprintf(f, "\n'ferrolens stem <action> --help' for the options of an action.\n");
        return argc < 1 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    for (size_t i = 0; i < NACT; i++)
        if (!strcmp(argv[0], actions[i].name)) return actions[i].fn(argc - 1, argv + 1);
    const char *names[NACT + 1];
    for (size_t i = 0; i < NACT; i++) names[i] = actions[i].name;
    names[NACT] = NULL;
    const char *m = cli_best_match(argv[0], names);
    if (m) return cli_usage_error("stem", "unknown action '%s'; did you mean '%s'?", argv[0], m);
    return cli_usage_error("stem", "unknown action '%s'", argv[0]);
}
