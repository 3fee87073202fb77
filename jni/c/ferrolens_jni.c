/* JNI glue between ferrolens.Native (Java) and the engine (ferrolens.h). The only file that includes jni.h.
 *
 * Every entry point: check arguments (null arrays, lengths, negative sizes, closed handles) and throw a
 * Java exception instead of calling the engine with bad data; copy Java arrays into malloc'd buffers;
 * make one engine call with a fresh fl_ctx (thread count per call, progress hook on this thread);
 * copy results out; map fl_status to a Java exception in throw_status().
 * The engine's OpenMP workers never see a JNIEnv: the progress hook runs on the calling thread only.
 */
#include <jni.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferrolens/ferrolens.h"
#include "ferrolens_Native.h"
#include "cli.h"

#define FLJ_ABI 2 /* must equal ferrolens.Native.ABI */

enum { I_STEPS, I_HIDDEN, I_ENC, I_DEC, I_LATENT, I_BIDI, I_BN, I_HARDSIG, I_BATCH, I_EPOCHS, I_PATIENCE, I_NORM,
       I_OUTLIER, N_INTS };
enum { F_BN_EPS, F_BN_MOM, F_L1, F_DROPOUT, F_LR, F_BETA1, F_BETA2, F_EPS, F_VAL, N_FLOATS };

/* ---- exceptions ------------------------------------------------------------------------------------ */

static void throw_oom_plain(JNIEnv *env)
{
    if ((*env)->ExceptionCheck(env)) return;
    jclass c = (*env)->FindClass(env, "java/lang/OutOfMemoryError");
    if (c) (*env)->ThrowNew(env, c, "not enough native memory");
}

/* Engine strings may hold any bytes; NewStringUTF wants modified UTF-8. Keep valid 1-3 byte UTF-8
 * sequences, replace everything else (4-byte sequences, stray bytes) by '?'. Result in buf (cap > 0). */
static void sanitize_utf8(const char *s, char *buf, size_t cap)
{
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    while (*p && o + 4 < cap) {
        unsigned c = *p;
        int len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : 0;
        int ok = len > 0 && !(len == 2 && c < 0xC2);
        for (int k = 1; ok && k < len; k++)
            if ((p[k] & 0xC0) != 0x80) ok = 0;
        if (ok) {
            memcpy(buf + o, p, (size_t)len);
            o += (size_t)len;
            p += len;
        } else {
            buf[o++] = '?';
            p++;
        }
    }
    buf[o] = '\0';
}

static jstring new_string(JNIEnv *env, const char *s)
{
    if (!s) s = "";
    size_t cap = strlen(s) + 8; /* the sanitized string is never longer than the input */
    char *buf = malloc(cap);
    if (!buf) {
        throw_oom_plain(env);
        return NULL;
    }
    sanitize_utf8(s, buf, cap);
    jstring r = (*env)->NewStringUTF(env, buf);
    free(buf);
    return r;
}

static void throw_class(JNIEnv *env, const char *cls, const char *msg)
{
    if ((*env)->ExceptionCheck(env)) return; /* keep the first exception */
    char buf[2048];
    sanitize_utf8(msg, buf, sizeof buf);
    jclass c = (*env)->FindClass(env, cls);
    if (!c) return; /* NoClassDefFoundError pending */
    (*env)->ThrowNew(env, c, buf);
    (*env)->DeleteLocalRef(env, c);
}

static void throw_iae(JNIEnv *env, const char *msg) { throw_class(env, "java/lang/IllegalArgumentException", msg); }
static void throw_closed(JNIEnv *env) { throw_class(env, "java/lang/IllegalStateException", "the model is closed"); }
static void throw_oom(JNIEnv *env, const char *what)
{
    char m[256];
    snprintf(m, sizeof m, "not enough native memory for %s", what);
    throw_class(env, "java/lang/OutOfMemoryError", m);
}

/* The one status -> exception mapping. FL_EINVAL: IllegalArgumentException; FL_ECANCELLED:
 * ferrolens.CancelledException; everything else: ferrolens.FerrolensException(status, name, message). */
