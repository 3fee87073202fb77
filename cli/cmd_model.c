/* TEMPORARY stub: the colleague working on model files replaces this file with the real command. */
#include "cli.h"

int cmd_model(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "ferrolens: model: not implemented\n");
    return 2;
}
