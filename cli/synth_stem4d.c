/* ferrolens synth stem4d: toy 4D-STEM data set of +-P stripe domains with charged walls. */
#include "cli.h"
#include "io/tiff.h"
#include "synth/stem4d.h"

#include <string.h>

#define CMD "synth stem4d"

static const char description[] =
    "Synthetic 4D-STEM data set: a vertical stack of +P / -P stripe domains separated by alternating head-to-head\n"
    "and tail-to-tail walls. Each pattern is a row of Gaussian Bragg discs along ky (00-8, 00-4, 000, 004, 008);\n"
    "the polarisation makes I(004) / I(00-4) = ratio (+P) or 1 / ratio (-P), walls are symmetric with a small\n"
    "disc shift, a thickness gradient along scan x scales intensity and diffuse background, Poisson noise.\n"
    "Model: native/src/synth/stem4d.h and sample-stacks/README.md.";

static const char outputs[] =
    "Outputs in --out:\n"
    "  stem4d.tif        32-bit hyperstack: detector K x K image, scan x on Z (slices), scan y on T (frames)\n"
    "  stem4d_truth.tif  scan-sized, 4 slices: \"polarisation\" (+1/-1), \"wall\" (0/1, distance <= 1),\n"
    "                    \"wall type\" (+1 head-to-head, -1 tail-to-tail, 0 off walls), \"thickness\"\n"
    "  summary.json      the parameters and file names (also printed on stdout with --json)";