static void throw_status_message(JNIEnv *env, fl_status s, const char *msg)
{
    if (s == FL_OK || (*env)->ExceptionCheck(env)) return;
    if (!msg || !*msg) msg = fl_status_name(s);
    if (s == FL_EINVAL) {
        throw_iae(env, msg);
        return;
    }
    if (s == FL_ECANCELLED) {
        throw_class(env, "ferrolens/CancelledException", msg);
        return;
    }
    jclass c = (*env)->FindClass(env, "ferrolens/FerrolensException");
    if (!c) return;
    jmethodID ctor = (*env)->GetMethodID(env, c, "<init>", "(ILjava/lang/String;Ljava/lang/String;)V");
    if (!ctor) return;
    jstring jname = new_string(env, fl_status_name(s));
    jstring jmsg = jname ? new_string(env, msg) : NULL;
    if (jname && jmsg) {
        jobject ex = (*env)->NewObject(env, c, ctor, (jint)s, jname, jmsg);
        if (ex) {
            (*env)->Throw(env, (jthrowable)ex);
            (*env)->DeleteLocalRef(env, ex);
        }
    }
    if (jmsg) (*env)->DeleteLocalRef(env, jmsg);
    if (jname) (*env)->DeleteLocalRef(env, jname);
    (*env)->DeleteLocalRef(env, c);
}

static void throw_status(JNIEnv *env, fl_ctx *ctx, fl_status s)
{
    throw_status_message(env, s, ctx ? fl_ctx_message(ctx) : "");
}

/* ---- context and progress hook ---------------------------------------------------------------------- */

typedef struct hook {
    JNIEnv *env;      /* the caller's env: the hook runs on the calling thread only */
    jobject listener; /* local ref, may be NULL */
    jmethodID mid;
} hook;

static int progress_cb(void *user, const char *stage, int64_t done, int64_t total, double loss, double val_loss)
{
    hook *h = user;
    JNIEnv *env = h->env;
    if ((*env)->ExceptionCheck(env)) return 1;
    jstring js = new_string(env, stage ? stage : "");
    if (!js) return 1;
    jboolean stop = (*env)->CallBooleanMethod(env, h->listener, h->mid, js, (jlong)done, (jlong)total,
                                              (jdouble)loss, (jdouble)val_loss);
    (*env)->DeleteLocalRef(env, js);
    if ((*env)->ExceptionCheck(env)) return 1; /* stop; the exception stays pending for the caller */
    return stop ? 1 : 0;
}

/* Binds h to listener's progress method; 0 + pending exception when it has none. */
static int bind_hook(JNIEnv *env, jobject listener, hook *h)
{
    jclass c = (*env)->GetObjectClass(env, listener);
    h->mid = (*env)->GetMethodID(env, c, "progress", "(Ljava/lang/String;JJDD)Z");
    (*env)->DeleteLocalRef(env, c);
    h->env = env;
    h->listener = listener;
    return h->mid != NULL;
}

/* Fresh context per call: thread count (<= 0: engine default) and the optional listener. NULL + pending
 * exception on failure. */
static fl_ctx *make_ctx(JNIEnv *env, jint threads, jobject listener, hook *h)
{
    fl_ctx *ctx = fl_ctx_new();
    if (!ctx) {
        throw_oom(env, "the engine context");
        return NULL;
    }
    fl_ctx_set_threads(ctx, threads > 0 ? threads : 0);
    if (listener && h) {
        if (!bind_hook(env, listener, h)) {
            fl_ctx_free(ctx);
            return NULL;
        }
        fl_ctx_set_progress(ctx, progress_cb, h);
    }
    return ctx;
}

/* ---- argument helpers ----------------------------------------------------------------------------- */

static fl_sae *model_of(JNIEnv *env, jlong handle)
{
    if (handle == 0) {
        throw_closed(env);
        return NULL;
    }
    return (fl_sae *)(intptr_t)handle;
}

/* Checks that arr is non-null and holds at least `need` elements. */
static int check_len(JNIEnv *env, jarray arr, int64_t need, const char *what)
{
    char m[256];
    if (!arr) {
        snprintf(m, sizeof m, "%s is null", what);
        throw_class(env, "java/lang/NullPointerException", m);
        return 0;
    }
    jsize len = (*env)->GetArrayLength(env, arr);
    if (need < 0 || (int64_t)len < need) {
        snprintf(m, sizeof m, "%s has %ld values, %lld needed", what, (long)len, (long long)need);
        throw_iae(env, m);
        return 0;
    }
    return 1;
}

