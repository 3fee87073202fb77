/* 4D-STEM input options shared by `ferrolens stem` and `ferrolens diffraction-ae` (cli_stem.c). */
#ifndef FL_CLI_STEM_H
#define FL_CLI_STEM_H

#include "cli.h"
#include "ferrolens/stem.h"

#define CLI_STEM_FILE_HELP                                                                                    \
    "Input: --input FILE (TIFF/BigTIFF hyperstack: detector pattern = image, scan x on Z, scan y on T; the\n"  \
    "scan shape comes from the ImageJ description or --scan XxY), or --raw FILE with --detector WxH --scan XxY\n" \
    "--dtype u8|u16|i16|u32|i32|f32|f64 [--offset BYTES] [--big] (the file size must match exactly).\n"

#define CLI_STEM_FILE_OPTS                                                                                               \
    {"input", CLI_STRING, "FILE", "input TIFF hyperstack", NULL, 0, 0, 0, 0, 0, NULL},                                   \
    {"raw", CLI_STRING, "FILE", "raw input file (needs --detector, --scan, --dtype)", NULL, 0, 0, 0, 0, 0, NULL},        \
    {"detector", CLI_STRING, "WxH", "detector size of a raw file", NULL, 0, 0, 0, 0, 0, NULL},                           \
    {"scan", CLI_STRING, "XxY", "scan size (raw file; overrides the TIFF description)", NULL, 0, 0, 0, 0, 0, NULL},     \
    {"dtype", CLI_STRING, "TYPE", "raw sample type: u8 u16 i16 u32 i32 f32 f64", NULL, 0, 0, 0, 0, 0, NULL},             \
    {"offset", CLI_INT, "BYTES", "raw header bytes to skip", "0", 0, 9.2e18, 0, 0, 0, NULL},                             \
    {"little", CLI_FLAG, NULL, "raw samples are little-endian (default)", NULL, 0, 0, 0, 0, 0, NULL},                    \
    {"big", CLI_FLAG, NULL, "raw samples are big-endian", NULL, 0, 0, 0, 0, 0, NULL}

/* "32x24" -> a, b (both >= 1); 1 on success. */
int cli_parse_size_pair(const char *s, int64_t *a, int64_t *b);
/* Opens the source named by CLI_STEM_FILE_OPTS; usage errors return 2 (printed), engine errors 1. */
int cli_stem_open(const char *cmd, const cli_option *opts, fl_ctx *ctx, fl_stem4d **src);

#endif