int cmd_synth_stem4d(int argc, char **argv)
{
    cli_option opts[] = {
        CLI_OPT_OUT,
        {"scan-x", CLI_INT, "N", "scan positions along x (slices)", "32", 2, 4096, 0, 0, 0, NULL},
        {"scan-y", CLI_INT, "N", "scan positions along y (frames)", "32", 2, 4096, 0, 0, 0, NULL},
        {"detector", CLI_INT, "K", "detector size K x K pixels", "32", 8, 1024, 0, 0, 0, NULL},
        {"period", CLI_FLOAT, "PX", "domain height in scan rows", "8", 2, 1e6, 0, 0, 0, NULL},
        {"meander", CLI_FLOAT, "PX", "wall meander amplitude in scan pixels", "1", 0, 1e6, 0, 0, 0, NULL},
        {"ratio", CLI_FLOAT, "R", "I(004) / I(00-4) in a +P domain", "1.6", 1, 100, 0, 0, 0, NULL},
        {"wall-shift", CLI_FLOAT, "PX", "disc shift on walls (detector pixels; +ky head-to-head, -ky tail-to-tail)", "0.5", -256, 256, 0, 0, 0, NULL},
        {"thick-min", CLI_FLOAT, "T", "relative thickness at scan x = 0", "0.6", 1e-3, 100, 0, 0, 0, NULL},
        {"thick-max", CLI_FLOAT, "T", "relative thickness at the last scan column", "1.4", 1e-3, 100, 0, 0, 0, NULL},
        {"background", CLI_FLOAT, "F", "diffuse background relative to the central disc", "0.05", 0, 100, 0, 0, 0, NULL},
        {"dose", CLI_FLOAT, "N", "counts at the central disc peak (0: noise-free)", "200", 0, 1e9, 0, 0, 0, NULL},
        CLI_OPT_SEED,
        CLI_OPT_THREADS,
        CLI_OPT_MEMORY,
        CLI_OPT_JSON,
        CLI_OPT_END};
    int rc = cli_parse(CMD, opts, argc, argv);
    if (rc == CLI_HELP) {
        cli_print_help(stdout, CMD, description, opts, outputs);
        return CLI_EXIT_OK;
    }
    if (rc != 0) return rc;
    const char *out = cli_str(opts, "out");
    if (!out) return cli_usage_error(CMD, "--out DIR is required");
    fl_synth_stem4d_params p;
    fl_synth_stem4d_params_default(&p);
    p.scan_x = cli_int(opts, "scan-x");
    p.scan_y = cli_int(opts, "scan-y");
    p.det = cli_int(opts, "detector");
    p.period = cli_float(opts, "period");
    p.meander = cli_float(opts, "meander");
    p.ratio = cli_float(opts, "ratio");
    p.wall_shift = cli_float(opts, "wall-shift");
    p.thick_min = cli_float(opts, "thick-min");
    p.thick_max = cli_float(opts, "thick-max");
    p.background = cli_float(opts, "background");
    p.dose = cli_float(opts, "dose");
    p.seed = (uint64_t)cli_int(opts, "seed");
    if (p.thick_max < p.thick_min) return cli_usage_error(CMD, "--thick-max must not be smaller than --thick-min");
    if (p.meander >= p.period / 2) return cli_usage_error(CMD, "--meander must be smaller than half of --period");
    int json = cli_flag(opts, "json");

    char data_path[CLI_PATH_MAX], truth_path[CLI_PATH_MAX], summary_path[CLI_PATH_MAX];
    if (cli_path_join(data_path, sizeof data_path, out, "stem4d.tif") ||
        cli_path_join(truth_path, sizeof truth_path, out, "stem4d_truth.tif") ||
        cli_path_join(summary_path, sizeof summary_path, out, "summary.json"))
        return CLI_EXIT_FAIL;
    fl_ctx *ctx = cli_ctx_new(opts);
    if (!ctx) return CLI_EXIT_FAIL;
    fl_image data, truth;
    fl_status st = fl_synth_stem4d(ctx, &p, &data, &truth);
    if (st != FL_OK) {
        rc = cli_engine_error(ctx);
        goto done;
    }
    if (cli_mkdirs(out) != 0) {
        rc = CLI_EXIT_FAIL;
        goto done;
    }
    if (!(st = fl_tiff_write(ctx, data_path, &data))) st = fl_tiff_write(ctx, truth_path, &truth);
    if (st != FL_OK) {
        rc = cli_engine_error(ctx);
        goto done;
    }
    int64_t npix = p.scan_x * p.scan_y, plus = 0, wall = 0, hh = 0, tt = 0;
    for (int64_t i = 0; i < npix; i++) {
        plus += truth.data[i] > 0;
        wall += truth.data[npix + i] > 0.5f;
        hh += truth.data[2 * npix + i] > 0.5f;
        tt += truth.data[2 * npix + i] < -0.5f;
    }
    cli_json j;
    cli_json_begin(&j);
    cli_json_str(&j, "command", CMD);
    cli_json_str(&j, "version", FL_VERSION_STRING);
    cli_json_str(&j, "out", out);
    cli_json_raw(&j, "files", "{\"data\":\"stem4d.tif\",\"truth\":\"stem4d_truth.tif\",\"summary\":\"summary.json\"}");
    cli_json_int(&j, "scan_x", p.scan_x);
    cli_json_int(&j, "scan_y", p.scan_y);
    cli_json_int(&j, "detector", p.det);
    cli_json_num(&j, "period", p.period);
    cli_json_num(&j, "meander", p.meander);
    cli_json_num(&j, "ratio", p.ratio);
    cli_json_num(&j, "wall_shift", p.wall_shift);
    cli_json_num(&j, "thick_min", p.thick_min);
    cli_json_num(&j, "thick_max", p.thick_max);
    cli_json_num(&j, "background", p.background);
    cli_json_num(&j, "dose", p.dose);
    cli_json_num(&j, "disc_spacing", 0.19 * (double)p.det);
    cli_json_num(&j, "disc_sigma", 0.05 * (double)p.det);
    cli_json_int(&j, "seed", (int64_t)p.seed);
    cli_json_num(&j, "fraction_plus_p", (double)plus / (double)npix);
    cli_json_num(&j, "fraction_wall", (double)wall / (double)npix);
    cli_json_num(&j, "fraction_head_to_head", (double)hh / (double)npix);
    cli_json_num(&j, "fraction_tail_to_tail", (double)tt / (double)npix);
    cli_json_raw(&j, "truth_slices", "[\"polarisation\",\"wall\",\"wall type\",\"thickness\"]");
    cli_json_end(&j);
    rc = cli_json_emit(&j, json, summary_path);
    cli_json_free(&j);
    if (rc == 0 && !json)
        fprintf(stderr, "ferrolens: wrote %s and %s (scan %lld x %lld, detector %lld x %lld)\n", data_path, truth_path,
                (long long)p.scan_x, (long long)p.scan_y, (long long)p.det, (long long)p.det);
done:
    fl_image_free(&data);
    fl_image_free(&truth);
    fl_ctx_free(ctx);
    return rc;
}