/* n x m with n, m >= 0 and the product within a Java array; -1 + exception otherwise. */
static int64_t checked_count(JNIEnv *env, int64_t n, int64_t m, const char *what)
{
    char msg[256];
    if (n < 0 || m < 0) {
        snprintf(msg, sizeof msg, "%s: negative size (%lld x %lld)", what, (long long)n, (long long)m);
        throw_iae(env, msg);
        return -1;
    }
    if (m != 0 && n > (int64_t)INT32_MAX / m) {
        snprintf(msg, sizeof msg, "%s: %lld x %lld values do not fit in a Java array", what, (long long)n, (long long)m);
        throw_iae(env, msg);
        return -1;
    }
    return n * m;
}

static float *copy_in_floats(JNIEnv *env, jfloatArray arr, int64_t count)
{
    float *p = malloc((size_t)(count > 0 ? count : 1) * sizeof(float));
    if (!p) {
        throw_oom(env, "a copy of the input");
        return NULL;
    }
    if (count > 0) (*env)->GetFloatArrayRegion(env, arr, 0, (jsize)count, p);
    if ((*env)->ExceptionCheck(env)) {
        free(p);
        return NULL;
    }
    return p;
}

static float *alloc_floats(JNIEnv *env, int64_t count)
{
    float *p = calloc((size_t)(count > 0 ? count : 1), sizeof(float));
    if (!p) throw_oom(env, "the result");
    return p;
}

/* byte[] (UTF-8, no NUL) -> malloc'd C string. */
static char *path_of(JNIEnv *env, jbyteArray arr)
{
    if (!arr) {
        throw_class(env, "java/lang/NullPointerException", "the file path is null");
        return NULL;
    }
    jsize len = (*env)->GetArrayLength(env, arr);
    if (len == 0) {
        throw_iae(env, "the file path is empty");
        return NULL;
    }
    char *s = malloc((size_t)len + 1);
    if (!s) {
        throw_oom(env, "a file path");
        return NULL;
    }
    (*env)->GetByteArrayRegion(env, arr, 0, len, (jbyte *)s);
    s[len] = '\0';
    if (strlen(s) != (size_t)len) {
        free(s);
        throw_iae(env, "the file path contains a NUL byte");
        return NULL;
    }
    return s;
}

static const fl_sae_config *config_of(JNIEnv *env, const fl_sae *m)
{
    const fl_sae_config *c = fl_sae_get_config(m);
    if (!c) throw_class(env, "java/lang/IllegalStateException", "the engine returned no configuration for the model");
    return c;
}

/* ---- entry points --------------------------------------------------------------------------------- */

JNIEXPORT jint JNICALL Java_ferrolens_Native_abiVersion(JNIEnv *env, jclass cls) { return FLJ_ABI; }

JNIEXPORT jstring JNICALL Java_ferrolens_Native_engineVersion(JNIEnv *env, jclass cls)
{
    return new_string(env, FL_VERSION_STRING);
}

static void config_to_java(JNIEnv *env, const fl_sae_config *c, jintArray ints, jfloatArray floats, jlongArray seed)
{
    jint i[N_INTS] = {c->steps, c->hidden, c->enc_layers, c->dec_layers, c->latent, c->bidirectional,
                      c->batch_norm, c->hard_sigmoid, c->batch, c->epochs, c->patience, c->norm_mode,
                      c->outlier_repair};
    jfloat f[N_FLOATS] = {c->bn_eps, c->bn_momentum, c->l1, c->dropout, c->lr, c->adam_beta1, c->adam_beta2,
                          c->adam_eps, c->val_split};
    jlong s = (jlong)c->seed;
    (*env)->SetIntArrayRegion(env, ints, 0, N_INTS, i);
    (*env)->SetFloatArrayRegion(env, floats, 0, N_FLOATS, f);
    (*env)->SetLongArrayRegion(env, seed, 0, 1, &s);
}

static int check_config_arrays(JNIEnv *env, jintArray ints, jfloatArray floats, jlongArray seed)
{
    return check_len(env, ints, N_INTS, "the int configuration array") &&
           check_len(env, floats, N_FLOATS, "the float configuration array") &&
           (seed == NULL || check_len(env, seed, 1, "the seed array"));
}

JNIEXPORT void JNICALL Java_ferrolens_Native_saeConfigDefault(JNIEnv *env, jclass cls, jintArray ints,
                                                              jfloatArray floats, jlongArray seed)
{
    if (!check_config_arrays(env, ints, floats, seed) || !check_len(env, seed, 1, "the seed array")) return;
    fl_sae_config c;
    fl_sae_config_default(&c);
    config_to_java(env, &c, ints, floats, seed);
}

