/* The Keras HDF5 import runs libhdf5 in a child process (io/keras_hdf5.c, issue 6): files on which
 * Debian's libhdf5 1.10.8 itself crashes give one clean error and the calling process survives;
 * the private temporary folder is always removed; the import works when the application ignores
 * SIGCHLD (children reaped automatically) and from two threads at once; a child that runs over its
 * time limit (fl_keras_child_opts: a short limit and a sleeping child) is killed and reaped and gives
 * one clean FL_EFORMAT. The imported values themselves are checked against h5dump in test_keras.c
 * (they pass through the same child). */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fl_internal.h"
#include "io/keras_hdf5.h"

#ifndef FL_SOURCE_DIR
#define FL_SOURCE_DIR "."
#endif
#define REG_DIR FL_SOURCE_DIR "/tests/fuzz/regressions/keras"
/* SEGV in H5HG_read (global heap) in an unprotected in-process import: the test process would die */
#define SEGV_FILE REG_DIR "/hdf5-global-heap-H5HG_read-segv.h5"
/* heap over-read in libhdf5's attribute decoding (fatal under ASan, silent garbage otherwise) */
#define OVERREAD_FILE REG_DIR "/hdf5-attr-decode-heap-overflow.h5"
#define GOOD_AE FL_SOURCE_DIR "/tests/fuzz/corpus/keras/ae_bilstm_full_model.h5"
#define GOOD_DEC FL_SOURCE_DIR "/tests/fuzz/corpus/keras/decoder_bilstm.h5"

static void expect_clean_failure(const char *file, int decoder, const char *must_contain)
{
    fl_ctx *ctx = fl_ctx_new();
    fl_tensor_list l;
    fl_sae_config cfg, before;
    memset(&cfg, 0x5a, sizeof cfg);
    before = cfg;
    fl_status st = decoder ? fl_keras_read_lstm_decoder(ctx, file, &l) : fl_keras_read_lstm_ae(ctx, file, &l, &cfg);
    cr_expect_eq(st, FL_EFORMAT, "%s: status %d (%s)", file, st, fl_ctx_message(ctx));
    cr_expect_eq(l.count, 0);
    cr_expect_null(l.items);
    cr_expect_eq(l.meta_count, 0);
    cr_expect(memcmp(&cfg, &before, sizeof cfg) == 0, "cfg modified on failure");
    cr_expect_gt(strlen(fl_ctx_message(ctx)), 20, "no message");
    if (must_contain) {
        cr_expect(strstr(fl_ctx_message(ctx), must_contain) != NULL, "message: %s", fl_ctx_message(ctx));
        cr_expect(strstr(fl_ctx_message(ctx), file) != NULL, "message does not name the file: %s", fl_ctx_message(ctx));
    }
    fl_ctx_free(ctx);
}

/* imports GOOD_AE and returns its tensor count (asserts success and the architecture) */
static int import_good(fl_tensor_list *keep)
{
    fl_ctx *ctx = fl_ctx_new();
    fl_tensor_list l;
    fl_sae_config cfg;
    fl_status st = fl_keras_read_lstm_ae(ctx, GOOD_AE, &l, &cfg);
    cr_assert_eq(st, FL_OK, "%s", fl_ctx_message(ctx));
    cr_expect_eq(cfg.bidirectional, 1);
    cr_expect_eq(cfg.batch_norm, 1);
    cr_expect_str_eq(fl_tensor_list_get_meta(&l, "import_format"), "keras-hdf5");
    const fl_tensor *w = fl_tensor_list_find(&l, "embedding.weight");
    cr_assert_not_null(w);
    int n = l.count;
    if (keep) *keep = l;
    else fl_tensor_list_free(&l);
    fl_ctx_free(ctx);
    return n;
}

static int dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "cannot list %s", dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

Test(keras_isolation, libhdf5_segv_is_a_clean_error)
{
    expect_clean_failure(SEGV_FILE, 0, "the HDF5 library failed while reading");
    expect_clean_failure(SEGV_FILE, 1, "the HDF5 library failed while reading");
    /* the process is alive and the next import works */
    cr_expect_gt(import_good(NULL), 20);
}

