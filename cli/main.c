/* ferrolens <group> <action> [options]: the program entry; dispatch.c finds the command. */
#include "cli.h"

#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "Usage: ferrolens <group> <action> [options]\n\n"
               "Deep-learning analysis of ferroic microscopy data (Ferrolens %s).\n\nGroups:\n",
            FL_VERSION_STRING);
    cli_print_groups(f);
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
    return cli_run(argc - 1, argv + 1);
}