JNIEXPORT void JNICALL Java_ferrolens_Native_saeGetConfig(JNIEnv *env, jclass cls, jlong handle, jintArray ints,
                                                          jfloatArray floats, jlongArray seed)
{
    fl_sae *m = model_of(env, handle);
    if (!m || !check_config_arrays(env, ints, floats, seed) || !check_len(env, seed, 1, "the seed array")) return;
    const fl_sae_config *c = config_of(env, m);
    if (c) config_to_java(env, c, ints, floats, seed);
}

/* The configuration the Java arrays hold (lengths checked by the caller). */
static void config_from_java(JNIEnv *env, jintArray ints, jfloatArray floats, jlong seed, fl_sae_config *c)
{
    jint i[N_INTS];
    jfloat f[N_FLOATS];
    (*env)->GetIntArrayRegion(env, ints, 0, N_INTS, i);
    (*env)->GetFloatArrayRegion(env, floats, 0, N_FLOATS, f);
    fl_sae_config_default(c);
    c->steps = i[I_STEPS]; c->hidden = i[I_HIDDEN]; c->enc_layers = i[I_ENC]; c->dec_layers = i[I_DEC];
    c->latent = i[I_LATENT]; c->bidirectional = i[I_BIDI]; c->batch_norm = i[I_BN]; c->hard_sigmoid = i[I_HARDSIG];
    c->batch = i[I_BATCH]; c->epochs = i[I_EPOCHS]; c->patience = i[I_PATIENCE]; c->norm_mode = i[I_NORM];
    c->outlier_repair = i[I_OUTLIER];
    c->bn_eps = f[F_BN_EPS]; c->bn_momentum = f[F_BN_MOM]; c->l1 = f[F_L1]; c->dropout = f[F_DROPOUT]; c->lr = f[F_LR];
    c->adam_beta1 = f[F_BETA1]; c->adam_beta2 = f[F_BETA2]; c->adam_eps = f[F_EPS]; c->val_split = f[F_VAL];
    c->seed = (uint64_t)seed;
}

JNIEXPORT void JNICALL Java_ferrolens_Native_saeCheckConfig(JNIEnv *env, jclass cls, jintArray ints, jfloatArray floats,
                                                            jlong seed)
{
    if (!check_config_arrays(env, ints, floats, NULL)) return;
    fl_sae_config c;
    config_from_java(env, ints, floats, seed, &c);
    fl_ctx *ctx = make_ctx(env, 1, NULL, NULL);
    if (!ctx) return;
    fl_status s = fl_sae_check_config(ctx, &c);
    if (s != FL_OK) throw_status(env, ctx, s);
    fl_ctx_free(ctx);
}

JNIEXPORT jlong JNICALL Java_ferrolens_Native_saeCreate(JNIEnv *env, jclass cls, jintArray ints, jfloatArray floats,
                                                        jlong seed, jint threads)
{
    if (!check_config_arrays(env, ints, floats, NULL)) return 0;
    fl_sae_config c;
    config_from_java(env, ints, floats, seed, &c);
    fl_ctx *ctx = make_ctx(env, threads, NULL, NULL);
    if (!ctx) return 0;
    fl_sae *m = NULL;
    fl_status s = fl_sae_create(ctx, &c, &m);
    if (s != FL_OK || !m) {
        if (s == FL_OK) s = FL_EINTERNAL;
        throw_status(env, ctx, s);
        fl_ctx_free(ctx);
        return 0;
    }
    fl_ctx_free(ctx);
    return (jlong)(intptr_t)m;
}

JNIEXPORT void JNICALL Java_ferrolens_Native_saeFree(JNIEnv *env, jclass cls, jlong handle)
{
    if (handle != 0) fl_sae_free((fl_sae *)(intptr_t)handle);
}

JNIEXPORT jlong JNICALL Java_ferrolens_Native_saeParamCount(JNIEnv *env, jclass cls, jlong handle)
{
    fl_sae *m = model_of(env, handle);
    return m ? (jlong)fl_sae_param_count(m) : 0;
}