Test(keras_isolation, libhdf5_overread_is_a_clean_error)
{
    expect_clean_failure(OVERREAD_FILE, 0, NULL);
    expect_clean_failure(OVERREAD_FILE, 1, NULL);
    cr_expect_gt(import_good(NULL), 20);
}

Test(keras_isolation, temporary_folder_removed)
{
    char dir[] = "/tmp/fl-test-kwiso-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(setenv("TMPDIR", dir, 1), 0);
    import_good(NULL);
    expect_clean_failure(SEGV_FILE, 0, NULL);
    expect_clean_failure(GOOD_DEC, 0, "decoder-only"); /* parsed fine, rejected by the architecture check */
    fl_ctx *ctx = fl_ctx_new();
    fl_tensor_list l;
    cr_expect_eq(fl_keras_read_lstm_decoder(ctx, GOOD_DEC, &l), FL_OK, "%s", fl_ctx_message(ctx));
    cr_expect_not_null(fl_tensor_list_find(&l, "output.weight"));
    fl_tensor_list_free(&l);
    fl_ctx_free(ctx);
    cr_expect_eq(dir_entries(dir), 0, "the import left files in TMPDIR");
    /* an unusable TMPDIR falls back to /tmp */
    cr_assert_eq(setenv("TMPDIR", "/nonexistent/fl-test", 1), 0);
    import_good(NULL);
    rmdir(dir);
}

Test(keras_isolation, sigchld_ignored)
{
    /* an application that ignores SIGCHLD: waitpid fails with ECHILD, the report alone decides */
    signal(SIGCHLD, SIG_IGN);
    import_good(NULL);
    expect_clean_failure(SEGV_FILE, 0, "the HDF5 library failed while reading");
    signal(SIGCHLD, SIG_DFL);
}

static void *import_thread(void *arg)
{
    fl_tensor_list *l = arg;
    fl_ctx *ctx = fl_ctx_new();
    fl_sae_config cfg;
    fl_status st = fl_keras_read_lstm_ae(ctx, GOOD_AE, l, &cfg);
    fl_ctx_free(ctx);
    return (void *)(intptr_t)st;
}

Test(keras_isolation, two_threads_same_result)
{
    fl_tensor_list a, b, ref;
    import_good(&ref);
    pthread_t ta, tb;
    cr_assert_eq(pthread_create(&ta, NULL, import_thread, &a), 0);
    cr_assert_eq(pthread_create(&tb, NULL, import_thread, &b), 0);
    void *ra, *rb;
    pthread_join(ta, &ra);
    pthread_join(tb, &rb);
    cr_assert_eq((intptr_t)ra, FL_OK);
    cr_assert_eq((intptr_t)rb, FL_OK);
    const fl_tensor_list *ls[2] = {&a, &b};
    for (int k = 0; k < 2; k++) {
        cr_assert_eq(ls[k]->count, ref.count);
        for (int i = 0; i < ref.count; i++) {
            const fl_tensor *t = &ref.items[i], *u = fl_tensor_list_find(ls[k], t->name);
            cr_assert_not_null(u, "%s missing", t->name);
            cr_assert_eq(fl_tensor_numel(u), fl_tensor_numel(t));
            cr_expect(memcmp(u->data, t->data, (size_t)fl_tensor_numel(t) * sizeof(float)) == 0, "%s differs", t->name);
        }
    }
    fl_tensor_list_free(&a);
    fl_tensor_list_free(&b);
    fl_tensor_list_free(&ref);
}

Test(keras_isolation, cancel_kills_the_child)
{
    char dir[] = "/tmp/fl-test-kwcancel-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(setenv("TMPDIR", dir, 1), 0);
    fl_ctx *ctx = fl_ctx_new();
    fl_ctx_request_cancel(ctx);
    fl_tensor_list l;
    fl_sae_config cfg;
    cr_expect_eq(fl_keras_read_lstm_ae(ctx, GOOD_AE, &l, &cfg), FL_ECANCELLED, "%s", fl_ctx_message(ctx));
    cr_expect_eq(l.count, 0);
    fl_ctx_free(ctx);
    cr_expect_eq(dir_entries(dir), 0, "the cancelled import left files in TMPDIR");
    rmdir(dir);
}

