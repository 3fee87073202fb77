/* ferrolens loops <action>: hysteresis-loop analysis. */
#include "cli.h"
#include "ferrolens/loops.h"
#include "io/spectral_grid.h"
#include "io/tiff.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DESC_CMD "loops descriptors"

static const char desc_description[] =
    "Hysteresis-loop descriptors of every pixel of a loop grid (BEPS piezoresponse loops, one loop per\n"
    "pixel along Z or T): coercive biases V+ and V- (zero crossings of the forward and reverse branch),\n"
    "imprint, loop width, loop area (|shoelace| of the closed (V, response) polygon = shapely area),\n"
    "nucleation biases (largest curvature at the onset of switching), remanent responses R+ and R- (at\n"
    "V = 0), saturation and offset. The bias comes from the slice labels (\"1.250 V\"; mV/kV are converted\n"
    "to volts); without bias labels --vmax assumes the triangle waveform 0 -> +vmax -> -vmax -> 0 over the\n"
    "points (V_j = vmax * tri(j / points)). Definitions: native/include/ferrolens/loops.h. A loop that never\n"
    "crosses zero gives NaN for V+/V- and what depends on them.";

static const char desc_outputs[] =
    "Outputs in --out:\n"
    "  descriptors.tif   W x H x 11 slices \"V+ (V)\", \"V- (V)\", \"imprint (V)\", \"width (V)\", \"area (V*a.u.)\",\n"
    "                    \"nucleation+ (V)\", \"nucleation- (V)\", \"R+ (a.u.)\", \"R- (a.u.)\", \"saturation (a.u.)\",\n"
    "                    \"offset (a.u.)\" (NaN where undefined)\n"
    "  descriptors.csv   x,y and one column per descriptor (one row per pixel, NaN where undefined)\n"
    "  summary.json      means over the pixels where defined, NaN counts, the bias source";

static double volt_scale(const char *unit)
{
    if (!strcmp(unit, "mV")) return 1e-3;
    if (!strcmp(unit, "kV")) return 1e3;
    if (!strcmp(unit, "uV") || !strcmp(unit, "\xC2\xB5V")) return 1e-6;
    return 1.0;
}

static int write_csv(const char *path, const float *maps, int64_t W, int64_t H)
{
    char tmp[CLI_PATH_MAX + 8];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) return cli_error("path too long: %s", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return cli_error("cannot write %s: %s", tmp, strerror(errno));
    fprintf(f, "x,y");
    for (int k = 0; k < FL_LOOP_NDESC; k++) fprintf(f, ",%s", fl_loop_desc_name(k));
    fprintf(f, "\n");
    fl_strbuf b;
    fl_strbuf_init(&b);
    for (int64_t y = 0; y < H; y++)
        for (int64_t x = 0; x < W; x++) {
            b.len = 0;
            fl_strbuf_printf(&b, "%lld,%lld", (long long)x, (long long)y);
            const float *m = maps + (size_t)(x + W * y) * FL_LOOP_NDESC;
            for (int k = 0; k < FL_LOOP_NDESC; k++) {
                if (isfinite(m[k])) fl_strbuf_printf_c(&b, ",%.9g", (double)m[k]);
                else fl_strbuf_append(&b, ",NaN", 4);
            }
            fl_strbuf_append(&b, "\n", 1);
            if (!b.failed) fwrite(b.data, 1, b.len, f);
        }
    int failed = b.failed;
    fl_strbuf_free(&b);
    if (ferror(f) | (fclose(f) != 0) | failed) {
        remove(tmp);
        return cli_error("cannot write %s", path);
    }
    if (rename(tmp, path) != 0) {
        remove(tmp);
        return cli_error("cannot write %s: %s", path, strerror(errno));
    }
    return 0;
}

