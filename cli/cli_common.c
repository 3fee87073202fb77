/* Shared helpers of the `ferrolens` program: option parsing, errors, output directory, JSON summary. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* ---- messages ------------------------------------------------------------------------------------ */

/* The host that runs commands in-process (the Fiji plugin), per thread: ImageJ may run two commands
 * at once, each on its own thread. */
static _Thread_local const cli_host *current_host;

void cli_set_host(const cli_host *host) { current_host = host; }

/* Keeps the first error sentence for the host (without the "ferrolens: " decoration). */
static void host_message(const char *fmt, va_list ap)
{
    if (!current_host || !current_host->message || current_host->message[0]) return;
    vsnprintf(current_host->message, current_host->message_cap, fmt, ap);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    va_list aq;
    va_copy(aq, ap);
    host_message(fmt, aq);
    va_end(aq);
    fprintf(stderr, "ferrolens: %s%serror: ", cmd ? cmd : "", cmd ? ": " : "");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'ferrolens %s%s--help'.\n", cmd ? cmd : "", cmd ? " " : "");
    va_end(ap);
    return CLI_EXIT_USAGE;
}

int cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    va_list aq;
    va_copy(aq, ap);
    host_message(fmt, aq);
    va_end(aq);
    fprintf(stderr, "ferrolens: error: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return CLI_EXIT_FAIL;
}

int cli_engine_error(const fl_ctx *ctx)
{
    const char *m = ctx ? fl_ctx_message(ctx) : "";
    return cli_error("%s", m && m[0] ? m : "unknown failure");
}

/* ---- suggestions --------------------------------------------------------------------------------- */

int cli_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return (int)(la > lb ? la : lb);
    int d[64][64];
    for (size_t i = 0; i <= la; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int c = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < c) c = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < c) c = d[i][j - 1] + 1;
            d[i][j] = c;
        }
    return d[la][lb];
}

const char *cli_best_match(const char *word, const char *const *names)
{
    const char *best = NULL;
    int bd = 1 << 30;
    size_t wl = strlen(word);
    for (size_t i = 0; names[i]; i++) {
        int d = cli_edit_distance(word, names[i]);
        /* a prefix of a longer name is a good guess too */
        if (wl >= 3 && strncmp(word, names[i], wl) == 0) d = 1;
        if (d < bd) {
            bd = d;
            best = names[i];
        }
    }
    int limit = wl <= 3 ? 1 : wl <= 6 ? 2 : 3;
    return bd <= limit ? best : NULL;
}

int cli_choice(const char *cmd, const char *opt, const char *value, const char *const *names)
{
    for (int i = 0; names[i]; i++)
        if (strcmp(value, names[i]) == 0) return i;
    const char *near = cli_best_match(value, names);
    cli_usage_error(cmd, "--%s: unknown value '%s'%s%s%s", opt, value, near ? " (did you mean '" : "", near ? near : "",
                    near ? "'?)" : "");
    return -1;
}

/* ---- option table -------------------------------------------------------------------------------- */

cli_option *cli_find(cli_option *opts, const char *name)
{
    for (cli_option *o = opts; o && o->name; o++)
        if (strcmp(o->name, name) == 0) return o;
    return NULL;
}

static const cli_option *find_c(const cli_option *opts, const char *name)
{
    return cli_find((cli_option *)opts, name);
}

int64_t cli_int(const cli_option *opts, const char *name)
{
    const cli_option *o = find_c(opts, name);
    return o ? o->i : 0;
}

double cli_float(const cli_option *opts, const char *name)
{
    const cli_option *o = find_c(opts, name);
    return o ? o->f : 0.0;
}

const char *cli_str(const cli_option *opts, const char *name)
{
    const cli_option *o = find_c(opts, name);
    return o ? o->s : NULL;
}

int cli_flag(const cli_option *opts, const char *name)
{
    const cli_option *o = find_c(opts, name);
    return o ? (int)o->i : 0;
}