/* Common checks for calls that take raw curves: model, n >= 0, steps == model steps, array length. */
static int check_curves(JNIEnv *env, const fl_sae *m, jfloatArray curves, jlong n, jint steps, int64_t *count)
{
    const fl_sae_config *c = config_of(env, m);
    if (!c) return 0;
    if ((*count = checked_count(env, n, steps, "curves")) < 0) return 0;
    if (steps <= 0) {
        throw_iae(env, "the curve length must be positive");
        return 0;
    }
    return check_len(env, curves, *count, "the curves array");
}

JNIEXPORT jdoubleArray JNICALL Java_ferrolens_Native_saeTrain(JNIEnv *env, jclass cls, jlong handle,
                                                              jfloatArray curves, jlong n, jint steps,
                                                              jint threads, jobject listener)
{
    fl_sae *m = model_of(env, handle);
    int64_t count;
    if (!m || !check_curves(env, m, curves, n, steps, &count)) return NULL;
    if (n == 0) {
        throw_iae(env, "no curves to train on");
        return NULL;
    }
    jdoubleArray result = (*env)->NewDoubleArray(env, 6); /* before the long call */
    if (!result) return NULL;
    float *in = copy_in_floats(env, curves, count);
    if (!in) return NULL;
    hook h = {0};
    fl_ctx *ctx = make_ctx(env, threads, listener, &h);
    if (!ctx) {
        free(in);
        return NULL;
    }
    fl_sae_report rep;
    memset(&rep, 0, sizeof rep);
    fl_status s = fl_sae_train(ctx, m, in, (int64_t)n, (int32_t)steps, &rep);
    free(in);
    if ((*env)->ExceptionCheck(env)) { /* thrown by the listener */
        fl_ctx_free(ctx);
        return NULL;
    }
    if (s == FL_ECANCELLED && rep.epochs_run > 0) { /* the model holds the best weights so far */
        rep.cancelled = 1;
        s = FL_OK;
    }
    if (s != FL_OK) {
        throw_status(env, ctx, s);
        fl_ctx_free(ctx);
        return NULL;
    }
    fl_ctx_free(ctx);
    jdouble r[6] = {rep.epochs_run, rep.best_epoch, rep.best_val_loss, rep.final_train_loss, rep.seconds_per_epoch,
                    rep.cancelled};
    (*env)->SetDoubleArrayRegion(env, result, 0, 6, r);
    return result;
}

/* Shared body of encode and apply: emb and/or recon outputs. */
static void apply_common(JNIEnv *env, jlong handle, jfloatArray curves, jlong n, jint steps, jfloatArray emb,
                         jfloatArray recon, jint threads, jobject listener, int need_emb)
{
    fl_sae *m = model_of(env, handle);
    int64_t count;
    if (!m || !check_curves(env, m, curves, n, steps, &count)) return;
    const fl_sae_config *c = config_of(env, m);
    if (!c) return;
    int64_t ecount = checked_count(env, n, c->latent, "embedding");
    if (ecount < 0) return;
    if (need_emb && !emb) {
        check_len(env, emb, ecount, "the embedding array");
        return;
    }
    if (emb && !check_len(env, emb, ecount, "the embedding array")) return;
    if (recon && !check_len(env, recon, count, "the reconstruction array")) return;
    float *in = copy_in_floats(env, curves, count);
    if (!in) return;
    float *e = emb ? alloc_floats(env, ecount) : NULL;
    float *r = recon ? alloc_floats(env, count) : NULL;
    hook h = {0};
    fl_ctx *ctx = ((emb && !e) || (recon && !r)) ? NULL : make_ctx(env, threads, listener, &h);
    if (ctx) {
        fl_status s = need_emb && !recon ? fl_sae_encode(ctx, m, in, (int64_t)n, (int32_t)steps, e)
                                         : fl_sae_apply(ctx, m, in, (int64_t)n, (int32_t)steps, e, r);
        if (!(*env)->ExceptionCheck(env)) {
            if (s != FL_OK) throw_status(env, ctx, s);
            else {
                if (e && ecount > 0) (*env)->SetFloatArrayRegion(env, emb, 0, (jsize)ecount, e);
                if (r && count > 0) (*env)->SetFloatArrayRegion(env, recon, 0, (jsize)count, r);
            }
        }
        fl_ctx_free(ctx);
    }
    free(in);
    free(e);
    free(r);
}

