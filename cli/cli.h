/* The `ferrolens` command-line program: shared helpers for every sub-command.
 *
 *   ferrolens <group> <action> [options]
 *
 * dispatch.c sends <group> to `int cmd_<group>(int argc, char **argv)` with argv[0] = the action
 * (or "--help"); each command returns the process exit code:
 *   0 success, 1 failure while working (engine error, file not readable, ...), 2 usage error.
 *
 * Output rules: results go to files under --out; with --json exactly one JSON object (one line) goes
 * to stdout and nothing else; progress and messages always go to stderr.
 *
 * Typical command:
 *
 *   static cli_option opts[] = {
 *       CLI_OPT_OUT,
 *       {"width", CLI_INT, "N", "grid width in pixels", "64", 2, 65536},
 *       CLI_OPT_SEED, CLI_OPT_THREADS, CLI_OPT_JSON, CLI_OPT_MEMORY,
 *       CLI_OPT_END
 *   };
 *   int rc = cli_parse("synth iv-grid", opts, argc - 1, argv + 1);   // argv[0] is the action
 *   if (rc == CLI_HELP) { cli_print_help(stdout, "synth iv-grid", "what it does", opts, "outputs..."); return 0; }
 *   if (rc != 0) return rc;                                           // 2, message printed
 *   int64_t w = cli_int(opts, "width");
 *   fl_ctx *ctx = cli_ctx_new(opts);                                  // --threads, --memory applied
 *   ...
 *   if (st != FL_OK) { rc = cli_engine_error(ctx); ... }             // "ferrolens: error: <msg>", 1
 */
#ifndef FL_CLI_H
#define FL_CLI_H

#include "ferrolens/ferrolens.h"
#include "io/json.h"
#include "io/tiff.h"

#include <stdint.h>
#include <stdio.h>

#define CLI_HELP (-1)   /* cli_parse: --help was given */
#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2
#define CLI_PATH_MAX 4096

typedef enum cli_kind { CLI_NONE = 0, CLI_INT, CLI_FLOAT, CLI_STRING, CLI_FLAG } cli_kind;

typedef struct cli_option {
    const char *name;    /* without the leading "--"; NULL ends the table */
    cli_kind kind;
    const char *metavar; /* "N", "FILE", ... shown in --help (ignored for flags) */
    const char *help;
    const char *def;     /* default as text (parsed like a command-line value); NULL: none */
    double min, max;     /* range check for CLI_INT / CLI_FLOAT when min < max (inclusive) */
    /* filled by cli_parse */
    int set;             /* given on the command line */
    int64_t i;
    double f;
    const char *s;       /* points into argv or to def */
} cli_option;

/* Common options (DESIGN.md "The command-line contract"). */
#define CLI_OPT_INPUT {"input", CLI_STRING, "FILE", "input TIFF hyperstack", NULL, 0, 0, 0, 0, 0, NULL}
#define CLI_OPT_OUT {"out", CLI_STRING, "DIR", "output directory (created if missing)", NULL, 0, 0, 0, 0, 0, NULL}
#define CLI_OPT_MODEL {"model", CLI_STRING, "FILE", "model file (.safetensors)", NULL, 0, 0, 0, 0, 0, NULL}
#define CLI_OPT_SEED {"seed", CLI_INT, "N", "random seed (same seed and threads: same result)", "1", 0, 9.2e18, 0, 0, 0, NULL}
/* at most 256: 4096 threads on a 2-core machine took 14 s and 2.8 GB for a 4 x 4 grid (issue 6 sweep) */
#define CLI_OPT_THREADS {"threads", CLI_INT, "N", "worker threads (0: all cores)", "0", 0, 256, 0, 0, 0, NULL}
#define CLI_OPT_EPOCHS {"epochs", CLI_INT, "N", "training epochs", NULL, 1, 1e9, 0, 0, 0, NULL}
#define CLI_OPT_JSON {"json", CLI_FLAG, NULL, "print one JSON summary object on stdout (progress stays on stderr)", NULL, 0, 0, 0, 0, 0, NULL}
#define CLI_OPT_MEMORY {"memory", CLI_INT, "MiB", "native memory budget in MiB (0: no limit)", "0", 0, 1e9, 0, 0, 0, NULL}
#define CLI_OPT_END {NULL, CLI_NONE, NULL, NULL, NULL, 0, 0, 0, 0, 0, NULL}

/* Parse argv[0..argc-1] (options only: "--name value", "--name=value", flags "--name").
 * Defaults are applied first. Returns 0, CLI_HELP for --help/-h, or 2 after printing a usage error
 * to stderr: unknown option (with a "did you mean" suggestion), missing value, bad number (naming
 * the option and the value), out of range, unexpected positional argument. `cmd` is the command as
 * the user typed it ("synth iv-grid") for messages. */
int cli_parse(const char *cmd, cli_option *opts, int argc, char **argv);

/* Defaults taken from an engine config at run time: d[i].v printed ("%.0f" when isint, else "%g") into
 * buf[i] (storage that outlives the table, n rows) and set as the default of option d[i].name. */
typedef struct cli_default {
    const char *name;
    double v;
    int isint;
} cli_default;
void cli_set_defaults(cli_option *opts, const cli_default *d, size_t n, char (*buf)[32]);

/* Print "Usage: ferrolens <cmd> [options]", the description, the option table with defaults and
 * ranges, and `outputs` (free text, may be NULL) to `f`. */
void cli_print_help(FILE *f, const char *cmd, const char *description, const cli_option *opts, const char *outputs);