int cli_is_set(const cli_option *opts, const char *name)
{
    const cli_option *o = find_c(opts, name);
    return o ? o->set : 0;
}

/* Convert `text` into option `o`; returns 0 or prints a usage error and returns 2. */
static int set_value(const char *cmd, cli_option *o, const char *text)
{
    char *end = NULL;
    switch (o->kind) {
    case CLI_INT: {
        errno = 0;
        long long v = strtoll(text, &end, 10);
        if (end == text || *end != '\0' || errno == ERANGE) {
            /* allow integral floats such as 1e3 */
            char *e2 = NULL;
            double d = strtod(text, &e2);
            if (e2 != text && *e2 == '\0' && isfinite(d) && d == floor(d) && fabs(d) < 9.2e18) {
                v = (long long)d;
            } else {
                return cli_usage_error(cmd, "option --%s expects a whole number, got '%s'", o->name, text);
            }
        }
        if (o->min < o->max && ((double)v < o->min || (double)v > o->max))
            return cli_usage_error(cmd, "option --%s must be between %.15g and %.15g, got %s", o->name, o->min, o->max, text);
        o->i = v;
        o->f = (double)v;
        o->s = text;
        return 0;
    }
    case CLI_FLOAT: {
        errno = 0;
        double v = strtod(text, &end);
        if (end == text || *end != '\0' || !isfinite(v))
            return cli_usage_error(cmd, "option --%s expects a number, got '%s'", o->name, text);
        if (o->min < o->max && (v < o->min || v > o->max))
            return cli_usage_error(cmd, "option --%s must be between %g and %g, got %s", o->name, o->min, o->max, text);
        o->f = v;
        o->i = (int64_t)v;
        o->s = text;
        return 0;
    }
    case CLI_STRING:
        o->s = text;
        return 0;
    case CLI_FLAG:
        if (!strcmp(text, "1") || !strcmp(text, "true") || !strcmp(text, "yes") || !strcmp(text, "on")) o->i = 1;
        else if (!strcmp(text, "0") || !strcmp(text, "false") || !strcmp(text, "no") || !strcmp(text, "off")) o->i = 0;
        else return cli_usage_error(cmd, "option --%s is a switch; use --%s or --%s=false, not '%s'", o->name, o->name, o->name, text);
        return 0;
    default:
        return cli_usage_error(cmd, "option --%s is not usable", o->name);
    }
}

int cli_parse(const char *cmd, cli_option *opts, int argc, char **argv)
{
    /* defaults */
    for (cli_option *o = opts; o->name; o++) {
        o->set = 0;
        o->i = 0;
        o->f = 0.0;
        o->s = NULL;
        if (o->def && o->kind != CLI_FLAG) {
            if (set_value(cmd, o, o->def) != 0) return CLI_EXIT_USAGE; /* a bad table: message printed */
        }
    }
    for (int a = 0; a < argc; a++) {
        const char *arg = argv[a];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) return CLI_HELP;
    }
    for (int a = 0; a < argc; a++) {
        const char *arg = argv[a];
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0')
            return cli_usage_error(cmd, "unexpected argument '%s' (options start with --)", arg);
        char name[128];
        const char *eq = strchr(arg + 2, '=');
        size_t nl = eq ? (size_t)(eq - (arg + 2)) : strlen(arg + 2);
        if (nl >= sizeof name) return cli_usage_error(cmd, "unknown option '%.40s...'", arg);
        memcpy(name, arg + 2, nl);
        name[nl] = '\0';
        cli_option *o = cli_find(opts, name);
        if (!o) {
            const char *names[128];
            size_t k = 0;
            for (cli_option *p = opts; p->name && k < 127; p++) names[k++] = p->name;
            names[k] = NULL;
            const char *m = cli_best_match(name, names);
            if (m) return cli_usage_error(cmd, "unknown option '--%s'; did you mean '--%s'?", name, m);
            return cli_usage_error(cmd, "unknown option '--%s'", name);
        }
        const char *val;
        if (o->kind == CLI_FLAG) {
            if (eq) {
                if (set_value(cmd, o, eq + 1)) return CLI_EXIT_USAGE;
            } else {
                o->i = 1;
            }
            o->set = 1;
            continue;
        }
        if (eq) {
            val = eq + 1;
        } else {
            if (a + 1 >= argc) return cli_usage_error(cmd, "option --%s needs a value", o->name);
            val = argv[++a];
            if (strncmp(val, "--", 2) == 0)
                return cli_usage_error(cmd, "option --%s needs a value (got the option '%s')", o->name, val);
        }
        if (o->kind == CLI_STRING && val[0] == '\0') return cli_usage_error(cmd, "option --%s needs a non-empty value", o->name);
        if (set_value(cmd, o, val)) return CLI_EXIT_USAGE;
        o->set = 1;
    }
    return 0;
}

