/* "<group> <action> [options]" to the command of the group: used by main.c and by the JNI glue,
 * which runs commands in-process for the Fiji plugin. */
#include "cli.h"

#include <string.h>

typedef struct cli_group {
    const char *name;
    int (*fn)(int argc, char **argv); /* NULL: not available in this version */
    const char *summary;
} cli_group;

static const cli_group groups[] = {
    {"spectral-ae", cmd_spectral_ae, "sparse LSTM autoencoder on grids of curves (I(V), loops)"},
    {"im2spec", cmd_im2spec, "predict spectra from image patches"},
    {"spec2im", cmd_spec2im, "predict image patches from spectra"},
    {"decompose", cmd_decompose, "PCA / NMF baselines of a grid of curves"},
    {"latent", cmd_latent, "clustering and traversal of latent spaces"},
    {"diffraction-ae", cmd_diffraction_ae, "4D-STEM diffraction autoencoder"},
    {"stem", cmd_stem, "4D-STEM tools: centre of mass, virtual detectors"},
    {"walls", cmd_walls, "domain-wall ensemble segmentation of PFM images"},
    {"loops", cmd_loops, "hysteresis-loop descriptors"},
    {"model", cmd_model, "inspect, convert and import model files"},
    {"synth", cmd_synth, "synthetic data sets with ground truth"},
    {"bench", NULL, "benchmarks"},
};
#define NGROUPS (sizeof groups / sizeof groups[0])

void cli_print_groups(FILE *f)
{
    for (size_t i = 0; i < NGROUPS; i++)
        fprintf(f, "  %-15s %s%s\n", groups[i].name, groups[i].summary, groups[i].fn ? "" : " (not available in this version)");
}

int cli_run(int argc, char **argv)
{
    if (argc < 1) return cli_usage_error(NULL, "no command given");
    const char *g = argv[0];
    for (size_t i = 0; i < NGROUPS; i++) {
        if (strcmp(g, groups[i].name) != 0) continue;
        if (!groups[i].fn) return cli_usage_error(NULL, "'%s' is not available in this version", g);
        if (argc < 2) return cli_usage_error(g, "no action given");
        return groups[i].fn(argc - 1, argv + 1);
    }
    const char *names[NGROUPS + 1];
    for (size_t i = 0; i < NGROUPS; i++) names[i] = groups[i].name;
    names[NGROUPS] = NULL;
    const char *m = cli_best_match(g, names);
    if (m) return cli_usage_error(NULL, "unknown command '%s'; did you mean '%s'?", g, m);
    return cli_usage_error(NULL, "unknown command '%s'", g);
}
