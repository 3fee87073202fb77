/* ferrolens synth loops: BEPS hysteresis-loop grid over a/c domain stripes + structure image. */
#include "cli.h"
#include "ferrolens/loops.h"
#include "io/tiff.h"
#include "synth/loops_grid.h"

#include <math.h>
#include <string.h>

#define LOOPS_SYNTH_CMD "synth loops"

static const char description[] =
    "Synthetic BEPS piezoresponse hysteresis loops over meandering a/c ferroelastic domain stripes (toy model\n"
    "for im2spec / spec2im and the loop descriptors): triangle bias waveform 0 -> +vmax -> -vmax -> 0, loops\n"
    "whose coercive biases, imprint, amplitude, sharpness and remanence depend smoothly on the distance to the\n"
    "nearest a/c wall, on that wall's orientation and on the domain type, plus a PFM-amplitude-like structure\n"
    "image of the same field. The model is documented in native/src/synth/loops_grid.h and\n"
    "sample-stacks/README.md.";

static const char outputs[] =
    "Outputs in --out:\n"
    "  loops_grid.tif       32-bit hyperstack W x H x points slices; slice labels give the bias (\"1.250 V\")\n"
    "  loops_structure.tif  W x H, one slice \"PFM amplitude\" (c bright, a dark, dark wall lines)\n"
    "  loops_truth.tif      W x H x 14 slices: distance to wall (px), wall orientation (deg), domain (1 = c,\n"
    "                       0 = a), then the true loop descriptors \"V+ (V)\", \"V- (V)\", ... \"offset (a.u.)\"\n"
    "  summary.json         the parameters and file names (also printed on stdout with --json)";