JNIEXPORT void JNICALL Java_ferrolens_Native_saeEncode(JNIEnv *env, jclass cls, jlong handle, jfloatArray curves,
                                                       jlong n, jint steps, jfloatArray emb, jint threads,
                                                       jobject listener)
{
    apply_common(env, handle, curves, n, steps, emb, NULL, threads, listener, 1);
}

JNIEXPORT void JNICALL Java_ferrolens_Native_saeApply(JNIEnv *env, jclass cls, jlong handle, jfloatArray curves,
                                                      jlong n, jint steps, jfloatArray emb, jfloatArray recon,
                                                      jint threads, jobject listener)
{
    apply_common(env, handle, curves, n, steps, emb, recon, threads, listener, 0);
}

JNIEXPORT void JNICALL Java_ferrolens_Native_saeDecode(JNIEnv *env, jclass cls, jlong handle, jfloatArray emb,
                                                       jlong n, jfloatArray curves, jint threads, jobject listener)
{
    fl_sae *m = model_of(env, handle);
    if (!m) return;
    const fl_sae_config *c = config_of(env, m);
    if (!c) return;
    int64_t ecount = checked_count(env, n, c->latent, "embedding");
    if (ecount < 0) return;
    int64_t count = checked_count(env, n, c->steps, "curves");
    if (count < 0) return;
    if (!check_len(env, emb, ecount, "the embedding array") || !check_len(env, curves, count, "the curves array"))
        return;
    float *e = copy_in_floats(env, emb, ecount);
    if (!e) return;
    float *out = alloc_floats(env, count);
    hook h = {0};
    fl_ctx *ctx = out ? make_ctx(env, threads, listener, &h) : NULL;
    if (ctx) {
        fl_status s = fl_sae_decode(ctx, m, e, (int64_t)n, out);
        if (!(*env)->ExceptionCheck(env)) {
            if (s != FL_OK) throw_status(env, ctx, s);
            else if (count > 0) (*env)->SetFloatArrayRegion(env, curves, 0, (jsize)count, out);
        }
        fl_ctx_free(ctx);
    }
    free(e);
    free(out);
}

JNIEXPORT void JNICALL Java_ferrolens_Native_saeTraverse(JNIEnv *env, jclass cls, jlong handle, jfloatArray emb,
                                                         jlong n, jint channel, jint levels, jboolean others_at_mean,
                                                         jfloatArray values_out, jfloatArray curves_out,
                                                         jint threads, jobject listener)
{
    char msg[256];
    fl_sae *m = model_of(env, handle);
    if (!m) return;
    const fl_sae_config *c = config_of(env, m);
    if (!c) return;
    int64_t ecount = checked_count(env, n, c->latent, "embedding");
    if (ecount < 0) return;
    if (n == 0) {
        throw_iae(env, "no embedding rows to traverse");
        return;
    }
    if (channel < 0 || channel >= c->latent) {
        snprintf(msg, sizeof msg, "channel %d does not exist (the model has %d latent channels)", (int)channel,
                 (int)c->latent);
        throw_iae(env, msg);
        return;
    }
    if (levels < 2 || levels > 10000) {
        snprintf(msg, sizeof msg, "traverse levels must be between 2 and 10000, not %d", (int)levels);
        throw_iae(env, msg);
        return;
    }
    int64_t ccount = checked_count(env, levels, c->steps, "decoded curves");
    if (ccount < 0) return;
    if (!check_len(env, emb, ecount, "the embedding array") || !check_len(env, values_out, levels, "the values array") ||
        !check_len(env, curves_out, ccount, "the decoded curves array"))
        return;
    float *e = copy_in_floats(env, emb, ecount);
    if (!e) return;
    float *vals = alloc_floats(env, levels);
    float *out = vals ? alloc_floats(env, ccount) : NULL;
    hook h = {0};
    fl_ctx *ctx = out ? make_ctx(env, threads, listener, &h) : NULL;
    if (ctx) {
        fl_status s = fl_sae_traverse(ctx, m, e, (int64_t)n, channel, levels, others_at_mean ? 1 : 0, vals, out);
        if (!(*env)->ExceptionCheck(env)) {
            if (s != FL_OK) throw_status(env, ctx, s);
            else {
                (*env)->SetFloatArrayRegion(env, values_out, 0, levels, vals);
                if (ccount > 0) (*env)->SetFloatArrayRegion(env, curves_out, 0, (jsize)ccount, out);
            }
        }
        fl_ctx_free(ctx);
    }
    free(e);
    free(vals);
    free(out);
}