/* Found by fuzz_keras (2026-11-21): strings of the file that are not valid UTF-8 made the safetensors
 * round trip between the child and the parent fail (FL_EINTERNAL) where the in-process import had
 * succeeded; they travel %XX-encoded now. The in-process import gave FL_OK with 36 tensors. */
Test(keras_isolation, non_utf8_strings_survive_the_round_trip)
{
    fl_ctx *ctx = fl_ctx_new();
    fl_tensor_list l;
    fl_sae_config cfg;
    fl_status st = fl_keras_read_lstm_ae(ctx, REG_DIR "/layer-strings-invalid-utf8-safetensors-roundtrip.h5", &l, &cfg);
    cr_expect_eq(st, FL_OK, "%s", fl_ctx_message(ctx));
    cr_expect_eq(l.count, 36);
    fl_tensor_list_free(&l);
    fl_ctx_free(ctx);
}

/* ---- time limit of the child (fl_keras_child_opts) ------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Processes (zombies included) whose parent is this process, from /proc/<pid>/stat. */
static int count_children(void)
{
    DIR *d = opendir("/proc");
    cr_assert_not_null(d, "no /proc");
    const long me = (long)getpid();
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        char p[300], buf[1024];
        snprintf(p, sizeof p, "/proc/%s/stat", e->d_name);
        FILE *fp = fopen(p, "r");
        if (!fp) continue; /* exited meanwhile */
        size_t k = fread(buf, 1, sizeof buf - 1, fp);
        fclose(fp);
        buf[k] = '\0';
        const char *rp = strrchr(buf, ')'); /* "pid (comm) state ppid ..." */
        char state;
        long ppid;
        if (rp && sscanf(rp + 1, " %c %ld", &state, &ppid) == 2 && ppid == me) n++;
    }
    closedir(d);
    return n;
}

/* the child `pid` no longer exists: reaped (a zombie would still answer kill(pid, 0)) */
static void expect_reaped(long pid)
{
    cr_assert_gt(pid, 0, "no child was started");
    errno = 0;
    cr_expect(kill((pid_t)pid, 0) == -1 && errno == ESRCH, "child %ld still exists (zombie or running)", pid);
}

static char *private_tmpdir(char *tmpl)
{
    cr_assert_not_null(mkdtemp(tmpl));
    cr_assert_eq(setenv("TMPDIR", tmpl, 1), 0);
    return tmpl;
}

Test(keras_isolation, timeout_kills_the_child)
{
    char dir[] = "/tmp/fl-test-kwtimeout-XXXXXX";
    private_tmpdir(dir);
    const int children = count_children();
    for (int decoder = 0; decoder < 2; decoder++) {
        long pid = -1;
        fl_keras_child_opts o = {.timeout_ms = 300, .child_delay_ms = 5000, .child_pid = &pid};
        fl_ctx *ctx = fl_ctx_new();
        fl_tensor_list l;
        fl_sae_config cfg, before;
        memset(&cfg, 0x5a, sizeof cfg);
        before = cfg;
        const char *file = decoder ? GOOD_DEC : GOOD_AE;
        double t0 = now_s();
        fl_status st = decoder ? fl_keras_read_lstm_decoder_opts(ctx, file, &l, &o)
                               : fl_keras_read_lstm_ae_opts(ctx, file, &l, &cfg, &o);
        double dt = now_s() - t0;
        cr_expect_eq(st, FL_EFORMAT, "status %d (%s)", st, fl_ctx_message(ctx));
        char want[600];
        snprintf(want, sizeof want,
                 "the HDF5 library did not finish reading '%s' within 300 ms (the file is damaged or far too large); "
                 "nothing was imported",
                 file);
        cr_expect_str_eq(fl_ctx_message(ctx), want);
        /* killed at the limit, not after the child's 5 s sleep (2 shared cores: generous upper bound) */
        cr_expect(dt >= 0.29 && dt < 1.5, "returned after %.3f s", dt);
        cr_expect_eq(l.count, 0);
        cr_expect_null(l.items);
        cr_expect_eq(l.meta_count, 0);
        cr_expect(memcmp(&cfg, &before, sizeof cfg) == 0, "cfg modified on failure");
        expect_reaped(pid);
        cr_expect_eq(count_children(), children, "a child process was left behind");
        cr_expect_eq(dir_entries(dir), 0, "the timed-out import left files in TMPDIR");
        fl_ctx_free(ctx);
    }
    /* the next import with the normal limits works */
    cr_expect_gt(import_good(NULL), 20);
    cr_expect_eq(dir_entries(dir), 0);
    cr_expect_eq(count_children(), children);
    rmdir(dir);
}