int cmd_synth_loops(int argc, char **argv)
{
    fl_synth_loops_params d;
    fl_synth_loops_params_default(&d);
    cli_option opts[] = {
        CLI_OPT_OUT,
        {"width", CLI_INT, "N", "grid width in pixels", "64", 2, 65536, 0, 0, 0, NULL},
        {"height", CLI_INT, "N", "grid height in pixels", "64", 2, 65536, 0, 0, 0, NULL},
        {"points", CLI_INT, "N", "points per loop (a multiple of 4)", "64", 8, 100000, 0, 0, 0, NULL},
        {"vmax", CLI_FLOAT, "V", "bias amplitude in volts", "5", 1e-6, 1e6, 0, 0, 0, NULL},
        {"noise", CLI_FLOAT, "F", "Gaussian noise on the response (c-domain saturation = 1)", "0.03", 0, 10, 0, 0, 0, NULL},
        {"period", CLI_FLOAT, "PX", "a/c stripe period in pixels", "16", 6, 1e5, 0, 0, 0, NULL},
        {"angle", CLI_FLOAT, "DEG", "stripe direction in degrees from +x towards +y", "30", -360, 360, 0, 0, 0, NULL},
        CLI_OPT_SEED,
        CLI_OPT_THREADS,
        CLI_OPT_MEMORY,
        CLI_OPT_JSON,
        CLI_OPT_END};
    int rc = cli_parse(LOOPS_SYNTH_CMD, opts, argc, argv);
    if (rc == CLI_HELP) {
        cli_print_help(stdout, LOOPS_SYNTH_CMD, description, opts, outputs);
        return CLI_EXIT_OK;
    }
    if (rc != 0) return rc;
    const char *out = cli_str(opts, "out");
    if (!out) return cli_usage_error(LOOPS_SYNTH_CMD, "--out DIR is required");
    fl_synth_loops_params p = d;
    p.width = cli_int(opts, "width");
    p.height = cli_int(opts, "height");
    p.points = (int32_t)cli_int(opts, "points");
    p.vmax = cli_float(opts, "vmax");
    p.noise = cli_float(opts, "noise");
    p.period = cli_float(opts, "period");
    p.angle = cli_float(opts, "angle");
    p.seed = (uint64_t)cli_int(opts, "seed");
    if (p.points % 4 != 0)
        return cli_usage_error(LOOPS_SYNTH_CMD, "option --points must be a multiple of 4 (the sweep 0 -> +vmax -> -vmax -> 0), got %d",
                               (int)p.points);
    int json = cli_flag(opts, "json");

    char loops_path[CLI_PATH_MAX], struct_path[CLI_PATH_MAX], truth_path[CLI_PATH_MAX], summary_path[CLI_PATH_MAX];
    if (cli_path_join(loops_path, sizeof loops_path, out, "loops_grid.tif") ||
        cli_path_join(struct_path, sizeof struct_path, out, "loops_structure.tif") ||
        cli_path_join(truth_path, sizeof truth_path, out, "loops_truth.tif") ||
        cli_path_join(summary_path, sizeof summary_path, out, "summary.json"))
        return CLI_EXIT_FAIL;

    fl_ctx *ctx = cli_ctx_new(opts);
    if (!ctx) return CLI_EXIT_FAIL;
    fl_image loops, structure, truth;
    fl_image_init(&loops);
    fl_image_init(&structure);
    fl_image_init(&truth);
    fl_status st = fl_synth_loops(ctx, &p, &loops, &structure, &truth);
    if (st != FL_OK) {
        rc = cli_engine_error(ctx);
        goto done;
    }
    if (cli_mkdirs(out) != 0) {
        rc = CLI_EXIT_FAIL;
        goto done;
    }
    st = fl_tiff_write(ctx, loops_path, &loops);
    if (st == FL_OK) st = fl_tiff_write(ctx, struct_path, &structure);
    if (st == FL_OK) st = fl_tiff_write(ctx, truth_path, &truth);
    if (st != FL_OK) {
        rc = cli_engine_error(ctx);
        goto done;
    }

    const int64_t npix = p.width * p.height;
    int64_t n_c = 0, n_wall = 0;
    double mean_desc[FL_LOOP_NDESC];
    for (int k = 0; k < FL_LOOP_NDESC; k++) {
        double s = 0.0;
        int64_t c = 0;
        for (int64_t i = 0; i < npix; i++) {
            float v = truth.data[(int64_t)(FL_SYNTH_LOOPS_TRUTH_DESC0 + k) * npix + i];
            if (isfinite(v)) s += v, c++;
        }
        mean_desc[k] = c ? s / (double)c : NAN;
    }
    for (int64_t i = 0; i < npix; i++) {
        n_c += truth.data[FL_SYNTH_LOOPS_TRUTH_DOMAIN * npix + i] > 0.5f;
        n_wall += truth.data[FL_SYNTH_LOOPS_TRUTH_DISTANCE * npix + i] < 1.0f;
    }
    cli_json j;
    cli_json_begin(&j);
    cli_json_str(&j, "command", LOOPS_SYNTH_CMD);
    cli_json_str(&j, "version", FL_VERSION_STRING);
    cli_json_str(&j, "out", out);
    cli_json_raw(&j, "files",
                 "{\"loops\":\"loops_grid.tif\",\"structure\":\"loops_structure.tif\",\"truth\":\"loops_truth.tif\","
                 "\"summary\":\"summary.json\"}");
    cli_json_int(&j, "width", p.width);
    cli_json_int(&j, "height", p.height);
    cli_json_int(&j, "points", p.points);
    cli_json_num(&j, "vmax", p.vmax);
    cli_json_str(&j, "waveform", "triangle 0 -> +vmax -> -vmax -> 0");
    cli_json_str(&j, "axis_unit", "V");
    cli_json_num(&j, "noise", p.noise);
    cli_json_num(&j, "period", p.period);
    cli_json_num(&j, "angle_deg", p.angle);
    cli_json_num(&j, "a_fraction", p.a_fraction);
    cli_json_num(&j, "meander_amplitude", p.meander_amplitude);
    cli_json_num(&j, "meander_wavelength", p.meander_wavelength);
    cli_json_num(&j, "wall_width", p.wall_width);
    cli_json_num(&j, "structure_noise", p.structure_noise);
    cli_json_num(&j, "pixel_size_um", p.pixel_size);
    cli_json_int(&j, "seed", (int64_t)p.seed);
    cli_json_num(&j, "fraction_c_domain", (double)n_c / (double)npix);
    cli_json_num(&j, "fraction_within_1px_of_wall", (double)n_wall / (double)npix);
    fl_strbuf b;
    fl_strbuf_init(&b);
    fl_strbuf_append(&b, "{", 1);
    for (int k = 0; k < FL_LOOP_NDESC; k++) {
        if (k) fl_strbuf_append(&b, ",", 1);
        fl_strbuf_json_string(&b, fl_loop_desc_name(k));
        if (isfinite(mean_desc[k])) fl_strbuf_printf_c(&b, ":%.9g", mean_desc[k]);
        else fl_strbuf_append(&b, ":null", 5);
    }
    fl_strbuf_append(&b, "}", 1);
    cli_json_raw(&j, "truth_descriptor_means", b.failed ? "null" : b.data);
    fl_strbuf_free(&b);
    cli_json_end(&j);
    rc = cli_json_emit(&j, json, summary_path);
    cli_json_free(&j);
    if (rc == 0 && !json)
        fprintf(stderr, "ferrolens: wrote %s, %s and %s (%lld x %lld pixels, %d points, +-%g V)\n", loops_path, struct_path,
                truth_path, (long long)p.width, (long long)p.height, (int)p.points, p.vmax);

done:
    fl_image_free(&loops);
    fl_image_free(&structure);
    fl_image_free(&truth);
    fl_ctx_free(ctx);
    return rc;
}