/* jstring -> malloc'd modified-UTF-8 C string ("" for NULL). */
static char *string_of(JNIEnv *env, jstring s)
{
    if (!s) return strdup("");
    const char *u = (*env)->GetStringUTFChars(env, s, NULL);
    if (!u) return NULL;
    char *r = strdup(u);
    (*env)->ReleaseStringUTFChars(env, s, u);
    if (!r) throw_oom(env, "a string");
    return r;
}

JNIEXPORT void JNICALL Java_ferrolens_Native_saeSetAxis(JNIEnv *env, jclass cls, jlong handle, jdoubleArray values,
                                                        jstring label, jstring unit)
{
    fl_sae *m = model_of(env, handle);
    if (!m) return;
    if (!values) {
        throw_class(env, "java/lang/NullPointerException", "the axis values array is null");
        return;
    }
    jsize T = (*env)->GetArrayLength(env, values);
    if (T <= 0) { /* the count against the model's curve length is checked by the engine */
        throw_iae(env, "no axis values given");
        return;
    }
    double *v = malloc((size_t)(T > 0 ? T : 1) * sizeof(double));
    if (!v) {
        throw_oom(env, "the axis values");
        return;
    }
    (*env)->GetDoubleArrayRegion(env, values, 0, T, v);
    char *l = string_of(env, label);
    char *u = l ? string_of(env, unit) : NULL;
    if (l && u) {
        fl_ctx *ctx = make_ctx(env, 1, NULL, NULL);
        if (ctx) {
            fl_status s = fl_sae_set_axis(ctx, m, v, (int32_t)T, l, u);
            if (s != FL_OK) throw_status(env, ctx, s);
            fl_ctx_free(ctx);
        }
    }
    free(v);
    free(l);
    free(u);
}

JNIEXPORT jdoubleArray JNICALL Java_ferrolens_Native_saeAxisValues(JNIEnv *env, jclass cls, jlong handle)
{
    fl_sae *m = model_of(env, handle);
    if (!m) return NULL;
    const fl_sae_config *c = config_of(env, m);
    if (!c) return NULL;
    const double *v = fl_sae_axis_values(m);
    if (!v || c->steps <= 0) return NULL;
    jdoubleArray a = (*env)->NewDoubleArray(env, c->steps);
    if (a) (*env)->SetDoubleArrayRegion(env, a, 0, c->steps, v);
    return a;
}

JNIEXPORT jstring JNICALL Java_ferrolens_Native_saeAxisUnit(JNIEnv *env, jclass cls, jlong handle)
{
    fl_sae *m = model_of(env, handle);
    return m ? new_string(env, fl_sae_axis_unit(m)) : NULL;
}

JNIEXPORT jstring JNICALL Java_ferrolens_Native_saeAxisLabel(JNIEnv *env, jclass cls, jlong handle)
{
    fl_sae *m = model_of(env, handle);
    return m ? new_string(env, fl_sae_axis_label(m)) : NULL;
}

JNIEXPORT void JNICALL Java_ferrolens_Native_saeSave(JNIEnv *env, jclass cls, jlong handle, jbyteArray path,
                                                     jint threads)
{
    fl_sae *m = model_of(env, handle);
    if (!m) return;
    char *p = path_of(env, path);
    if (!p) return;
    fl_ctx *ctx = make_ctx(env, threads, NULL, NULL);
    if (ctx) {
        fl_status s = fl_sae_save(ctx, m, p);
        if (s != FL_OK) throw_status(env, ctx, s);
        fl_ctx_free(ctx);
    }
    free(p);
}

/* load (steps < 0) or Keras import (steps = curve length). */
static jlong load_common(JNIEnv *env, jbyteArray path, jint steps, jint threads)
{
    char *p = path_of(env, path);
    if (!p) return 0;
    fl_ctx *ctx = make_ctx(env, threads, NULL, NULL);
    fl_sae *m = NULL;
    if (ctx) {
        fl_status s = steps < 0 ? fl_sae_load(ctx, p, &m) : fl_sae_import_keras(ctx, p, (int32_t)steps, &m);
        if (s == FL_OK && !m) s = FL_EINTERNAL;
        if (s != FL_OK) {
            throw_status(env, ctx, s);
            m = NULL;
        }
        fl_ctx_free(ctx);
    }
    free(p);
    return (jlong)(intptr_t)m;
}