void cli_set_defaults(cli_option *opts, const cli_default *d, size_t n, char (*buf)[32])
{
    for (size_t i = 0; i < n; i++) {
        snprintf(buf[i], sizeof buf[i], d[i].isint ? "%.0f" : "%g", d[i].v);
        cli_find(opts, d[i].name)->def = buf[i];
    }
}

void cli_print_help(FILE *f, const char *cmd, const char *description, const cli_option *opts, const char *outputs)
{
    fprintf(f, "Usage: ferrolens %s [options]\n\n", cmd);
    if (description) fprintf(f, "%s\n\n", description);
    fprintf(f, "Options:\n");
    for (const cli_option *o = opts; o->name; o++) {
        char left[64];
        if (o->kind == CLI_FLAG || !o->metavar) snprintf(left, sizeof left, "--%s", o->name);
        else snprintf(left, sizeof left, "--%s %s", o->name, o->metavar);
        fprintf(f, "  %-22s %s", left, o->help ? o->help : "");
        if (o->def && o->kind != CLI_FLAG) fprintf(f, " [default %s]", o->def);
        if ((o->kind == CLI_INT || o->kind == CLI_FLOAT) && o->min < o->max && o->max < 1e9)
            fprintf(f, " (%g..%g)", o->min, o->max);
        fprintf(f, "\n");
    }
    fprintf(f, "  %-22s %s\n", "--help", "show this help");
    if (outputs) fprintf(f, "\n%s\n", outputs);
}

/* ---- context ------------------------------------------------------------------------------------- */

static int stderr_progress(void *user, const char *stage, int64_t done, int64_t total, double loss, double val_loss)
{
    (void)user;
    if (!isatty(2)) return 0;
    if (isfinite(loss) && isfinite(val_loss))
        fprintf(stderr, "\r%s %lld/%lld  loss %.5g  val %.5g   ", stage, (long long)done, (long long)total, loss, val_loss);
    else if (isfinite(loss))
        fprintf(stderr, "\r%s %lld/%lld  loss %.5g   ", stage, (long long)done, (long long)total, loss);
    else
        fprintf(stderr, "\r%s %lld/%lld   ", stage, (long long)done, (long long)total);
    if (done >= total) fprintf(stderr, "\n");
    return 0;
}

fl_ctx *cli_ctx_new(const cli_option *opts)
{
    fl_ctx *ctx = fl_ctx_new();
    if (!ctx) {
        cli_error("out of memory");
        return NULL;
    }
    if (opts && find_c(opts, "threads")) fl_ctx_set_threads(ctx, (int)cli_int(opts, "threads"));
    if (opts && find_c(opts, "memory")) {
        int64_t mib = cli_int(opts, "memory");
        fl_ctx_set_memory_budget(ctx, mib > 0 ? (size_t)mib * 1048576u : 0);
    }
    if (current_host && current_host->progress) fl_ctx_set_progress(ctx, current_host->progress, current_host->user);
    else fl_ctx_set_progress(ctx, stderr_progress, NULL);
    return ctx;
}