/* Look-ups by name (a name not in the table is a programming error: returns 0 / NULL). */
cli_option *cli_find(cli_option *opts, const char *name);
int64_t cli_int(const cli_option *opts, const char *name);
double cli_float(const cli_option *opts, const char *name);
const char *cli_str(const cli_option *opts, const char *name);  /* NULL when not given and no default */
int cli_flag(const cli_option *opts, const char *name);
int cli_is_set(const cli_option *opts, const char *name);

/* "ferrolens: <cmd>: error: <message>" + "Try 'ferrolens <cmd> --help'." on stderr; returns 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "ferrolens: error: <fl_ctx_message(ctx)>" on stderr; returns 1. */
int cli_engine_error(const fl_ctx *ctx);
/* "ferrolens: error: <message>" on stderr; returns 1. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The index of `value` in `names` (NULL-ended), or -1 after a usage error for option --opt naming the
 * closest value. */
int cli_choice(const char *cmd, const char *opt, const char *value, const char *const *names);

/* Levenshtein distance (for suggestions). best_match returns the closest of `names` (NULL-ended)
 * when it is close enough to be a useful suggestion, else NULL. */
int cli_edit_distance(const char *a, const char *b);
const char *cli_best_match(const char *word, const char *const *names);

/* A context with --threads and --memory (MiB) applied when those options are in the table, and a
 * progress printer on stderr. NULL (message printed) when out of memory. */
fl_ctx *cli_ctx_new(const cli_option *opts);

/* mkdir -p; returns 0, or -1 with a message printed ("ferrolens: error: cannot create ..."). */
int cli_mkdirs(const char *path);
/* dir + "/" + name into buf (cap bytes); returns 0, or -1 when it does not fit (message printed). */
int cli_path_join(char *buf, size_t cap, const char *dir, const char *name);
/* The same for commands in the shared frame: nothing printed, FL_EINVAL with the message in ctx. */
fl_status cli_out_path(fl_ctx *ctx, char *buf, size_t cap, const char *dir, const char *name);

/* fl_tiff_write of img to dir/name; a path that does not fit fails with FL_EINVAL (message in ctx). */
fl_status cli_write_tiff(fl_ctx *ctx, const char *dir, const char *name, const fl_image *img);

/* One-line JSON summary object:
 *   cli_json j; cli_json_begin(&j);
 *   cli_json_str(&j, "command", "synth iv-grid"); cli_json_int(&j, "width", 64); ...
 *   cli_json_end(&j);  then cli_json_emit(&j, stdout_wanted, path_or_NULL) and cli_json_free(&j).
 * Non-finite numbers are written as null. cli_json_raw inserts an already-encoded JSON value. */
typedef struct cli_json {
    fl_strbuf b;
    int count;
    size_t out_created; /* cli_command_start: length of the prefix of --out it created (0: none) */
} cli_json;
void cli_json_begin(cli_json *j);
void cli_json_str(cli_json *j, const char *key, const char *value);  /* NULL value -> null */
void cli_json_int(cli_json *j, const char *key, int64_t value);
void cli_json_num(cli_json *j, const char *key, double value);
void cli_json_bool(cli_json *j, const char *key, int value);
void cli_json_raw(cli_json *j, const char *key, const char *json);
void cli_json_num_array(cli_json *j, const char *key, const double *v, int64_t n);
void cli_json_end(cli_json *j);
/* Print the object + "\n" to stdout when to_stdout, and write it to `path` when not NULL.
 * Returns 0, or 1 with a message printed. */
int cli_json_emit(cli_json *j, int to_stdout, const char *path);
void cli_json_free(cli_json *j);

/* The frame of a command that writes into --out: cli_command_start makes the context (cli_ctx_new),
 * creates `out` and begins the JSON summary with "command"; NULL after a printed error.
 * cli_command_finish reports st (when not FL_OK), else ends the summary and writes out/summary.json
 * (and stdout with --json); frees ctx and j; returns the exit code. */
fl_ctx *cli_command_start(const char *cmd, const cli_option *opts, const char *out, cli_json *j);
/* Ends the summary and writes out/summary.json (and stdout with --json); j stays the caller's to free. */
int cli_summary_write(cli_json *j, const cli_option *opts, const char *out);
int cli_command_finish(fl_ctx *ctx, fl_status st, cli_json *j, const cli_option *opts, const char *out);

/* Running commands inside another program (the JNI glue): progress goes to the host's hook instead
 * of stderr, and the first error sentence is copied into `message`. Set per thread; NULL resets. */
typedef struct cli_host {
    fl_progress_fn progress;
    void *user;
    char *message;
    size_t message_cap;
} cli_host;
void cli_set_host(const cli_host *host);

/* Dispatch "<group> <action> [options]" (argv[0] = group) to its command; returns the exit code. */
int cli_run(int argc, char **argv);
void cli_print_groups(FILE *f); /* the group list of --help */

/* Commands (one file each). */
int cmd_spectral_ae(int argc, char **argv);
int cmd_model(int argc, char **argv);
int cmd_synth(int argc, char **argv);

int cmd_im2spec(int argc, char **argv);
int cmd_spec2im(int argc, char **argv);
int cmd_decompose(int argc, char **argv);
int cmd_latent(int argc, char **argv);
int cmd_diffraction_ae(int argc, char **argv);
int cmd_stem(int argc, char **argv);
int cmd_walls(int argc, char **argv);
int cmd_loops(int argc, char **argv);
/* synth actions in their own files (synth_<name>.c) */
int cmd_synth_loops(int argc, char **argv);
int cmd_synth_stem4d(int argc, char **argv);
int cmd_synth_pfm_walls(int argc, char **argv);
/* walls actions of the segmentation network (cmd_walls_model.c) */
int cmd_walls_train(int argc, char **argv);
int cmd_walls_retrain(int argc, char **argv);
int cmd_walls_apply(int argc, char **argv);
int cmd_walls_live(int argc, char **argv);

#endif
