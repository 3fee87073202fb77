/* ferrolens synth <action>: synthetic data sets with ground truth. */
#include "cli.h"
#include "io/tiff.h"
#include "synth/iv_grid.h"

#include <string.h>

#define IV_CMD "synth iv-grid"

static const char iv_description[] =
    "Synthetic I(V)-spectroscopy grid at charged ferroelectric domain walls (toy model after Holstad et al.\n"
    "2020, (Er,Zr)MnO3): meandering stripe domains with in-plane P = +-1, alternating conducting tail-to-tail\n"
    "and insulating head-to-head walls, a Schottky-like bulk current whose +P/-P contrast inverts with the\n"
    "bias sign, per-pixel tip-contact gain and offset jitter and Gaussian noise. The model is documented in\n"
    "native/src/synth/iv_grid.h and sample-stacks/README.md.";

static const char iv_outputs[] =
    "Outputs in --out:\n"
    "  iv_grid.tif        32-bit hyperstack W x H x points slices; slice labels give the bias (\"-5.000 V\");\n"
    "                     pixel size 0.05 um; current in arbitrary units (~pA)\n"
    "  iv_grid_truth.tif  W x H x 3 slices: \"domain P\" (+1/-1), \"tail-to-tail wall\" and\n"
    "                     \"head-to-head wall\" proximity exp(-d^2/(2 w^2))\n"
    "  summary.json       the parameters and file names (also printed on stdout with --json)";

static int iv_grid(int argc, char **argv)
{
    fl_synth_iv_params d;
    fl_synth_iv_params_default(&d);
    cli_option opts[] = {
        CLI_OPT_OUT,
        {"width", CLI_INT, "N", "grid width in pixels", "64", 2, 65536, 0, 0, 0, NULL},
        {"height", CLI_INT, "N", "grid height in pixels", "64", 2, 65536, 0, 0, 0, NULL},
        {"points", CLI_INT, "N", "points per I(V) curve", "64", 8, 100000, 0, 0, 0, NULL},
        {"vmax", CLI_FLOAT, "V", "bias range -vmax..vmax in volts", "5", 1e-6, 1e6, 0, 0, 0, NULL},
        {"noise", CLI_FLOAT, "F", "Gaussian noise, fraction of the curve range", "0.02", 0, 10, 0, 0, 0, NULL},
        {"period", CLI_FLOAT, "PX", "wall spacing in pixels", "16", 4, 1e6, 0, 0, 0, NULL},
        {"wall-width", CLI_FLOAT, "PX", "wall width w of the wall currents and truth maps", "1.5", 0.1, 1e6, 0, 0, 0, NULL},
        CLI_OPT_SEED,
        CLI_OPT_THREADS,
        CLI_OPT_MEMORY,
        CLI_OPT_JSON,
        CLI_OPT_END};
    int rc = cli_parse(IV_CMD, opts, argc, argv);
    if (rc == CLI_HELP) {
        cli_print_help(stdout, IV_CMD, iv_description, opts, iv_outputs);
        return CLI_EXIT_OK;
    }
    if (rc != 0) return rc;
    const char *out = cli_str(opts, "out");
    if (!out) return cli_usage_error(IV_CMD, "--out DIR is required");

    fl_synth_iv_params p = d;
    p.width = cli_int(opts, "width");
    p.height = cli_int(opts, "height");
    p.points = (int32_t)cli_int(opts, "points");
    p.vmax = cli_float(opts, "vmax");
    p.noise = cli_float(opts, "noise");
    p.period = cli_float(opts, "period");
    p.wall_width = cli_float(opts, "wall-width");
    p.seed = (uint64_t)cli_int(opts, "seed");
    int json = cli_flag(opts, "json");

    char curves_path[CLI_PATH_MAX], truth_path[CLI_PATH_MAX], summary_path[CLI_PATH_MAX];
    if (cli_path_join(curves_path, sizeof curves_path, out, "iv_grid.tif") ||
        cli_path_join(truth_path, sizeof truth_path, out, "iv_grid_truth.tif") ||
        cli_path_join(summary_path, sizeof summary_path, out, "summary.json"))
        return CLI_EXIT_FAIL;
    if (cli_mkdirs(out) != 0) return CLI_EXIT_FAIL;

    fl_ctx *ctx = cli_ctx_new(opts);
    if (!ctx) return CLI_EXIT_FAIL;
    fl_image curves, truth;
    fl_image_init(&curves);
    fl_image_init(&truth);
    fl_status st = fl_synth_iv_grid(ctx, &p, &curves, &truth);
    if (st == FL_OK) st = fl_tiff_write(ctx, curves_path, &curves);
    if (st == FL_OK) st = fl_tiff_write(ctx, truth_path, &truth);
    if (st != FL_OK) {
        rc = cli_engine_error(ctx);
        goto done;
    }

    /* a few numbers about the truth, useful to check a run at a glance */
    int64_t npix = p.width * p.height, plus = 0, on_tt = 0, on_hh = 0;
    for (int64_t i = 0; i < npix; i++) {
        plus += truth.data[i] > 0.0f;
        on_tt += truth.data[npix + i] > 0.5f;
        on_hh += truth.data[2 * npix + i] > 0.5f;
    }
    cli_json j;
    cli_json_begin(&j);
    cli_json_str(&j, "command", IV_CMD);
    cli_json_str(&j, "version", FL_VERSION_STRING);
    cli_json_str(&j, "out", out);
    cli_json_raw(&j, "files", "{\"curves\":\"iv_grid.tif\",\"truth\":\"iv_grid_truth.tif\",\"summary\":\"summary.json\"}");
    cli_json_int(&j, "width", p.width);
    cli_json_int(&j, "height", p.height);
    cli_json_int(&j, "points", p.points);
    cli_json_num(&j, "vmax", p.vmax);
    cli_json_str(&j, "axis_unit", "V");
    cli_json_num(&j, "noise", p.noise);
    cli_json_num(&j, "period", p.period);
    cli_json_num(&j, "wall_width", p.wall_width);
    cli_json_num(&j, "meander_amplitude", p.meander_amplitude);
    cli_json_num(&j, "meander_wavelength", p.meander_wavelength);
    cli_json_num(&j, "wiggle", p.wiggle);
    cli_json_num(&j, "domain_contrast", p.domain_contrast);
    cli_json_num(&j, "tt_amplitude", p.tt_amplitude);
    cli_json_num(&j, "hh_suppression", p.hh_suppression);
    cli_json_num(&j, "gain_jitter", p.gain_jitter);
    cli_json_num(&j, "offset_jitter", p.offset_jitter);
    cli_json_num(&j, "pixel_size_um", p.pixel_size);
    cli_json_int(&j, "seed", (int64_t)p.seed);
    cli_json_num(&j, "fraction_plus_p", (double)plus / (double)npix);
    cli_json_num(&j, "fraction_tt_wall", (double)on_tt / (double)npix);
    cli_json_num(&j, "fraction_hh_wall", (double)on_hh / (double)npix);
    cli_json_raw(&j, "truth_slices", "[\"domain P\",\"tail-to-tail wall\",\"head-to-head wall\"]");
    cli_json_end(&j);
    rc = cli_json_emit(&j, json, summary_path);
    cli_json_free(&j);
    if (rc == 0 && !json)
        fprintf(stderr, "ferrolens: wrote %s and %s (%lld x %lld pixels, %d points, -%g..%g V)\n", curves_path,
                truth_path, (long long)p.width, (long long)p.height, (int)p.points, p.vmax, p.vmax);

done:
    fl_image_free(&curves);
    fl_image_free(&truth);
    fl_ctx_free(ctx);
    return rc;
}

