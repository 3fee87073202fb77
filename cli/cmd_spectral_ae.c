/* TEMPORARY stub: the colleague working on family 1 replaces this file with the real command. */
#include "cli.h"

int cmd_spectral_ae(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "ferrolens: spectral-ae: not implemented\n");
    return 2;
}