Test(keras_isolation, child_delay_within_the_limit)
{
    /* the sleep of the child really happens (so the timeout test above is killed by the limit), and a
     * child that finishes within a non-default limit imports normally */
    long pid = -1;
    fl_keras_child_opts o = {.timeout_ms = 20000, .child_delay_ms = 400, .child_pid = &pid};
    fl_ctx *ctx = fl_ctx_new();
    fl_tensor_list l, ref;
    fl_sae_config cfg;
    import_good(&ref);
    double t0 = now_s();
    cr_assert_eq(fl_keras_read_lstm_ae_opts(ctx, GOOD_AE, &l, &cfg, &o), FL_OK, "%s", fl_ctx_message(ctx));
    double dt = now_s() - t0;
    cr_expect(dt >= 0.39, "returned after %.3f s, before the child's 0.4 s sleep ended", dt);
    expect_reaped(pid);
    cr_assert_eq(l.count, ref.count);
    for (int i = 0; i < ref.count; i++) {
        const fl_tensor *t = &ref.items[i], *u = fl_tensor_list_find(&l, t->name);
        cr_assert_not_null(u, "%s missing", t->name);
        cr_expect(memcmp(u->data, t->data, (size_t)fl_tensor_numel(t) * sizeof(float)) == 0, "%s differs", t->name);
    }
    fl_tensor_list_free(&l);
    fl_tensor_list_free(&ref);
    fl_ctx_free(ctx);
}

typedef struct cancel_job {
    fl_ctx *ctx;
    long pid;
    fl_tensor_list l;
    fl_status st;
    double done;
} cancel_job;

static void *cancel_thread(void *arg)
{
    cancel_job *j = arg;
    fl_keras_child_opts o = {.timeout_ms = FL_KERAS_CHILD_TIMEOUT_MS, .child_delay_ms = 5000, .child_pid = &j->pid};
    j->st = fl_keras_read_lstm_ae_opts(j->ctx, GOOD_AE, &j->l, NULL, &o);
    j->done = now_s();
    return NULL;
}

Test(keras_isolation, cancel_during_child_delay)
{
    char dir[] = "/tmp/fl-test-kwcdelay-XXXXXX";
    private_tmpdir(dir);
    const int children = count_children();
    cancel_job j = {.ctx = fl_ctx_new(), .pid = -1};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, cancel_thread, &j), 0);
    usleep(400 * 1000); /* the child sleeps (5 s) */
    cr_expect_eq(count_children(), children + 1, "the import child is not running");
    double t0 = now_s();
    fl_ctx_request_cancel(j.ctx);
    pthread_join(t, NULL);
    cr_expect_eq(j.st, FL_ECANCELLED, "status %d (%s)", j.st, fl_ctx_message(j.ctx));
    cr_expect(j.done - t0 < 1.0, "cancel took %.3f s", j.done - t0);
    cr_expect_eq(j.l.count, 0);
    expect_reaped(j.pid);
    cr_expect_eq(count_children(), children, "a child process was left behind");
    cr_expect_eq(dir_entries(dir), 0, "the cancelled import left files in TMPDIR");
    fl_ctx_free(j.ctx);
    cr_expect_gt(import_good(NULL), 20);
    rmdir(dir);
}