/* ---- files --------------------------------------------------------------------------------------- */

/* cli_mkdirs; *created (may be NULL) receives the length of the shortest prefix of path that this call
 * created (0 when every component existed already). */
static int mkdirs_created(const char *path, size_t *created);

int cli_mkdirs(const char *path) { return mkdirs_created(path, NULL); }

static int mkdirs_created(const char *path, size_t *created)
{
    if (created) *created = 0;
    if (!path || !path[0]) {
        cli_error("no output directory given");
        return -1;
    }
    char buf[CLI_PATH_MAX];
    size_t n = strlen(path);
    if (n >= sizeof buf) {
        cli_error("output directory path is too long");
        return -1;
    }
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0777) == 0) {
                if (created && *created == 0) *created = i;
            } else if (errno != EEXIST) {
                cli_error("cannot create directory '%s': %s", buf, strerror(errno));
                return -1;
            }
            buf[i] = c;
        }
    }
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        cli_error("'%s' exists and is not a directory", path);
        return -1;
    }
    return 0;
}

/* dir/name into buf; -1 when it does not fit */
static int join_path(char *buf, size_t cap, const char *dir, const char *name)
{
    size_t dl = strlen(dir);
    int slash = dl > 0 && dir[dl - 1] == '/';
    int n = snprintf(buf, cap, "%s%s%s", dir, slash || dl == 0 ? "" : "/", name);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int cli_path_join(char *buf, size_t cap, const char *dir, const char *name)
{
    if (join_path(buf, cap, dir, name) == 0) return 0;
    cli_error("path too long: %s/%s", dir, name);
    return -1;
}

fl_status cli_out_path(fl_ctx *ctx, char *buf, size_t cap, const char *dir, const char *name)
{
    return join_path(buf, cap, dir, name) ? fl_fail(ctx, FL_EINVAL, "the output path %s/%s is too long", dir, name) : FL_OK;
}

fl_status cli_write_tiff(fl_ctx *ctx, const char *dir, const char *name, const fl_image *img)
{
    char path[CLI_PATH_MAX];
    fl_status st = cli_out_path(ctx, path, sizeof path, dir, name);
    return st ? st : fl_tiff_write(ctx, path, img);
}

/* ---- JSON summary -------------------------------------------------------------------------------- */

void cli_json_begin(cli_json *j)
{
    fl_strbuf_init(&j->b);
    j->count = 0;
    j->out_created = 0;
    fl_strbuf_append(&j->b, "{", 1);
}

static void key(cli_json *j, const char *k)
{
    if (j->count++) fl_strbuf_append(&j->b, ",", 1);
    fl_strbuf_json_string(&j->b, k);
    fl_strbuf_append(&j->b, ":", 1);
}

void cli_json_str(cli_json *j, const char *k, const char *value)
{
    key(j, k);
    if (value) fl_strbuf_json_string(&j->b, value);
    else fl_strbuf_append(&j->b, "null", 4);
}

void cli_json_int(cli_json *j, const char *k, int64_t value)
{
    key(j, k);
    fl_strbuf_printf(&j->b, "%lld", (long long)value);
}

static void num(cli_json *j, double v)
{
    if (isfinite(v)) {
        /* shortest of %.15g / %.17g that reads back as the same double */
        char t[40];
        snprintf(t, sizeof t, "%.15g", v);
        if (strtod(t, NULL) != v) snprintf(t, sizeof t, "%.17g", v);
        fl_strbuf_append(&j->b, t, strlen(t));
    }
    else fl_strbuf_append(&j->b, "null", 4);
}

void cli_json_num(cli_json *j, const char *k, double value)
{
    key(j, k);
    num(j, value);
}

void cli_json_bool(cli_json *j, const char *k, int value)
{
    key(j, k);
    if (value) fl_strbuf_append(&j->b, "true", 4);
    else fl_strbuf_append(&j->b, "false", 5);
}

void cli_json_raw(cli_json *j, const char *k, const char *json)
{
    key(j, k);
    if (json) fl_strbuf_append(&j->b, json, strlen(json));
    else fl_strbuf_append(&j->b, "null", 4);
}

void cli_json_num_array(cli_json *j, const char *k, const double *v, int64_t n)
{
    key(j, k);
    fl_strbuf_append(&j->b, "[", 1);
    for (int64_t i = 0; i < n; i++) {
        if (i) fl_strbuf_append(&j->b, ",", 1);
        num(j, v[i]);
    }
    fl_strbuf_append(&j->b, "]", 1);
}

void cli_json_end(cli_json *j) { fl_strbuf_append(&j->b, "}", 1); }

int cli_json_emit(cli_json *j, int to_stdout, const char *path)
{
    if (j->b.failed || !j->b.data) return cli_error("out of memory writing the JSON summary");
    if (path) {
        char tmp[CLI_PATH_MAX + 8];
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        FILE *f = fopen(tmp, "wb");
        if (!f) return cli_error("cannot write '%s': %s", path, strerror(errno));
        int ok = fwrite(j->b.data, 1, j->b.len, f) == j->b.len && fputc('\n', f) != EOF;
        ok = (fclose(f) == 0) && ok;
        if (!ok || rename(tmp, path) != 0) {
            remove(tmp);
            return cli_error("cannot write '%s': %s", path, strerror(errno));
        }
    }
    if (to_stdout) {
        fwrite(j->b.data, 1, j->b.len, stdout);
        fputc('\n', stdout);
        fflush(stdout);
    }
    return 0;
}

void cli_json_free(cli_json *j) { fl_strbuf_free(&j->b); }

/* ---- the frame of a command ---------------------------------------------------------------------- */

fl_ctx *cli_command_start(const char *cmd, const cli_option *opts, const char *out, cli_json *j)
{
    fl_ctx *ctx = cli_ctx_new(opts);
    if (!ctx) return NULL;
    size_t created = 0;
    if (mkdirs_created(out, &created)) {
        fl_ctx_free(ctx);
        return NULL;
    }
    cli_json_begin(j);
    j->out_created = created;
    cli_json_str(j, "command", cmd);
    return ctx;
}

/* After a failed command: removes the folders of --out that cli_command_start created, from the deepest
 * up, as long as they are empty (rmdir never removes a folder with files; folders that existed before
 * the command are never touched). */
static void remove_created_out(const char *out, size_t created)
{
    char buf[CLI_PATH_MAX];
    size_t n = out ? strlen(out) : 0;
    if (created == 0 || n == 0 || n >= sizeof buf || created > n) return;
    memcpy(buf, out, n + 1);
    while (n > 1 && buf[n - 1] == '/') buf[--n] = '\0';
    while (n >= created) {
        if (rmdir(buf) != 0) return;
        while (n > 0 && buf[n - 1] != '/') n--; /* parent folder */
        while (n > 1 && buf[n - 1] == '/') n--;
        if (n == 0) return;
        buf[n] = '\0';
    }
}

int cli_summary_write(cli_json *j, const cli_option *opts, const char *out)
{
    char path[CLI_PATH_MAX];
    cli_json_end(j);
    return cli_path_join(path, sizeof path, out, "summary.json") ? CLI_EXIT_FAIL : cli_json_emit(j, cli_flag(opts, "json"), path);
}

int cli_command_finish(fl_ctx *ctx, fl_status st, cli_json *j, const cli_option *opts, const char *out)
{
    int rc = st ? cli_engine_error(ctx) : cli_summary_write(j, opts, out);
    if (rc != 0) remove_created_out(out, j->out_created);
    cli_json_free(j);
    fl_ctx_free(ctx);
    return rc;
}