static int descriptors(int argc, char **argv)
{
    cli_option opts[] = {
        CLI_OPT_INPUT,
        CLI_OPT_OUT,
        {"vmax", CLI_FLOAT, "V", "without bias labels: assume the triangle waveform 0 -> +vmax -> -vmax -> 0", NULL, 1e-9, 1e9, 0, 0, 0, NULL},
        CLI_OPT_THREADS,
        CLI_OPT_MEMORY,
        CLI_OPT_JSON,
        CLI_OPT_END};
    int rc = cli_parse(DESC_CMD, opts, argc, argv);
    if (rc == CLI_HELP) {
        cli_print_help(stdout, DESC_CMD, desc_description, opts, desc_outputs);
        return CLI_EXIT_OK;
    }
    if (rc != 0) return rc;
    const char *in = cli_str(opts, "input"), *out = cli_str(opts, "out");
    if (!in) return cli_usage_error(DESC_CMD, "--input FILE is required");
    if (!out) return cli_usage_error(DESC_CMD, "--out DIR is required");
    int json = cli_flag(opts, "json");

    char tif_path[CLI_PATH_MAX], csv_path[CLI_PATH_MAX], summary_path[CLI_PATH_MAX];
    if (cli_path_join(tif_path, sizeof tif_path, out, "descriptors.tif") ||
        cli_path_join(csv_path, sizeof csv_path, out, "descriptors.csv") ||
        cli_path_join(summary_path, sizeof summary_path, out, "summary.json"))
        return CLI_EXIT_FAIL;

    fl_ctx *ctx = cli_ctx_new(opts);
    if (!ctx) return CLI_EXIT_FAIL;
    fl_image img, maps_img;
    fl_image_init(&img);
    fl_image_init(&maps_img);
    float *curves = NULL, *v = NULL, *maps = NULL;
    double *axis = NULL;
    int64_t n = 0;
    int32_t T = 0;
    char unit[32] = "", label[64] = "";
    const char *bias_source = NULL;

    fl_status st = fl_tiff_read(ctx, in, &img);
    if (st == FL_OK && img.is_rgb) {
        rc = cli_error("%s is an RGB colour image; loop grids must be grayscale hyperstacks (8-, 16- or 32-bit)", in);
        goto done;
    }
    if (st == FL_OK) st = fl_grid_to_curves(ctx, &img, 0, &curves, &n, &T, &axis, unit, label);
    if (st != FL_OK) {
        rc = cli_engine_error(ctx);
        goto done;
    }
    v = malloc((size_t)T * sizeof(float));
    maps = malloc((size_t)n * FL_LOOP_NDESC * sizeof(float));
    if (!v || !maps) {
        rc = cli_error("out of memory");
        goto done;
    }
    int from_labels = !strcmp(label, "voltage") || !strcmp(label, "slice label");
    if (from_labels) {
        double sc = volt_scale(unit);
        for (int32_t j = 0; j < T; j++) v[j] = (float)(axis[j] * sc);
        bias_source = "slice labels";
        st = fl_loop_check_sweep(ctx, v, T);
        if (st != FL_OK) {
            rc = cli_error("slice labels of %s: %s", in, fl_ctx_message(ctx));
            goto done;
        }
    } else if (cli_is_set(opts, "vmax")) {
        double vm = cli_float(opts, "vmax");
        for (int32_t j = 0; j < T; j++) {
            double f = (double)j / (double)T;
            double u = f <= 0.25 ? 4.0 * f : (f <= 0.75 ? 2.0 - 4.0 * f : 4.0 * f - 4.0);
            v[j] = (float)(vm * u);
        }
        bias_source = "--vmax triangle waveform";
    } else {
        rc = cli_usage_error(DESC_CMD,
                             "the slices of %s carry no bias labels (like \"1.250 V\"); give --vmax V to assume the triangle "
                             "waveform 0 -> +vmax -> -vmax -> 0 over the %d points",
                             in, (int)T);
        goto done;
    }

    st = fl_loop_descriptors_grid(ctx, v, curves, n, T, maps);
    if (st == FL_OK) {
        const char *labels[FL_LOOP_NDESC];
        for (int k = 0; k < FL_LOOP_NDESC; k++) labels[k] = fl_loop_desc_label(k);
        st = fl_maps_to_image(ctx, maps, img.width, img.height, FL_LOOP_NDESC, labels, &img, &maps_img);
    }
    if (st != FL_OK) {
        rc = cli_engine_error(ctx);
        goto done;
    }
    if (cli_mkdirs(out) != 0) {
        rc = CLI_EXIT_FAIL;
        goto done;
    }
    st = fl_tiff_write(ctx, tif_path, &maps_img);
    if (st != FL_OK) {
        rc = cli_engine_error(ctx);
        goto done;
    }
    if (write_csv(csv_path, maps, img.width, img.height) != 0) {
        rc = CLI_EXIT_FAIL;
        goto done;
    }

    {
        fl_strbuf means, nans;
        fl_strbuf_init(&means);
        fl_strbuf_init(&nans);
        fl_strbuf_append(&means, "{", 1);
        fl_strbuf_append(&nans, "{", 1);
        for (int k = 0; k < FL_LOOP_NDESC; k++) {
            double s = 0.0;
            int64_t c = 0;
            for (int64_t i = 0; i < n; i++) {
                float x = maps[(size_t)i * FL_LOOP_NDESC + (size_t)k];
                if (isfinite(x)) s += x, c++;
            }
            if (k) {
                fl_strbuf_append(&means, ",", 1);
                fl_strbuf_append(&nans, ",", 1);
            }
            fl_strbuf_json_string(&means, fl_loop_desc_name(k));
            fl_strbuf_json_string(&nans, fl_loop_desc_name(k));
            if (c) fl_strbuf_printf_c(&means, ":%.9g", s / (double)c);
            else fl_strbuf_append(&means, ":null", 5);
            fl_strbuf_printf(&nans, ":%lld", (long long)(n - c));
        }
        fl_strbuf_append(&means, "}", 1);
        fl_strbuf_append(&nans, "}", 1);
        cli_json j;
        cli_json_begin(&j);
        cli_json_str(&j, "command", DESC_CMD);
        cli_json_str(&j, "version", FL_VERSION_STRING);
        cli_json_str(&j, "input", in);
        cli_json_str(&j, "out", out);
        cli_json_raw(&j, "files", "{\"descriptors\":\"descriptors.tif\",\"csv\":\"descriptors.csv\",\"summary\":\"summary.json\"}");
        cli_json_int(&j, "width", img.width);
        cli_json_int(&j, "height", img.height);
        cli_json_int(&j, "points", T);
        cli_json_str(&j, "bias_source", bias_source);
        float vmin = v[0], vmax = v[0];
        for (int32_t i = 1; i < T; i++) {
            if (v[i] < vmin) vmin = v[i];
            if (v[i] > vmax) vmax = v[i];
        }
        cli_json_num(&j, "bias_min", vmin);
        cli_json_num(&j, "bias_max", vmax);
        cli_json_raw(&j, "mean", means.failed ? "null" : means.data);
        cli_json_raw(&j, "nan_count", nans.failed ? "null" : nans.data);
        cli_json_end(&j);
        fl_strbuf_free(&means);
        fl_strbuf_free(&nans);
        rc = cli_json_emit(&j, json, summary_path);
        cli_json_free(&j);
    }
    if (rc == 0 && !json)
        fprintf(stderr, "ferrolens: wrote %s and %s (%lld loops of %d points, bias from %s)\n", tif_path, csv_path,
                (long long)n, (int)T, bias_source);

done:
    free(v);
    free(maps);
    fl_free(curves);
    fl_free(axis);
    fl_image_free(&img);
    fl_image_free(&maps_img);
    fl_ctx_free(ctx);
    return rc;
}