Test(keras_isolation, invalid_limits)
{
    const fl_keras_child_opts bad[3] = {{.timeout_ms = 0}, {.timeout_ms = 1000, .child_delay_ms = -1},
                                        {.timeout_ms = 1000, .in_process = 2}};
    const int children = count_children();
    for (int k = 0; k < 3; k++) {
        long pid = -1;
        fl_keras_child_opts o = bad[k];
        o.child_pid = &pid;
        fl_ctx *ctx = fl_ctx_new();
        fl_tensor_list l;
        cr_expect_eq(fl_keras_read_lstm_decoder_opts(ctx, GOOD_DEC, &l, &o), FL_EINVAL, "case %d", k);
        cr_expect(strstr(fl_ctx_message(ctx), "invalid limits") != NULL, "message: %s", fl_ctx_message(ctx));
        cr_expect_eq(l.count, 0);
        cr_expect_eq(pid, 0, "case %d: a child was started", k);
        fl_ctx_free(ctx);
    }
    cr_expect_eq(count_children(), children);
}

/* The in_process hook (used by keras/allocation_failures) gives exactly the result of the forked import,
 * and its errors are the same. */
Test(keras_isolation, in_process_hook_same_result)
{
    char dir[] = "/tmp/fl-test-kwinproc-XXXXXX";
    private_tmpdir(dir);
    const int children = count_children();
    long pid = -1;
    fl_keras_child_opts o = {.timeout_ms = FL_KERAS_CHILD_TIMEOUT_MS, .in_process = 1, .child_pid = &pid};
    const char *files[2] = {GOOD_AE, GOOD_DEC};
    for (int k = 0; k < 2; k++) {
        fl_ctx *ctx = fl_ctx_new();
        fl_tensor_list a, b;
        if (k == 0) {
            fl_sae_config ca, cb;
            cr_assert_eq(fl_keras_read_lstm_ae(ctx, files[k], &a, &ca), FL_OK, "%s", fl_ctx_message(ctx));
            cr_assert_eq(fl_keras_read_lstm_ae_opts(ctx, files[k], &b, &cb, &o), FL_OK, "%s", fl_ctx_message(ctx));
            cr_expect(memcmp(&ca, &cb, sizeof ca) == 0, "configurations differ");
        } else {
            cr_assert_eq(fl_keras_read_lstm_decoder(ctx, files[k], &a), FL_OK, "%s", fl_ctx_message(ctx));
            cr_assert_eq(fl_keras_read_lstm_decoder_opts(ctx, files[k], &b, &o), FL_OK, "%s", fl_ctx_message(ctx));
        }
        cr_assert_eq(a.count, b.count);
        cr_assert_eq(a.meta_count, b.meta_count);
        for (int i = 0; i < a.count; i++) {
            cr_assert_str_eq(a.items[i].name, b.items[i].name);
            cr_assert_eq(fl_tensor_numel(&a.items[i]), fl_tensor_numel(&b.items[i]));
            cr_expect(memcmp(a.items[i].data, b.items[i].data, (size_t)fl_tensor_numel(&a.items[i]) * sizeof(float)) == 0,
                      "%s differs", a.items[i].name);
        }
        fl_tensor_list_free(&a);
        fl_tensor_list_free(&b);
        /* a file rejected by the architecture check: same status and message */
        char m1[FL_MSG_CAP];
        fl_status s1 = k == 0 ? fl_keras_read_lstm_ae(ctx, GOOD_DEC, &a, NULL) : fl_keras_read_lstm_decoder(ctx, GOOD_AE, &a);
        snprintf(m1, sizeof m1, "%s", fl_ctx_message(ctx));
        fl_status s2 = k == 0 ? fl_keras_read_lstm_ae_opts(ctx, GOOD_DEC, &a, NULL, &o)
                              : fl_keras_read_lstm_decoder_opts(ctx, GOOD_AE, &a, &o);
        cr_expect_neq(s1, FL_OK);
        cr_expect_eq(s1, s2);
        cr_expect_str_eq(fl_ctx_message(ctx), m1);
        fl_ctx_free(ctx);
    }
    cr_expect_eq(pid, 0, "in_process started a child");
    cr_expect_eq(count_children(), children);
    cr_expect_eq(dir_entries(dir), 0, "the in-process import left files in TMPDIR");
    rmdir(dir);
}