JNIEXPORT jlong JNICALL Java_ferrolens_Native_saeLoad(JNIEnv *env, jclass cls, jbyteArray path, jint threads)
{
    return load_common(env, path, -1, threads);
}

JNIEXPORT jlong JNICALL Java_ferrolens_Native_saeImportKeras(JNIEnv *env, jclass cls, jbyteArray path, jint steps,
                                                             jint threads)
{
    if (steps <= 0) {
        throw_iae(env, "the curve length (steps) must be positive");
        return 0;
    }
    return load_common(env, path, steps, threads);
}

JNIEXPORT void JNICALL Java_ferrolens_Native_saeImportKerasDecoder(JNIEnv *env, jclass cls, jlong handle,
                                                                   jbyteArray path, jint threads)
{
    fl_sae *m = model_of(env, handle);
    if (!m) return;
    char *p = path_of(env, path);
    if (!p) return;
    fl_ctx *ctx = make_ctx(env, threads, NULL, NULL);
    if (ctx) {
        fl_status s = fl_sae_import_keras_decoder(ctx, m, p);
        if (s != FL_OK) throw_status(env, ctx, s);
        fl_ctx_free(ctx);
    }
    free(p);
}

JNIEXPORT jstring JNICALL Java_ferrolens_Native_modelInfo(JNIEnv *env, jclass cls, jbyteArray path, jboolean json)
{
    char *p = path_of(env, path);
    if (!p) return NULL;
    enum { CAP = 16384 };
    char *buf = calloc(CAP, 1);
    jstring r = NULL;
    fl_ctx *ctx = buf ? make_ctx(env, 1, NULL, NULL) : NULL;
    if (!buf) throw_oom(env, "the model description");
    if (ctx) {
        fl_status s = fl_model_info(ctx, p, json ? 1 : 0, buf, CAP);
        buf[CAP - 1] = '\0';
        if (s != FL_OK) throw_status(env, ctx, s);
        else r = new_string(env, buf);
        fl_ctx_free(ctx);
    }
    free(buf);
    free(p);
    return r;
}

/* ---- in-process commands ------------------------------------------------------------------------------
 * runCli(args, listener): runs `ferrolens <args...>` (cli/dispatch.c) on the calling thread, with
 * progress and cancel through the listener. Arguments arrive as bytes in the platform's file-name
 * encoding, so non-ASCII paths survive. Exit code 0 returns; 2 throws IllegalArgumentException, 1
 * FerrolensException, a cancel CancelledException, each with the command's first error sentence. */
JNIEXPORT void JNICALL Java_ferrolens_Native_runCli(JNIEnv *env, jclass cls, jobjectArray args, jobject listener)
{
    if (!args) {
        throw_class(env, "java/lang/NullPointerException", "no command");
        return;
    }
    jsize n = (*env)->GetArrayLength(env, args);
    if (n < 1 || n > 4096) {
        throw_iae(env, "a command needs between 1 and 4096 words");
        return;
    }
    char **argv = calloc((size_t)n + 1, sizeof *argv);
    char *message = calloc(4096, 1);
    hook h = {0};
    int ok = argv && message;
    if (!ok) throw_oom(env, "the command line");
    for (jsize i = 0; ok && i < n; i++) {
        jbyteArray a = (jbyteArray)(*env)->GetObjectArrayElement(env, args, i);
        if (!a) {
            throw_class(env, "java/lang/NullPointerException", "a command word is null");
            ok = 0;
            break;
        }
        argv[i] = path_of(env, a);
        (*env)->DeleteLocalRef(env, a);
        if (!argv[i]) ok = 0;
    }
    if (ok && listener) ok = bind_hook(env, listener, &h);
    if (ok) {
        cli_host host = {listener ? progress_cb : NULL, &h, message, 4096};
        cli_set_host(&host);
        int rc = cli_run((int)n, argv);
        cli_set_host(NULL);
        if (rc != 0 && !(*env)->ExceptionCheck(env)) {
            if (!message[0]) snprintf(message, 4096, "the command failed (exit code %d)", rc);
            if (strstr(message, "cancel")) throw_class(env, "ferrolens/CancelledException", message);
            else if (rc == 2) throw_iae(env, message);
            else throw_status_message(env, FL_EIO, message);
        }
    }
    if (argv)
        for (jsize i = 0; i < n; i++) free(argv[i]);
    free(argv);
    free(message);
}