typedef struct loops_action {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} loops_action;

static const loops_action actions[] = {
    {"descriptors", descriptors, "coercive biases, imprint, width, area, nucleation, remanence of every loop"},
};
#define NACTIONS (sizeof actions / sizeof actions[0])

int cmd_loops(int argc, char **argv)
{
    if (argc < 1 || !strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) {
        FILE *f = argc < 1 ? stderr : stdout;
        fprintf(f, "Usage: ferrolens loops <action> [options]\n\nHysteresis-loop analysis.\n\nActions:\n");
        for (size_t i = 0; i < NACTIONS; i++) fprintf(f, "  %-12s %s\n", actions[i].name, actions[i].summary);
        fprintf(f, "\n'ferrolens loops <action> --help' for the options of an action.\n");
        return argc < 1 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    for (size_t i = 0; i < NACTIONS; i++)
        if (!strcmp(argv[0], actions[i].name)) return actions[i].fn(argc - 1, argv + 1);
    const char *names[NACTIONS + 1];
    for (size_t i = 0; i < NACTIONS; i++) names[i] = actions[i].name;
    names[NACTIONS] = NULL;
    const char *m = cli_best_match(argv[0], names);
    if (m) return cli_usage_error("loops", "unknown action '%s'; did you mean '%s'?", argv[0], m);
    return cli_usage_error("loops", "unknown action '%s'", argv[0]);
}