typedef struct synth_action {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} synth_action;

static const synth_action actions[] = {
    {"iv-grid", iv_grid, "I(V) spectroscopy grid at charged domain walls, with ground-truth maps"},
    {"loops", cmd_synth_loops, "hysteresis-loop grid over a/c domain stripes + structure image (im2spec)"},
    {"stem4d", cmd_synth_stem4d, "4D-STEM diffraction of +-P domains and charged walls"},
    {"pfm-walls", cmd_synth_pfm_walls, "PFM images of domain walls with wall masks (segmentation)"},
};
#define NACTIONS (sizeof actions / sizeof actions[0])

int cmd_synth(int argc, char **argv)
{
    if (argc < 1 || !strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) {
        FILE *f = argc < 1 ? stderr : stdout;
        fprintf(f, "Usage: ferrolens synth <action> [options]\n\nSynthetic data sets with ground truth.\n\nActions:\n");
        for (size_t i = 0; i < NACTIONS; i++) fprintf(f, "  %-12s %s\n", actions[i].name, actions[i].summary);
        fprintf(f, "\n'ferrolens synth <action> --help' for the options of an action.\n");
        return argc < 1 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    for (size_t i = 0; i < NACTIONS; i++)
        if (!strcmp(argv[0], actions[i].name)) return actions[i].fn(argc - 1, argv + 1);
    const char *names[NACTIONS + 1];
    for (size_t i = 0; i < NACTIONS; i++) names[i] = actions[i].name;
    names[NACTIONS] = NULL;
    const char *m = cli_best_match(argv[0], names);
    if (m) return cli_usage_error("synth", "unknown action '%s'; did you mean '%s'?", argv[0], m);
    return cli_usage_error("synth", "unknown action '%s'", argv[0]);
}
