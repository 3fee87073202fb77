/* ferrolens <group> <action> [options]: dispatch to one command per group. */
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

static void usage(FILE *f)
{
    fprintf(f, "Usage: ferrolens <group> <action> [options]\n\n"
               "Deep-learning analysis of ferroic microscopy data (Ferrolens %s).\n\nGroups:\n",
            FL_VERSION_STRING);
    for (size_t i = 0; i < NGROUPS; i++)
        fprintf(f, "  %-15s %s%s\n", groups[i].name, groups[i].summary, groups[i].fn ? "" : " (not available in this version)");
    fprintf(f, "\nCommon options: --input FILE --out DIR --model FILE --seed N --threads N --epochs N\n"
               "                --memory MiB --json (one JSON summary object on stdout)\n"
               "\n'ferrolens <group> --help' lists the actions of a group; 'ferrolens --version' the version.\n"
               "Exit codes: 0 success, 1 failure, 2 usage error.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *g = argv[1];
    if (!strcmp(g, "--help") || !strcmp(g, "-h") || !strcmp(g, "help")) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (!strcmp(g, "--version") || !strcmp(g, "-V")) {
        printf("ferrolens %s (model format %d)\n", FL_VERSION_STRING, FL_MODEL_FORMAT_VERSION);
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < NGROUPS; i++) {
        if (strcmp(g, groups[i].name) != 0) continue;
        if (!groups[i].fn) {
            fprintf(stderr, "ferrolens: '%s' is not available in this version\n", g);
            return CLI_EXIT_USAGE;
        }
        if (argc < 3) {
            fprintf(stderr, "ferrolens: %s: no action given\nTry 'ferrolens %s --help'.\n", g, g);
            return CLI_EXIT_USAGE;
        }
        return groups[i].fn(argc - 2, argv + 2);
    }
    const char *names[NGROUPS + 1];
    for (size_t i = 0; i < NGROUPS; i++) names[i] = groups[i].name;
    names[NGROUPS] = NULL;
    const char *m = cli_best_match(g, names);
    if (m) fprintf(stderr, "ferrolens: unknown command '%s'; did you mean '%s'?\n", g, m);
    else fprintf(stderr, "ferrolens: unknown command '%s'\n", g);
    fprintf(stderr, "Try 'ferrolens --help'.\n");
    return CLI_EXIT_USAGE;
}
