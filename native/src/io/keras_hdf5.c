/* Keras 2.x HDF5 import of the (Bi)LSTM autoencoder; see keras_hdf5.h for the contract.
 *
 * Layout of a Keras 2.1.5 file (as found in the Agar weights):
 *   [/model_weights]                       attrs layer_names (fixed-length strings, NULLPAD: a name
 *                                          that fills the whole STRSIZE has no terminating NUL),
 *                                          backend, keras_version (variable-length strings)
 *   <root>/<layer>                         attr weight_names (fixed-length strings; layers without
 *                                          weights carry an *empty float64* array instead)
 *   <root>/<layer>/<weight_name>           dataset, e.g. bidirectional_1/forward_lstm_1/kernel:0
 *                                          relative to /bidirectional_1, or time_distributed_1/kernel:0
 *                                          relative to /time_distributed_1 (no inner dense_k group)
 *   /model_config (full model files only)  JSON, variable-length string
 *
 * HDF5 and threads: we cannot rely on the libhdf5 we are linked with being built thread-safe
 * (--enable-threadsafe is a build option; the 1.10.8 serial library on the dev machine reports
 * H5is_library_threadsafe() = 1, but other distributions/builds do not), and in a non-thread-safe
 * build the automatic error-printing setting changed with H5Eset_auto2 (which we need to keep HDF5
 * from printing to stderr) is process-global state. Every HDF5 call of this file therefore runs
 * under one static mutex, and the previous error handler is saved and restored around each locked
 * section. Other code in the process that uses libhdf5 without taking this lock is not protected
 * (the engine has no other HDF5 user).
 */
#include "keras_hdf5.h"
#include "safetensors.h"

#include <hdf5.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Limits for untrusted files. */
#define KW_MAX_LAYERS 4096
#define KW_MAX_STRINGS 100000
#define KW_MAX_STRLEN 65536
#define KW_MAX_DIM ((hsize_t)1 << 24)
#define KW_MAX_NUMEL ((hsize_t)1 << 28)
#define KW_MAX_JSON ((size_t)64 << 20)

static pthread_mutex_t g_h5_lock = PTHREAD_MUTEX_INITIALIZER;

typedef struct h5_guard {
    H5E_auto2_t func;
    void *data;
} h5_guard;

/* Silences libhdf5's automatic error printing; the caller holds g_h5_lock. */
static void h5_quiet(h5_guard *g)
{
    g->func = NULL;
    g->data = NULL;
    if (H5Eget_auto2(H5E_DEFAULT, &g->func, &g->data) < 0) {
        g->func = NULL;
        g->data = NULL;
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static void h5_restore(h5_guard *g) { H5Eset_auto2(H5E_DEFAULT, g->func, g->data); }

static void h5_close_obj(hid_t *id, herr_t (*fn)(hid_t))
{
    if (*id >= 0) fn(*id);
    *id = H5I_INVALID_HID;
}

/* External links would make HDF5 open other files named by the untrusted file: refuse them. */
static herr_t deny_external_link(const char *parent_file, const char *parent_group, const char *child_file,
                                 const char *child_object, unsigned *acc_flags, hid_t fapl, void *op_data)
{
    (void)parent_file; (void)parent_group; (void)child_file; (void)child_object;
    (void)acc_flags; (void)fapl; (void)op_data;
    return -1;
}

/* Innermost HDF5 error description (for messages); buf is "" when there is none. */
static herr_t h5_walk_cb(unsigned n, const H5E_error2_t *err, void *data)
{
    char *buf = data;
    if (n == 0 && err && err->desc) snprintf(buf, 160, "%s", err->desc);
    return 0;
}

static const char *h5_reason(char *buf)
{
    buf[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, h5_walk_cb, buf);
    return buf;
}

/* ------------------------------------------------------------------------------------------------
 * string attributes */

typedef struct kw_strings {
    char **s;
    size_t n, cap;
} kw_strings;

static void strings_free(kw_strings *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->s[i]);
    free(l->s);
    memset(l, 0, sizeof *l);
}

static fl_status strings_push(fl_ctx *ctx, kw_strings *l, const char *s, size_t len)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        char **p = realloc(l->s, cap * sizeof *p);
        if (!p) return fl_fail(ctx, FL_ENOMEM, "out of memory while reading a Keras file");
        l->s = p;
        l->cap = cap;
    }
    char *c = malloc(len + 1);
    if (!c) return fl_fail(ctx, FL_ENOMEM, "out of memory while reading a Keras file");
    memcpy(c, s, len);
    c[len] = '\0';
    l->s[l->n++] = c;
    return FL_OK;
}

/* Appends the strings of attribute `name` of `obj` (scalar or 1-D, fixed or variable length) to
 * `out`. A 0-element attribute of any type (Keras writes an empty float64 array for layers without
 * weights) adds nothing. */
static fl_status read_string_attr(fl_ctx *ctx, hid_t obj, const char *name, const char *where, kw_strings *out)
{
    fl_status st = FL_OK;
    hid_t aid = H5I_INVALID_HID, sid = H5I_INVALID_HID, tid = H5I_INVALID_HID, mt = H5I_INVALID_HID;
    char *fixed = NULL;
    char **var = NULL;
    hssize_t np = 0;
    char why[160];

    aid = H5Aopen(obj, name, H5P_DEFAULT);
    if (aid < 0) { st = fl_fail(ctx, FL_EFORMAT, "%s: cannot open attribute '%s' (%s)", where, name, h5_reason(why)); goto done; }
    sid = H5Aget_space(aid);
    tid = H5Aget_type(aid);
    if (sid < 0 || tid < 0) { st = fl_fail(ctx, FL_EFORMAT, "%s: unreadable attribute '%s'", where, name); goto done; }
    int rank = H5Sget_simple_extent_ndims(sid);
    np = H5Sget_simple_extent_npoints(sid);
    if (rank < 0 || rank > 1 || np < 0 || np > KW_MAX_STRINGS) {
        st = fl_fail(ctx, FL_EFORMAT, "%s: attribute '%s' is not a list of names (rank %d, %lld entries)", where, name,
                     rank, (long long)np);
        goto done;
    }
    if (np == 0) goto done;
    if (H5Tget_class(tid) != H5T_STRING) {
        st = fl_fail(ctx, FL_EFORMAT, "%s: attribute '%s' is not a string attribute", where, name);
        goto done;
    }
    htri_t isvar = H5Tis_variable_str(tid);
    if (isvar < 0) { st = fl_fail(ctx, FL_EFORMAT, "%s: attribute '%s' has a bad string type", where, name); goto done; }
    mt = H5Tcopy(H5T_C_S1);
    if (mt < 0) { st = fl_fail(ctx, FL_EINTERNAL, "HDF5 could not create a string type"); goto done; }
    H5Tset_cset(mt, H5Tget_cset(tid));
    if (isvar) {
        H5Tset_size(mt, H5T_VARIABLE);
        var = calloc((size_t)np, sizeof *var);
        if (!var) { st = fl_fail(ctx, FL_ENOMEM, "out of memory while reading a Keras file"); goto done; }
        if (H5Aread(aid, mt, var) < 0) {
            free(var);
            var = NULL;
            st = fl_fail(ctx, FL_EFORMAT, "%s: cannot read attribute '%s' (%s)", where, name, h5_reason(why));
            goto done;
        }
        for (hssize_t i = 0; i < np && st == FL_OK; i++) {
            const char *s = var[i] ? var[i] : "";
            size_t len = strnlen(s, KW_MAX_STRLEN + 1);
            if (len > KW_MAX_STRLEN && strcmp(name, "model_config") != 0)
                st = fl_fail(ctx, FL_EFORMAT, "%s: attribute '%s' holds an over-long string", where, name);
            else
                st = strings_push(ctx, out, s, strlen(s));
        }
    } else {
        size_t sz = H5Tget_size(tid);
        if (sz == 0 || sz > KW_MAX_JSON) { st = fl_fail(ctx, FL_EFORMAT, "%s: attribute '%s' has a bad string size", where, name); goto done; }
        H5Tset_size(mt, sz);
        H5Tset_strpad(mt, H5T_STR_NULLPAD);
        size_t total;
        if (!fl_mul_size(sz, (size_t)np, &total) || total > KW_MAX_JSON) {
            st = fl_fail(ctx, FL_EFORMAT, "%s: attribute '%s' is too large", where, name);
            goto done;
        }
        fixed = malloc(total);
        if (!fixed) { st = fl_fail(ctx, FL_ENOMEM, "out of memory while reading a Keras file"); goto done; }
        if (H5Aread(aid, mt, fixed) < 0) {
            st = fl_fail(ctx, FL_EFORMAT, "%s: cannot read attribute '%s' (%s)", where, name, h5_reason(why));
            goto done;
        }
        for (hssize_t i = 0; i < np && st == FL_OK; i++) {
            const char *s = fixed + (size_t)i * sz;
            st = strings_push(ctx, out, s, strnlen(s, sz));
        }
    }
done:
    if (var) {
#if H5_VERSION_GE(1, 12, 0)
        H5Treclaim(mt, sid, H5P_DEFAULT, var);
#else
        H5Dvlen_reclaim(mt, sid, H5P_DEFAULT, var);
#endif
        free(var);
    }
    free(fixed);
    h5_close_obj(&mt, H5Tclose);
    h5_close_obj(&tid, H5Tclose);
    h5_close_obj(&sid, H5Sclose);
    h5_close_obj(&aid, H5Aclose);
    return st;
}

/* Like read_string_attr, but also accepts Keras' split form for large lists (name0, name1, ...).
 * A missing attribute is an error naming `where`. */
static fl_status read_name_list(fl_ctx *ctx, hid_t obj, const char *name, const char *where, kw_strings *out)
{
    htri_t ex = H5Aexists(obj, name);
    if (ex > 0) return read_string_attr(ctx, obj, name, where, out);
    char chunk[96];
    for (int k = 0;; k++) {
        snprintf(chunk, sizeof chunk, "%s%d", name, k);
        ex = H5Aexists(obj, chunk);
        if (ex <= 0) {
            if (k == 0)
                return fl_fail(ctx, FL_EFORMAT, "%s has no '%s' attribute: not a Keras HDF5 weight file", where, name);
            return FL_OK;
        }
        fl_status st = read_string_attr(ctx, obj, chunk, where, out);
        if (st != FL_OK) return st;
        if (out->n > KW_MAX_STRINGS) return fl_fail(ctx, FL_EFORMAT, "%s: too many entries in '%s'", where, name);
    }
}

/* ------------------------------------------------------------------------------------------------
 * layers */

typedef struct kw_array {
    float *data;
    int ndim;
    int64_t dims[2];
} kw_array;

enum kw_kind { KW_EMPTY = 0, KW_LSTM, KW_BILSTM, KW_BN, KW_DENSE };

/* Slots of w[]: LSTM/BiLSTM 0..2 forward kernel, recurrent_kernel, bias, 3..5 backward;
 * BN 0 gamma, 1 beta, 2 moving_mean, 3 moving_variance; Dense 0 kernel, 1 bias. */
typedef struct kw_layer {
    char name[128];
    int kind;
    kw_array w[6];
} kw_layer;

typedef struct kw_file {
    kw_layer *layers;   /* layers with weights only, in layer_names order */
    int n;
    char keras_version[64];
    char backend[64];
    char *model_config; /* malloc'd JSON or NULL */
} kw_file;

static void kw_file_free(kw_file *f)
{
    for (int i = 0; i < f->n; i++)
        for (int k = 0; k < 6; k++) fl_free(f->layers[i].w[k].data);
    free(f->layers);
    free(f->model_config);
    memset(f, 0, sizeof *f);
}

/* Reads one weight dataset as float (any HDF5 float type is converted by HDF5). */
static fl_status read_array(fl_ctx *ctx, hid_t grp, hid_t dapl, const char *layer, const char *wname, kw_array *a)
{
    fl_status st = FL_OK;
    hid_t did = H5I_INVALID_HID, sid = H5I_INVALID_HID, tid = H5I_INVALID_HID;
    char why[160];
    float *buf = NULL;

    did = H5Dopen2(grp, wname, dapl);
    if (did < 0) {
        st = fl_fail(ctx, FL_EFORMAT, "layer '%s': weight '%s' listed in weight_names is missing or not a dataset (%s)",
                     layer, wname, h5_reason(why));
        goto done;
    }
    tid = H5Dget_type(did);
    sid = H5Dget_space(did);
    if (tid < 0 || sid < 0) { st = fl_fail(ctx, FL_EFORMAT, "layer '%s': weight '%s' is unreadable", layer, wname); goto done; }
    if (H5Tget_class(tid) != H5T_FLOAT) {
        st = fl_fail(ctx, FL_EFORMAT, "layer '%s': weight '%s' is not a floating-point array", layer, wname);
        goto done;
    }
    /* Only IEEE single or double precision (what Keras writes). A float type of arbitrary size and bit
     * layout from the file would make H5Dread allocate a conversion buffer of that size (gigabytes)
     * and run libhdf5's generic float conversion on hostile parameters. */
    if (H5Tequal(tid, H5T_IEEE_F32LE) <= 0 && H5Tequal(tid, H5T_IEEE_F32BE) <= 0 &&
        H5Tequal(tid, H5T_IEEE_F64LE) <= 0 && H5Tequal(tid, H5T_IEEE_F64BE) <= 0) {
        st = fl_fail(ctx, FL_EUNSUPPORTED,
                     "layer '%s': weight '%s' is stored as a %zu-byte float type; only IEEE float32/float64 "
                     "weights can be imported",
                     layer, wname, H5Tget_size(tid));
        goto done;
    }
    if (H5Sget_simple_extent_type(sid) != H5S_SIMPLE) {
        st = fl_fail(ctx, FL_EFORMAT, "layer '%s': weight '%s' is not an array", layer, wname);
        goto done;
    }
    int rank = H5Sget_simple_extent_ndims(sid);
    if (rank < 1 || rank > 2) {
        st = fl_fail(ctx, FL_EFORMAT, "layer '%s': weight '%s' has %d dimensions, expected 1 or 2", layer, wname, rank);
        goto done;
    }
    hsize_t dims[2] = {0, 0};
    H5Sget_simple_extent_dims(sid, dims, NULL);
    hsize_t numel = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] == 0 || dims[i] > KW_MAX_DIM) {
            st = fl_fail(ctx, FL_EFORMAT, "layer '%s': weight '%s' has an invalid size %llu", layer, wname,
                         (unsigned long long)dims[i]);
            goto done;
        }
        numel *= dims[i];
    }
    if (numel > KW_MAX_NUMEL) {
        st = fl_fail(ctx, FL_EFORMAT, "layer '%s': weight '%s' is implausibly large (%llu values)", layer, wname,
                     (unsigned long long)numel);
        goto done;
    }
    st = fl_check_budget(ctx, (size_t)numel * sizeof(float), "importing the Keras weights");
    if (st != FL_OK) goto done;
    buf = fl_alloc((size_t)numel * sizeof(float));
    if (!buf) { st = fl_fail(ctx, FL_ENOMEM, "out of memory for Keras weight '%s' (%llu values)", wname, (unsigned long long)numel); goto done; }
    if (H5Dread(did, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        st = fl_fail(ctx, FL_EFORMAT, "layer '%s': weight '%s' could not be read (%s)", layer, wname, h5_reason(why));
        goto done;
    }
    for (hsize_t i = 0; i < numel; i++) {
        if (!isfinite(buf[i])) {
            st = fl_fail(ctx, FL_EFORMAT, "layer '%s': weight '%s' contains NaN or infinite values", layer, wname);
            goto done;
        }
    }
    a->data = buf;
    buf = NULL;
    a->ndim = rank;
    a->dims[0] = (int64_t)dims[0];
    a->dims[1] = rank == 2 ? (int64_t)dims[1] : 0;
done:
    fl_free(buf);
    h5_close_obj(&tid, H5Tclose);
    h5_close_obj(&sid, H5Sclose);
    h5_close_obj(&did, H5Dclose);
    return st;
}

/* "bidirectional_1/forward_lstm_1/kernel:0" -> role "kernel", parent "forward_lstm_1". */
static void split_weight_name(const char *w, char *role, size_t rcap, char *parent, size_t pcap)
{
    const char *last = strrchr(w, '/');
    const char *r = last ? last + 1 : w;
    size_t rl = strcspn(r, ":");
    snprintf(role, rcap, "%.*s", (int)(rl < rcap ? rl : rcap - 1), r);
    parent[0] = '\0';
    if (last) {
        const char *p = last;
        while (p > w && p[-1] != '/') p--;
        size_t pl = (size_t)(last - p);
        snprintf(parent, pcap, "%.*s", (int)(pl < pcap ? pl : pcap - 1), p);
    }
}

static int role_index(const char *role, const char *const *roles, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(role, roles[i]) == 0) return i;
    return -1;
}

/* Classifies a layer by its weight names, then reads the datasets into the right slots. */
static fl_status read_layer(fl_ctx *ctx, hid_t grp, hid_t dapl, const kw_strings *wn, kw_layer *L)
{
    static const char *const rnn_roles[] = {"kernel", "recurrent_kernel", "bias"};
    static const char *const bn_roles[] = {"gamma", "beta", "moving_mean", "moving_variance"};
    static const char *const dense_roles[] = {"kernel", "bias"};
    int slot[6];
    char role[64], parent[128];
    size_t n = wn->n;

    for (size_t i = 0; i < n; i++) {
        split_weight_name(wn->s[i], role, sizeof role, parent, sizeof parent);
        if (strstr(parent, "gru") || strstr(parent, "GRU"))
            return fl_fail(ctx, FL_EUNSUPPORTED, "layer '%s' is a GRU; only LSTM layers can be imported", L->name);
        if (strstr(parent, "simple_rnn"))
            return fl_fail(ctx, FL_EUNSUPPORTED, "layer '%s' is a SimpleRNN; only LSTM layers can be imported", L->name);
    }
    int has_rk = 0;
    for (size_t i = 0; i < n; i++) {
        split_weight_name(wn->s[i], role, sizeof role, parent, sizeof parent);
        if (strcmp(role, "recurrent_kernel") == 0) has_rk = 1;
    }
    if (has_rk && (n == 3 || n == 6)) {
        L->kind = n == 6 ? KW_BILSTM : KW_LSTM;
        for (size_t i = 0; i < n; i++) {
            split_weight_name(wn->s[i], role, sizeof role, parent, sizeof parent);
            int r = role_index(role, rnn_roles, 3);
            int dir = 0;
            if (n == 6) {
                if (strncmp(parent, "forward", 7) == 0) dir = 0;
                else if (strncmp(parent, "backward", 8) == 0) dir = 1;
                else r = -1;
            }
            if (r < 0) goto unsupported;
            slot[i] = 3 * dir + r;
        }
    } else if (n == 4) {
        L->kind = KW_BN;
        for (size_t i = 0; i < n; i++) {
            split_weight_name(wn->s[i], role, sizeof role, parent, sizeof parent);
            if ((slot[i] = role_index(role, bn_roles, 4)) < 0) goto unsupported;
        }
    } else if (n == 2) {
        L->kind = KW_DENSE;
        for (size_t i = 0; i < n; i++) {
            split_weight_name(wn->s[i], role, sizeof role, parent, sizeof parent);
            if ((slot[i] = role_index(role, dense_roles, 2)) < 0) goto unsupported;
        }
    } else {
        goto unsupported;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < i; j++)
            if (slot[i] == slot[j])
                return fl_fail(ctx, FL_EFORMAT, "layer '%s' lists the weight '%s' twice", L->name, wn->s[i]);
    for (size_t i = 0; i < n; i++) {
        fl_status st = read_array(ctx, grp, dapl, L->name, wn->s[i], &L->w[slot[i]]);
        if (st != FL_OK) return st;
    }
    return FL_OK;
unsupported:
    return fl_fail(ctx, FL_EUNSUPPORTED,
                   "layer '%s' has %zu weights ('%s'%s) and is not an LSTM, Bidirectional(LSTM), BatchNormalization "
                   "or Dense layer with bias: it cannot be imported",
                   L->name, n, n ? wn->s[0] : "", n > 1 ? ", ..." : "");
}

/* ------------------------------------------------------------------------------------------------
 * Pre-check of the raw file, before libhdf5 sees it.
 *
 * libhdf5 up to 1.14.1 (Debian 12 ships 1.10.8) loops forever when a global heap collection ("GCOL",
 * where variable-length strings such as keras_version, backend and model_config live) holds a
 * free-space object (index 0) of size 0: H5HG__cache_heap_deserialize advances by the object size.
 * Objects reaching past their collection make it read past its buffer. (Fixed upstream by "Sanitize
 * H5HG cache deserialization code", HDFGroup/hdf5 PR #2808.) So before any HDF5 call we find the
 * superblock (offset 0, 512, 1024, ...), take the size of lengths from it, and walk every global heap
 * collection of the file (every "GCOL" signature with version 1; HDF5 refuses a collection without
 * one) the way libhdf5 will, refusing the file when an object does not advance or does not fit. */

static int pread_all(int fd, void *buf, size_t n, uint64_t off)
{
    unsigned char *p = buf;
    while (n) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r <= 0) return 0;
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 1;
}

static uint64_t le_uint(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static uint64_t align8_u64(uint64_t x) { return (x + 7) & ~(uint64_t)7; }

/* FL_OK, or FL_EFORMAT with the reason in `why` (static text). */
static fl_status gcol_walk(int fd, uint64_t at, uint64_t fsize, int lsize, const char **why)
{
    const uint64_t hdr = align8_u64(8u + (uint64_t)lsize), objhdr = hdr; /* both 16 for 2/4/8-byte lengths */
    unsigned char b[16];
    if (fsize - at < hdr || !pread_all(fd, b, (size_t)(8 + lsize), at)) {
        *why = "a global heap collection is cut off by the end of the file";
        return FL_EFORMAT;
    }
    uint64_t size = le_uint(b + 8, lsize);
    if (size < hdr || size > fsize - at) {
        *why = "a global heap collection has an invalid size";
        return FL_EFORMAT;
    }
    for (uint64_t p = hdr; p < size;) {
        if (size - p < objhdr) break; /* tail too small for an object header: free space */
        if (!pread_all(fd, b, (size_t)(8 + lsize), at + p)) {
            *why = "a global heap collection cannot be read";
            return FL_EFORMAT;
        }
        unsigned idx = (unsigned)le_uint(b, 2);
        uint64_t osize = le_uint(b + 8, lsize);
        if (osize > size) {
            *why = "a global heap object is larger than its collection";
            return FL_EFORMAT;
        }
        uint64_t need = idx ? objhdr + align8_u64(osize) : osize;
        if (need == 0 || need > size - p) {
            *why = need == 0 ? "a global heap collection has a free-space object of size 0"
                             : "a global heap object reaches past its collection";
            return FL_EFORMAT;
        }
        p += need;
    }
    return FL_OK;
}

static fl_status h5_precheck(fl_ctx *ctx, const char *path)
{
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fl_fail(ctx, FL_EIO, "cannot open Keras file '%s': %s", path, strerror(errno));
    fl_status st = FL_OK;
    unsigned char *buf = NULL;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = fl_fail(ctx, FL_EIO, "'%s' is not a regular file", path);
        goto done;
    }
    const uint64_t fsize = (uint64_t)sb.st_size;
    /* superblock: at 0 or at a power of two >= 512 (after a user block) */
    int lsize = -1;
    for (uint64_t off = 0; off + 16 <= fsize; off = off ? 2 * off : 512) {
        unsigned char b[16];
        if (!pread_all(fd, b, 16, off)) break;
        if (memcmp(b, sig, 8) != 0) continue;
        if (b[8] <= 1) lsize = b[14];
        else if (b[8] <= 3) lsize = b[10];
        else lsize = 0;
        break;
    }
    if (lsize < 0) {
        st = fl_fail(ctx, FL_EFORMAT, "'%s' is not an HDF5 file (expected a Keras .h5/.hdf5 weight file)", path);
        goto done;
    }
    if (lsize != 2 && lsize != 4 && lsize != 8) {
        st = fl_fail(ctx, FL_EFORMAT, "'%s' is not a valid HDF5 file (unsupported superblock layout)", path);
        goto done;
    }
    /* every global heap collection, in 1 MiB windows that overlap by the 5 bytes a match needs */
    enum { WIN = 1 << 20, OVL = 4 };
    buf = malloc(WIN + OVL + 1);
    if (!buf) {
        st = fl_fail(ctx, FL_ENOMEM, "out of memory while checking '%s'", path);
        goto done;
    }
    for (uint64_t base = 0; base < fsize && st == FL_OK; base += WIN) {
        size_t n = fsize - base < WIN + OVL + 1 ? (size_t)(fsize - base) : WIN + OVL + 1;
        if (!pread_all(fd, buf, n, base)) {
            st = fl_fail(ctx, FL_EIO, "cannot read '%s'", path);
            break;
        }
        for (size_t i = 0; i + 5 <= n && i < WIN && st == FL_OK; i++) {
            if (buf[i] != 'G' || memcmp(buf + i, "GCOL", 4) != 0 || buf[i + 4] != 1) continue;
            const char *why = NULL;
            if (gcol_walk(fd, base + i, fsize, lsize, &why) != FL_OK)
                st = fl_fail(ctx, FL_EFORMAT, "'%s' is a damaged HDF5 file: %s (offset %llu)", path, why,
                             (unsigned long long)(base + i));
        }
    }
done:
    free(buf);
    close(fd);
    return st;
}

/* Opens the file with libhdf5 and reads every layer with weights. The caller has run h5_precheck and
 * holds g_h5_lock (in the import child: a copy of the parent's locked mutex, see kw_read_file). */
static fl_status kw_parse_h5(fl_ctx *ctx, const char *path, kw_file *f)
{
    fl_status st = FL_OK;
    hid_t fapl = H5I_INVALID_HID, gapl = H5I_INVALID_HID, dapl = H5I_INVALID_HID;
    hid_t fid = H5I_INVALID_HID, root = H5I_INVALID_HID, grp = H5I_INVALID_HID;
    kw_strings names = {0}, wn = {0}, tmp = {0};
    char why[160];
    h5_guard guard;

    memset(f, 0, sizeof *f);
    h5_quiet(&guard);
#if H5_VERSION_GE(1, 12, 0)
    htri_t ish5 = H5Fis_accessible(path, H5P_DEFAULT);
#else
    htri_t ish5 = H5Fis_hdf5(path);
#endif
    if (ish5 <= 0) {
        st = fl_fail(ctx, FL_EFORMAT, "'%s' is not an HDF5 file (expected a Keras .h5/.hdf5 weight file)", path);
        goto done;
    }
    fapl = H5Pcreate(H5P_FILE_ACCESS);
    gapl = H5Pcreate(H5P_GROUP_ACCESS);
    dapl = H5Pcreate(H5P_DATASET_ACCESS);
    if (fapl < 0 || gapl < 0 || dapl < 0 || H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0 ||
        H5Pset_elink_cb(gapl, deny_external_link, NULL) < 0 || H5Pset_elink_cb(dapl, deny_external_link, NULL) < 0) {
        st = fl_fail(ctx, FL_EINTERNAL, "HDF5 property lists could not be created");
        goto done;
    }
    fid = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    if (fid < 0) {
        st = fl_fail(ctx, FL_EFORMAT, "HDF5 file '%s' could not be opened (%s)", path, h5_reason(why));
        goto done;
    }
    root = H5Gopen2(fid, "/", gapl);
    if (root < 0) { st = fl_fail(ctx, FL_EFORMAT, "HDF5 file '%s' has no root group", path); goto done; }

    /* full model file: JSON architecture at the root, weights under /model_weights */
    if (H5Aexists(root, "model_config") > 0) {
        st = read_string_attr(ctx, root, "model_config", path, &tmp);
        if (st != FL_OK) goto done;
        if (tmp.n == 1 && (f->model_config = strdup(tmp.s[0])) == NULL) {
            st = fl_fail(ctx, FL_ENOMEM, "out of memory while reading a Keras file");
            goto done;
        }
        strings_free(&tmp);
    }
    if (H5Lexists(root, "model_weights", H5P_DEFAULT) > 0) {
        hid_t mw = H5Gopen2(root, "model_weights", gapl);
        if (mw < 0) { st = fl_fail(ctx, FL_EFORMAT, "'%s': /model_weights is not a group", path); goto done; }
        H5Gclose(root);
        root = mw;
    }
    /* informational and optional: a problem with them is not reported (scratch context) */
    static const char *const info_attrs[2] = {"keras_version", "backend"};
    char *info_dst[2] = {f->keras_version, f->backend};
    for (int k = 0; k < 2; k++) {
        fl_ctx quiet;
        memset(&quiet, 0, sizeof quiet);
        if (H5Aexists(root, info_attrs[k]) > 0 && read_string_attr(&quiet, root, info_attrs[k], path, &tmp) == FL_OK &&
            tmp.n == 1)
            snprintf(info_dst[k], 64, "%s", tmp.s[0]);
        strings_free(&tmp);
    }

    st = read_name_list(ctx, root, "layer_names", path, &names);
    if (st != FL_OK) goto done;
    if (names.n == 0 || names.n > KW_MAX_LAYERS) {
        st = fl_fail(ctx, FL_EFORMAT, "'%s' lists %zu layers", path, names.n);
        goto done;
    }
    f->layers = calloc(names.n, sizeof *f->layers);
    if (!f->layers) { st = fl_fail(ctx, FL_ENOMEM, "out of memory while reading a Keras file"); goto done; }
    for (size_t i = 0; i < names.n; i++) {
        const char *ln = names.s[i];
        if (!*ln || strchr(ln, '/') || strlen(ln) >= sizeof f->layers[0].name) {
            st = fl_fail(ctx, FL_EFORMAT, "'%s': invalid layer name '%.60s' in layer_names", path, ln);
            goto done;
        }
        grp = H5Gopen2(root, ln, gapl);
        if (grp < 0) {
            st = fl_fail(ctx, FL_EFORMAT, "'%s': layer '%s' is listed in layer_names but has no group", path, ln);
            goto done;
        }
        char where[200];
        snprintf(where, sizeof where, "layer '%s'", ln);
        st = read_name_list(ctx, grp, "weight_names", where, &wn);
        if (st != FL_OK) goto done;
        if (wn.n > 0) {
            kw_layer *L = &f->layers[f->n++];
            snprintf(L->name, sizeof L->name, "%s", ln);
            st = read_layer(ctx, grp, dapl, &wn, L);
            if (st != FL_OK) goto done;
        }
        strings_free(&wn);
        h5_close_obj(&grp, H5Gclose);
    }
done:
    strings_free(&names);
    strings_free(&wn);
    strings_free(&tmp);
    h5_close_obj(&grp, H5Gclose);
    h5_close_obj(&root, H5Gclose);
    h5_close_obj(&fid, H5Fclose);
    h5_close_obj(&dapl, H5Pclose);
    h5_close_obj(&gapl, H5Pclose);
    h5_close_obj(&fapl, H5Pclose);
    h5_restore(&guard);
    if (st != FL_OK) kw_file_free(f);
    return st;
}

/* ------------------------------------------------------------------------------------------------
 * Isolation of libhdf5 in a child process.
 *
 * Debian's libhdf5 1.10.8 crashes (out-of-bounds reads, SEGV) on some damaged files before any of
 * our code sees the data (tests/fuzz/regressions/keras/hdf5-attr-decode-heap-overflow.h5,
 * hdf5-global-heap-H5HG_read-segv.h5; unit tests keras_isolation). In Fiji that would kill the
 * JVM. So the whole libhdf5 parse runs in a forked child: the child parses the file exactly as the
 * in-process path does (kw_parse_h5), stores the layers it found (kw_to_list: tensors
 * "l<i>.w<k>", metadata kw_layers / kw_layer<i>_name / kw_layer<i>_kind / keras_version / backend /
 * model_config) with the engine's safetensors writer in a private temporary folder (mkdtemp, 0700),
 * writes a fixed-size report (status and message) into a pipe and _exit()s. The parent waits for the
 * report with a timeout (FL_KERAS_CHILD_TIMEOUT_MS in keras_hdf5.h, then SIGKILL), reaps the child, and reads the layers back
 * with the (fuzzed) safetensors reader (kw_from_list); the architecture checks (build_ae /
 * build_decoder) then run in the parent. A child that dies by a signal, exits non-zero or leaves no
 * complete report becomes one clear error; the temporary folder is always removed.
 *
 * Fork safety: g_h5_lock is held from before fork() until the child is reaped, so no other thread of
 * ours is inside libhdf5 when the process is copied and imports stay serialised as before. The child
 * never takes the lock (its copy is held), calls no OpenMP code (an inherited OpenMP thread pool is
 * unusable after fork), no progress hook (JNI) and no atexit handler (_exit). It restores the default
 * action of the crash signals (the JVM's own handlers would write hs_err files and abort) unless
 * built with a sanitizer, whose report is more useful. On Linux it dies with its parent
 * (PR_SET_PDEATHSIG). Without fork() (KW_USE_FORK 0) the parse runs in-process under the lock.
 *
 * Test hooks (fl_keras_child_opts, keras_hdf5.h): a shorter time limit and a sleep of the child before
 * it parses (tests/unit/test_keras_isolation.c: timeout and cancel paths), the child's id, and
 * `in_process`, which runs exactly the child's work (kw_child_work) in the calling process and then
 * the parent's steps, for allocation-failure sweeps without a fork per attempt. */

#ifndef KW_USE_FORK /* -DKW_USE_FORK=0: in-process parse (e.g. to fuzz kw_parse_h5 with leak detection) */
#if defined(__unix__) || defined(__APPLE__)
#define KW_USE_FORK 1
#else
#define KW_USE_FORK 0
#endif
#endif

#if KW_USE_FORK
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#define KW_REPORT_MAGIC 0x4b574831u /* "KWH1" */

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define KW_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define KW_SANITIZED 1
#endif
#endif
#ifndef KW_SANITIZED
#define KW_SANITIZED 0
#endif
/* AddressSanitizer builds (fuzzing): the child counts the HDF5 objects left open and the parent turns
 * that into FL_EINTERNAL, so the fuzz target still sees unclosed handles of the reader. (LeakSanitizer
 * cannot run in the child: the threads of the parent that fork() did not copy make it report their
 * memory as leaked.) */
#if defined(__SANITIZE_ADDRESS__)
#define KW_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KW_ASAN 1
#endif
#endif
#ifndef KW_ASAN
#define KW_ASAN 0
#endif
#if KW_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

typedef struct kw_report {
    uint32_t magic;
    int32_t status;
    int32_t open_objects; /* KW_ASAN builds only */
    char message[FL_MSG_CAP];
} kw_report;

/* Strings from the file (layer names, keras_version, backend, model_config) may hold any bytes, but
 * safetensors metadata must be valid UTF-8 JSON: bytes outside printable ASCII, and '%', travel as
 * "%XX". The encoded model_config is limited so that the header stays far below
 * FL_SAFETENSORS_MAX_HEADER (a real one is a few kB of ASCII JSON). */
#define KW_MAX_ENCODED ((size_t)48 << 20)

static fl_status meta_put(fl_ctx *ctx, fl_tensor_list *l, const char *key, const char *v)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) n += (*p < 0x20 || *p > 0x7e || *p == '%') ? 3 : 1;
    if (n > KW_MAX_ENCODED)
        return fl_fail(ctx, FL_EUNSUPPORTED, "the Keras attribute '%s' is too large to import (%zu bytes)", key, strlen(v));
    char *e = malloc(n + 1);
    if (!e) return fl_fail(ctx, FL_ENOMEM, "out of memory while reading a Keras file");
    static const char hex[] = "0123456789ABCDEF";
    size_t k = 0;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p < 0x20 || *p > 0x7e || *p == '%') {
            e[k++] = '%';
            e[k++] = hex[*p >> 4];
            e[k++] = hex[*p & 15];
        } else {
            e[k++] = (char)*p;
        }
    }
    e[k] = '\0';
    fl_status st = fl_tensor_list_set_meta(ctx, l, key, e);
    free(e);
    return st;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes meta_put's "%XX" in place; 0 when malformed or when it would decode to NUL. */
static int meta_decode(char *s)
{
    char *w = s;
    for (const char *r = s; *r; r++) {
        if (*r != '%') {
            *w++ = *r;
            continue;
        }
        int hi = hexval(r[1]), lo = hi < 0 ? -1 : hexval(r[2]);
        if (lo < 0 || (hi == 0 && lo == 0)) return 0;
        *w++ = (char)(hi * 16 + lo);
        r += 2;
    }
    *w = '\0';
    return 1;
}

/* fl_tensor_list_get_meta + meta_decode into a malloc'd copy (NULL when absent; *bad when malformed). */
static char *meta_get(const fl_tensor_list *l, const char *key, int *bad)
{
    const char *v = fl_tensor_list_get_meta(l, key);
    if (!v) return NULL;
    char *c = strdup(v);
    if (!c || !meta_decode(c)) {
        if (*bad != 2) *bad = c ? 1 : 2;
        free(c);
        return NULL;
    }
    return c;
}

static fl_status kw_to_list(fl_ctx *ctx, const kw_file *f, fl_tensor_list *l)
{
    char key[64], val[32];
    fl_status st;
    snprintf(val, sizeof val, "%d", f->n);
    if ((st = fl_tensor_list_set_meta(ctx, l, "kw_layers", val)) != FL_OK) return st;
    for (int i = 0; i < f->n; i++) {
        const kw_layer *L = &f->layers[i];
        snprintf(key, sizeof key, "kw_layer%d_name", i);
        if ((st = meta_put(ctx, l, key, L->name)) != FL_OK) return st;
        snprintf(key, sizeof key, "kw_layer%d_kind", i);
        snprintf(val, sizeof val, "%d", L->kind);
        if ((st = fl_tensor_list_set_meta(ctx, l, key, val)) != FL_OK) return st;
        for (int k = 0; k < 6; k++) {
            const kw_array *a = &L->w[k];
            if (!a->data) continue;
            snprintf(key, sizeof key, "l%d.w%d", i, k);
            if (!fl_tensor_list_add(ctx, l, key, a->ndim, a->dims, a->data)) return ctx->status;
        }
    }
    if (f->keras_version[0] && (st = meta_put(ctx, l, "keras_version", f->keras_version)) != FL_OK) return st;
    if (f->backend[0] && (st = meta_put(ctx, l, "backend", f->backend)) != FL_OK) return st;
    if (f->model_config && (st = meta_put(ctx, l, "model_config", f->model_config)) != FL_OK) return st;
    return FL_OK;
}

static int parse_small_int(const char *s, int lo, int hi, int *out)
{
    if (!s || !*s) return 0;
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return 0;
    *out = (int)v;
    return 1;
}

/* Takes the layers back from the list the child wrote (moves the tensor data). */
static fl_status kw_from_list(fl_ctx *ctx, const char *path, fl_tensor_list *l, kw_file *f)
{
    const char *bad = "the HDF5 import helper returned an inconsistent result for '%s'";
    char key[64];
    int n = 0, used = 0;
    memset(f, 0, sizeof *f);
    if (!parse_small_int(fl_tensor_list_get_meta(l, "kw_layers"), 0, KW_MAX_LAYERS, &n))
        return fl_fail(ctx, FL_EINTERNAL, bad, path);
    f->layers = calloc(n > 0 ? (size_t)n : 1, sizeof *f->layers);
    if (!f->layers) return fl_fail(ctx, FL_ENOMEM, "out of memory while reading a Keras file");
    f->n = n;
    int malformed = 0; /* 1: bad encoding, 2: out of memory */
    for (int i = 0; i < n; i++) {
        kw_layer *L = &f->layers[i];
        snprintf(key, sizeof key, "kw_layer%d_name", i);
        char *name = meta_get(l, key, &malformed);
        snprintf(key, sizeof key, "kw_layer%d_kind", i);
        int ok = name && *name && strlen(name) < sizeof L->name &&
                 parse_small_int(fl_tensor_list_get_meta(l, key), KW_LSTM, KW_DENSE, &L->kind);
        if (ok) snprintf(L->name, sizeof L->name, "%s", name);
        free(name);
        if (!ok) goto inconsistent;
    }
    for (int32_t t = 0; t < l->count; t++) {
        fl_tensor *T = &l->items[t];
        int i, k, end = 0;
        if (sscanf(T->name, "l%d.w%d%n", &i, &k, &end) != 2 || T->name[end] != '\0' || i < 0 || i >= n || k < 0 ||
            k > 5 || T->ndim < 1 || T->ndim > 2 || !T->data || f->layers[i].w[k].data)
            goto inconsistent;
        kw_array *a = &f->layers[i].w[k];
        for (int d = 0; d < T->ndim; d++)
            if (T->shape[d] < 1 || T->shape[d] > (int64_t)KW_MAX_DIM) goto inconsistent;
        a->ndim = T->ndim;
        a->dims[0] = T->shape[0];
        a->dims[1] = T->ndim == 2 ? T->shape[1] : 0;
        a->data = T->data;
        T->data = NULL;
        used++;
    }
    if (used != l->count) goto inconsistent;
    char *kv = meta_get(l, "keras_version", &malformed), *be = meta_get(l, "backend", &malformed);
    if (kv) snprintf(f->keras_version, sizeof f->keras_version, "%s", kv);
    if (be) snprintf(f->backend, sizeof f->backend, "%s", be);
    free(kv);
    free(be);
    f->model_config = meta_get(l, "model_config", &malformed);
    if (malformed == 2) {
        kw_file_free(f);
        return fl_fail(ctx, FL_ENOMEM, "out of memory while reading a Keras file");
    }
    if (malformed) goto inconsistent;
    return FL_OK;
inconsistent:
    kw_file_free(f);
    return fl_fail(ctx, FL_EINTERNAL, bad, path);
}

static int write_all_fd(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return 0;
        p += w;
        n -= (size_t)w;
    }
    return 1;
}

/* The work of the child: parse `path`, store the layers in `result`, fill the report. */
static void kw_child_work(const fl_ctx *parent, const char *path, const char *result, kw_report *rep)
{
    /* a private context: one thread, no progress hook, the caller's memory budget */
    fl_ctx c;
    memset(&c, 0, sizeof c);
    c.threads = 1;
    atomic_init(&c.cancel, 0);
    c.memory_budget = parent ? parent->memory_budget : 0;
    kw_file f;
    fl_tensor_list l;
    fl_tensor_list_init(&l);
    fl_status st = kw_parse_h5(&c, path, &f);
    if (st == FL_OK) st = kw_to_list(&c, &f, &l);
    if (st == FL_OK) st = fl_safetensors_write(&c, result, &l);
    fl_tensor_list_free(&l);
    kw_file_free(&f);
    memset(rep, 0, sizeof *rep);
    rep->magic = KW_REPORT_MAGIC;
    rep->status = (int32_t)st;
    if (st != FL_OK) snprintf(rep->message, sizeof rep->message, "%s", c.message);
#if KW_ASAN
    rep->open_objects = (int32_t)H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
#endif
}

/* The child: (test only: sleep delay_ms), parse, store, report, _exit. Never returns. */
static void kw_child(const fl_ctx *parent, pid_t parent_pid, const char *path, const char *result, int fd,
                     int delay_ms)
{
#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent_pid) _exit(3);
#else
    (void)parent_pid;
#endif
    if (!KW_SANITIZED) {
        static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) signal(sigs[i], SIG_DFL);
    }
#if KW_ASAN
    /* a death callback of the parent (libFuzzer's saves the current input as a crash artifact) must not
     * run for a death of the child, which the parent reports as a clean error */
    __sanitizer_set_death_callback(NULL);
#endif
    if (delay_ms > 0) {
        struct timespec ts = {.tv_sec = delay_ms / 1000, .tv_nsec = (long)(delay_ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
    }
    kw_report rep;
    kw_child_work(parent, path, result, &rep);
    _exit(write_all_fd(fd, &rep, sizeof rep) ? 0 : 4);
}

/* Removes the private temporary folder and whatever the child left in it. */
static void remove_tmp_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char p[4200];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

static double mono_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* "60 s" or "300 ms" */
static void format_limit(char *buf, size_t cap, int ms)
{
    if (ms % 1000 == 0) snprintf(buf, cap, "%d s", ms / 1000);
    else snprintf(buf, cap, "%d ms", ms);
}

static fl_status kw_read_file_forked(fl_ctx *ctx, const char *path, kw_file *f, const fl_keras_child_opts *o)
{
    char dir[4096], result[4200];
    const char *bases[2] = {getenv("TMPDIR"), "/tmp"};
    int have_dir = 0, mkerr = 0;
    for (int b = 0; b < 2 && !have_dir; b++) {
        if (!bases[b] || !*bases[b]) continue;
        if (snprintf(dir, sizeof dir, "%s/ferrolens-keras-XXXXXX", bases[b]) >= (int)sizeof dir) continue;
        if (mkdtemp(dir)) have_dir = 1;
        else mkerr = errno;
    }
    if (!have_dir)
        return fl_fail(ctx, FL_EIO, "cannot create a temporary folder to import '%s' (TMPDIR or /tmp): %s", path,
                       strerror(mkerr));
    snprintf(result, sizeof result, "%s/layers.safetensors", dir);

    int fds[2];
    if (pipe(fds) != 0) {
        int e = errno;
        remove_tmp_dir(dir);
        return fl_fail(ctx, FL_EIO, "cannot start the HDF5 import of '%s': %s", path, strerror(e));
    }
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    fcntl(fds[1], F_SETFD, FD_CLOEXEC);

    kw_report rep;
    size_t got = 0;
    int timed_out = 0, cancelled = 0, ws = 0, reaped = 0;
    pthread_mutex_lock(&g_h5_lock);
    /* initialise libhdf5 once in the parent (no file is touched) so that every child starts from an
     * initialised library instead of repeating its start-up */
    H5open();
    if (o->in_process) { /* test hook: the child's work here, then the parent's steps as usual */
        close(fds[0]);
        close(fds[1]);
        kw_child_work(ctx, path, result, &rep);
        pthread_mutex_unlock(&g_h5_lock);
        got = sizeof rep;
        reaped = 1; /* ws = 0: "exited with 0" */
        goto evaluate;
    }
    pid_t me = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        kw_child(ctx, me, path, result, fds[1], o->child_delay_ms);
    }
    int fork_err = errno;
    close(fds[1]);
    if (pid < 0) {
        pthread_mutex_unlock(&g_h5_lock);
        close(fds[0]);
        remove_tmp_dir(dir);
        return fl_fail(ctx, FL_EIO, "cannot start the HDF5 import of '%s' (fork: %s)", path, strerror(fork_err));
    }
    if (o->child_pid) *o->child_pid = (long)pid;

    /* the report, until EOF, the timeout or a cancel request */
    const double deadline = mono_seconds() + 1e-3 * o->timeout_ms;
    for (;;) {
        if (fl_ctx_cancel_requested(ctx)) { cancelled = 1; break; }
        double left = deadline - mono_seconds();
        if (left <= 0) { timed_out = 1; break; }
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        int pr = poll(&pfd, 1, left > 0.2 ? 200 : (int)(left * 1000) + 1);
        if (pr < 0 && errno != EINTR) {
            kill(pid, SIGKILL); /* cannot wait for the report: no result */
            break;
        }
        if (pr <= 0) continue;
        char tmp[512];
        ssize_t r = read(fds[0], got < sizeof rep ? (char *)&rep + got : tmp,
                         got < sizeof rep ? sizeof rep - got : sizeof tmp);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break; /* EOF: the child has exited or died */
        if (got < sizeof rep) got += (size_t)r;
    }
    close(fds[0]);
    if (timed_out || cancelled) kill(pid, SIGKILL);
    for (;;) {
        pid_t w = waitpid(pid, &ws, 0);
        if (w == pid) { reaped = 1; break; }
        if (w < 0 && errno == EINTR) continue;
        break; /* ECHILD: SIGCHLD ignored by the application; the report alone decides */
    }
    pthread_mutex_unlock(&g_h5_lock);

evaluate:;
    fl_status st;
    const int complete = got == sizeof rep && rep.magic == KW_REPORT_MAGIC;
    if (cancelled) {
        st = fl_fail(ctx, FL_ECANCELLED, "cancelled by the user");
    } else if (timed_out) {
        char lim[32];
        format_limit(lim, sizeof lim, o->timeout_ms);
        st = fl_fail(ctx, FL_EFORMAT,
                     "the HDF5 library did not finish reading '%s' within %s (the file is damaged or far too "
                     "large); nothing was imported",
                     path, lim);
    } else if (!complete || (reaped && !(WIFEXITED(ws) && WEXITSTATUS(ws) == 0))) {
        st = fl_fail(ctx, FL_EFORMAT, "the HDF5 library failed while reading '%s' (the file is damaged); nothing was imported",
                     path);
    } else if (rep.open_objects != 0) {
        st = fl_fail(ctx, FL_EINTERNAL, "internal error: the Keras reader left %d HDF5 objects open on '%s' (sanitizer build check)",
                     (int)rep.open_objects, path);
    } else if (rep.status != FL_OK) {
        rep.message[sizeof rep.message - 1] = '\0';
        fl_status cs = rep.status > FL_OK && rep.status <= FL_EINTERNAL ? (fl_status)rep.status : FL_EINTERNAL;
        st = fl_fail(ctx, cs, "%s", rep.message[0] ? rep.message : "the Keras file could not be read");
    } else {
        fl_tensor_list l;
        st = fl_safetensors_read(ctx, result, &l);
        if (st == FL_OK) {
            st = kw_from_list(ctx, path, &l, f);
            fl_tensor_list_free(&l);
        } else if (st != FL_ENOMEM) {
            char why[FL_MSG_CAP];
            snprintf(why, sizeof why, "%s", fl_ctx_message(ctx));
            st = fl_fail(ctx, FL_EINTERNAL, "the HDF5 import of '%s' could not be passed back from its helper process (%s)",
                         path, why);
        }
    }
    remove_tmp_dir(dir);
    return st;
}
#endif /* KW_USE_FORK */

/* Reads every layer with weights: the raw pre-check, then libhdf5 in a child process (in-process under
 * the lock where there is no fork()). */
static fl_status kw_read_file(fl_ctx *ctx, const char *path, kw_file *f, const fl_keras_child_opts *opts)
{
    memset(f, 0, sizeof *f);
    fl_keras_child_opts o = {FL_KERAS_CHILD_TIMEOUT_MS, 0, 0, NULL};
    if (opts) o = *opts;
    if (o.child_pid) *o.child_pid = 0;
    if (o.timeout_ms < 1 || o.child_delay_ms < 0 || (o.in_process != 0 && o.in_process != 1))
        return fl_fail(ctx, FL_EINVAL, "invalid limits for the Keras import (timeout %d ms, delay %d ms, in_process %d)",
                       o.timeout_ms, o.child_delay_ms, o.in_process);
    if (!path || !*path) return fl_fail(ctx, FL_EINVAL, "no Keras file name given");
    fl_status st = h5_precheck(ctx, path);
    if (st != FL_OK) return st;
#if KW_USE_FORK
    return kw_read_file_forked(ctx, path, f, &o);
#else
    pthread_mutex_lock(&g_h5_lock);
    st = kw_parse_h5(ctx, path, f);
    pthread_mutex_unlock(&g_h5_lock);
    return st;
#endif
}

/* ------------------------------------------------------------------------------------------------
 * model_config JSON: a few scalar settings, found by a string-aware scan (no full parse needed). */

static int js_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Next object key equal to `key` in [p, end): returns the first character of its value, else NULL. */
static const char *js_find_key(const char *p, const char *end, const char *key)
{
    size_t klen = strlen(key);
    while (p < end) {
        if (*p != '"') { p++; continue; }
        const char *s = ++p;
        while (p < end && *p != '"') p += (*p == '\\') ? 2 : 1;
        if (p >= end) return NULL;
        const char *e = p++;
        const char *q = p;
        while (q < end && js_space(*q)) q++;
        if (q < end && *q == ':' && (size_t)(e - s) == klen && memcmp(s, key, klen) == 0) {
            q++;
            while (q < end && js_space(*q)) q++;
            return q < end ? q : NULL;
        }
    }
    return NULL;
}

/* End (one past) of the JSON value starting at p; objects/arrays are balanced, strings skipped. */
static const char *js_value_end(const char *p, const char *end)
{
    if (p >= end) return end;
    if (*p == '"') {
        p++;
        while (p < end && *p != '"') p += (*p == '\\') ? 2 : 1;
        return p < end ? p + 1 : end;
    }
    if (*p != '{' && *p != '[') {
        while (p < end && *p != ',' && *p != '}' && *p != ']' && !js_space(*p)) p++;
        return p;
    }
    int depth = 0;
    while (p < end) {
        if (*p == '"') {
            p = js_value_end(p, end);
            continue;
        }
        if (*p == '{' || *p == '[') depth++;
        else if ((*p == '}' || *p == ']') && --depth == 0) return p + 1;
        p++;
    }
    return end;
}

/* Locale-independent JSON number -> double. */
static int js_number(const char *p, const char *end, double *out)
{
    double sign = 1, mant = 0;
    int exp10 = 0, digits = 0;
    if (p < end && *p == '-') { sign = -1; p++; }
    while (p < end && *p >= '0' && *p <= '9') {
        if (digits < 19) mant = mant * 10 + (*p - '0'); else exp10++;
        digits++; p++;
    }
    if (p < end && *p == '.') {
        p++;
        while (p < end && *p >= '0' && *p <= '9') {
            if (digits < 19) { mant = mant * 10 + (*p - '0'); exp10--; }
            digits++; p++;
        }
    }
    if (!digits) return 0;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        int es = 1, ev = 0, ed = 0;
        if (p < end && (*p == '+' || *p == '-')) { es = *p == '-' ? -1 : 1; p++; }
        while (p < end && *p >= '0' && *p <= '9') { if (ev < 10000) ev = ev * 10 + (*p - '0'); ed++; p++; }
        if (!ed) return 0;
        exp10 += es * ev;
    }
    *out = sign * mant * pow(10.0, exp10);
    return isfinite(*out);
}

static int js_string_is(const char *v, const char *end, const char *s)
{
    size_t n = strlen(s);
    return v < end && *v == '"' && (size_t)(end - v) > n + 1 && memcmp(v + 1, s, n) == 0 && v[n + 1] == '"';
}

/* l1 (activity_regularizer of the embedding), dropout rate, recurrent activation. */
static fl_status apply_model_config(fl_ctx *ctx, const char *json, fl_sae_config *c)
{
    const char *end = json + strlen(json), *p, *v;
    for (p = json; (v = js_find_key(p, end, "activity_regularizer")) != NULL; p = v) {
        if (*v != '{') continue;
        const char *ve = js_value_end(v, end);
        const char *l1 = js_find_key(v, ve, "l1");
        double d;
        if (l1 && js_number(l1, ve, &d) && d > 0) {
            c->l1 = (float)d;
            break;
        }
    }
    v = js_find_key(json, end, "rate");
    if (v) {
        double d;
        if (js_number(v, end, &d) && d >= 0 && d < 1) c->dropout = (float)d;
    }
    int hard = 0, logistic = 0, other = 0;
    for (p = json; (v = js_find_key(p, end, "recurrent_activation")) != NULL; p = v) {
        if (js_string_is(v, end, "hard_sigmoid")) hard++;
        else if (js_string_is(v, end, "sigmoid")) logistic++;
        else other++;
    }
    if (other || (hard && logistic))
        return fl_fail(ctx, FL_EUNSUPPORTED,
                       "the Keras model uses an LSTM recurrent activation other than one common hard_sigmoid/sigmoid");
    if (logistic) c->hard_sigmoid = 0;
    return FL_OK;
}

/* ------------------------------------------------------------------------------------------------
 * architecture checks and conversion to PyTorch names/layouts */

static int is_rnn(const kw_layer *L) { return L->kind == KW_LSTM || L->kind == KW_BILSTM; }

static fl_status expect_shape(fl_ctx *ctx, const kw_layer *L, const kw_array *a, const char *what, int ndim,
                              int64_t d0, int64_t d1)
{
    if (a->ndim == ndim && a->dims[0] == d0 && (ndim == 1 || a->dims[1] == d1)) return FL_OK;
    char got[64], want[64];
    if (a->ndim == 2) snprintf(got, sizeof got, "(%lld, %lld)", (long long)a->dims[0], (long long)a->dims[1]);
    else snprintf(got, sizeof got, "(%lld)", (long long)a->dims[0]);
    if (ndim == 2) snprintf(want, sizeof want, "(%lld, %lld)", (long long)d0, (long long)d1);
    else snprintf(want, sizeof want, "(%lld)", (long long)d0);
    return fl_fail(ctx, FL_EFORMAT, "layer '%s': %s has shape %s, expected %s", L->name, what, got, want);
}

/* Checks one recurrent layer against (H, bidirectional, In). */
static fl_status check_rnn(fl_ctx *ctx, const kw_layer *L, int64_t H, int bi, int64_t in)
{
    if ((L->kind == KW_BILSTM) != bi)
        return fl_fail(ctx, FL_EUNSUPPORTED, "layer '%s': the model mixes bidirectional and one-directional LSTM layers",
                       L->name);
    for (int d = 0; d < (bi ? 2 : 1); d++) {
        const kw_array *k = &L->w[3 * d], *rk = &L->w[3 * d + 1], *b = &L->w[3 * d + 2];
        if (rk->ndim == 2 && rk->dims[1] != 4 * rk->dims[0])
            return fl_fail(ctx, FL_EUNSUPPORTED,
                           "layer '%s': recurrent kernel of shape (%lld, %lld) is not that of an LSTM (H, 4H)", L->name,
                           (long long)rk->dims[0], (long long)rk->dims[1]);
        if (rk->ndim == 2 && rk->dims[0] != H)
            return fl_fail(ctx, FL_EUNSUPPORTED, "layer '%s' has %lld units; earlier LSTM layers have %lld (all must agree)",
                           L->name, (long long)rk->dims[0], (long long)H);
        fl_status st;
        if ((st = expect_shape(ctx, L, rk, "recurrent_kernel", 2, H, 4 * H)) != FL_OK) return st;
        if ((st = expect_shape(ctx, L, k, "kernel", 2, in, 4 * H)) != FL_OK) return st;
        if ((st = expect_shape(ctx, L, b, "bias", 1, 4 * H, 0)) != FL_OK) return st;
    }
    return FL_OK;
}

static fl_status check_vec(fl_ctx *ctx, const kw_layer *L, int64_t n)
{
    static const char *const names[4] = {"gamma", "beta", "moving_mean", "moving_variance"};
    for (int k = 0; k < 4; k++) {
        fl_status st = expect_shape(ctx, L, &L->w[k], names[k], 1, n, 0);
        if (st != FL_OK) return st;
    }
    for (int64_t i = 0; i < n; i++)
        if (L->w[3].data[i] < 0)
            return fl_fail(ctx, FL_EFORMAT, "layer '%s': negative moving variance", L->name);
    return FL_OK;
}

/* Adds `name` with shape (rows, cols) (cols == 0: 1-D) = transpose of src (cols, rows), or a copy
 * of src when !transpose, or zeros when src is NULL. */
static fl_status emit(fl_ctx *ctx, fl_tensor_list *out, const char *name, int64_t rows, int64_t cols,
                      const float *src, int transpose)
{
    int64_t shape[2] = {rows, cols};
    fl_tensor *t = fl_tensor_list_add(ctx, out, name, cols ? 2 : 1, shape, NULL);
    if (!t) return ctx ? ctx->status : FL_ENOMEM;
    if (!src) return FL_OK;
    if (!transpose || !cols) {
        memcpy(t->data, src, (size_t)rows * (size_t)(cols ? cols : 1) * sizeof(float));
    } else {
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < cols; c++) t->data[r * cols + c] = src[c * rows + r];
    }
    return FL_OK;
}

static fl_status emit_rnn(fl_ctx *ctx, fl_tensor_list *out, const char *prefix, const kw_layer *L, int64_t H,
                          int64_t in)
{
    char name[128];
    fl_status st = FL_OK;
    for (int d = 0; d < (L->kind == KW_BILSTM ? 2 : 1) && st == FL_OK; d++) {
        const char *sfx = d ? "_reverse" : "";
        snprintf(name, sizeof name, "%sweight_ih_l0%s", prefix, sfx);
        st = emit(ctx, out, name, 4 * H, in, L->w[3 * d].data, 1);
        if (st != FL_OK) break;
        snprintf(name, sizeof name, "%sweight_hh_l0%s", prefix, sfx);
        st = emit(ctx, out, name, 4 * H, H, L->w[3 * d + 1].data, 1);
        if (st != FL_OK) break;
        snprintf(name, sizeof name, "%sbias_ih_l0%s", prefix, sfx);
        st = emit(ctx, out, name, 4 * H, 0, L->w[3 * d + 2].data, 0);
        if (st != FL_OK) break;
        snprintf(name, sizeof name, "%sbias_hh_l0%s", prefix, sfx);
        st = emit(ctx, out, name, 4 * H, 0, NULL, 0);
    }
    return st;
}

static fl_status emit_bn(fl_ctx *ctx, fl_tensor_list *out, const char *prefix, const kw_layer *L, int64_t n)
{
    static const char *const names[4] = {"weight", "bias", "running_mean", "running_var"};
    char name[128];
    for (int k = 0; k < 4; k++) {
        snprintf(name, sizeof name, "%s.%s", prefix, names[k]);
        fl_status st = emit(ctx, out, name, n, 0, L->w[k].data, 0);
        if (st != FL_OK) return st;
    }
    return FL_OK;
}

/* Checks and emits decoder layers [from, from+D) and the output Dense. */
static fl_status do_decoder(fl_ctx *ctx, const kw_file *f, int from, int D, int64_t H, int bi, int64_t latent,
                            fl_tensor_list *out)
{
    int64_t width = bi ? 2 * H : H;
    char prefix[64];
    for (int l = 0; l < D; l++) {
        const kw_layer *L = &f->layers[from + l];
        fl_status st = check_rnn(ctx, L, H, bi, l == 0 ? latent : width);
        if (st != FL_OK) return st;
        snprintf(prefix, sizeof prefix, "decoder.%d.", l);
        if ((st = emit_rnn(ctx, out, prefix, L, H, l == 0 ? latent : width)) != FL_OK) return st;
    }
    const kw_layer *O = &f->layers[from + D];
    if (O->w[0].ndim == 2 && O->w[0].dims[0] == width && O->w[0].dims[1] != 1)
        return fl_fail(ctx, FL_EUNSUPPORTED, "output layer '%s' produces %lld values per time step; only 1 is supported",
                       O->name, (long long)O->w[0].dims[1]);
    fl_status st;
    if ((st = expect_shape(ctx, O, &O->w[0], "kernel", 2, width, 1)) != FL_OK) return st;
    if ((st = expect_shape(ctx, O, &O->w[1], "bias", 1, 1, 0)) != FL_OK) return st;
    if ((st = emit(ctx, out, "output.weight", 1, width, O->w[0].data, 1)) != FL_OK) return st;
    return emit(ctx, out, "output.bias", 1, 0, O->w[1].data, 0);
}

static const char *kind_name(int k)
{
    switch (k) {
    case KW_LSTM: return "LSTM";
    case KW_BILSTM: return "Bidirectional(LSTM)";
    case KW_BN: return "BatchNormalization";
    case KW_DENSE: return "Dense";
    default: return "layer";
    }
}

static fl_status set_info_meta(fl_ctx *ctx, const kw_file *f, fl_tensor_list *out)
{
    fl_status st = fl_tensor_list_set_meta(ctx, out, "import_format", "keras-hdf5");
    if (st == FL_OK && f->keras_version[0]) st = fl_tensor_list_set_meta(ctx, out, "keras_version", f->keras_version);
    if (st == FL_OK && f->backend[0]) st = fl_tensor_list_set_meta(ctx, out, "keras_backend", f->backend);
    return st;
}

static fl_status build_ae(fl_ctx *ctx, const char *path, const kw_file *f, fl_tensor_list *out, fl_sae_config *c)
{
    int i = 0, n = f->n;
    int E = 0, D = 0, enc0 = 0, dec0, bn1 = -1, bn2 = -1, emb, outl;
    while (i < n && is_rnn(&f->layers[i])) i++, E++;
    if (E == 0) {
        if (n > 1 && f->layers[0].kind == KW_BN && is_rnn(&f->layers[1]))
            return fl_fail(ctx, FL_EFORMAT,
                           "'%s' starts with BatchNormalization followed by LSTM layers: it looks like a decoder-only "
                           "checkpoint, not a full autoencoder",
                           path);
        return fl_fail(ctx, FL_EFORMAT, "'%s' is not an LSTM autoencoder: the first layer with weights is %s '%s'",
                       path, n ? kind_name(f->layers[0].kind) : "missing", n ? f->layers[0].name : "");
    }
    if (i < n && f->layers[i].kind == KW_BN) bn1 = i++;
    if (i >= n || f->layers[i].kind != KW_DENSE)
        return fl_fail(ctx, FL_EFORMAT, "'%s': expected the Dense embedding layer after the %d encoder LSTM layers, found %s",
                       path, E, i < n ? f->layers[i].name : "the end of the file");
    emb = i++;
    if (i < n && f->layers[i].kind == KW_BN) bn2 = i++;
    dec0 = i;
    while (i < n && is_rnn(&f->layers[i])) i++, D++;
    if (D == 0)
        return fl_fail(ctx, FL_EFORMAT, "'%s': no LSTM decoder layers after the embedding layer '%s'", path,
                       f->layers[emb].name);
    if (i >= n || f->layers[i].kind != KW_DENSE)
        return fl_fail(ctx, FL_EFORMAT, "'%s': expected the time-distributed Dense output layer after the decoder, found %s",
                       path, i < n ? f->layers[i].name : "the end of the file");
    outl = i++;
    if (i != n)
        return fl_fail(ctx, FL_EUNSUPPORTED, "'%s': unexpected layer '%s' after the output layer", path, f->layers[i].name);
    if ((bn1 >= 0) != (bn2 >= 0))
        return fl_fail(ctx, FL_EUNSUPPORTED,
                       "'%s' has batch normalisation only %s; Ferrolens supports BN after both the encoder and the "
                       "embedding, or neither",
                       path, bn1 >= 0 ? "after the encoder" : "after the embedding");

    const kw_layer *L0 = &f->layers[enc0];
    int bi = L0->kind == KW_BILSTM;
    if (L0->w[1].ndim != 2 || L0->w[1].dims[0] < 1)
        return fl_fail(ctx, FL_EFORMAT, "layer '%s': recurrent_kernel is not a matrix", L0->name);
    int64_t H = L0->w[1].dims[0];
    int64_t width = bi ? 2 * H : H;
    if (H > 65536) return fl_fail(ctx, FL_EUNSUPPORTED, "layer '%s': %lld LSTM units is too many", L0->name, (long long)H);
    if (L0->w[0].ndim == 2 && L0->w[0].dims[0] != 1)
        return fl_fail(ctx, FL_EUNSUPPORTED,
                       "the first LSTM layer '%s' takes %lld features per time step; Ferrolens curves have 1", L0->name,
                       (long long)L0->w[0].dims[0]);
    const kw_layer *M = &f->layers[emb];
    if (M->w[0].ndim != 2)
        return fl_fail(ctx, FL_EFORMAT, "embedding layer '%s': kernel is not a matrix", M->name);
    int64_t latent = M->w[0].dims[1];
    if (latent > 65536) return fl_fail(ctx, FL_EUNSUPPORTED, "embedding '%s' is too wide", M->name);

    fl_status st;
    char prefix[64];
    for (int l = 0; l < E; l++) {
        const kw_layer *L = &f->layers[enc0 + l];
        if ((st = check_rnn(ctx, L, H, bi, l == 0 ? 1 : width)) != FL_OK) return st;
        snprintf(prefix, sizeof prefix, "encoder.%d.", l);
        if ((st = emit_rnn(ctx, out, prefix, L, H, l == 0 ? 1 : width)) != FL_OK) return st;
    }
    if (bn1 >= 0) {
        if ((st = check_vec(ctx, &f->layers[bn1], width)) != FL_OK) return st;
        if ((st = emit_bn(ctx, out, "encoder_bn", &f->layers[bn1], width)) != FL_OK) return st;
    }
    if ((st = expect_shape(ctx, M, &M->w[0], "kernel", 2, width, latent)) != FL_OK) return st;
    if ((st = expect_shape(ctx, M, &M->w[1], "bias", 1, latent, 0)) != FL_OK) return st;
    if ((st = emit(ctx, out, "embedding.weight", latent, width, M->w[0].data, 1)) != FL_OK) return st;
    if ((st = emit(ctx, out, "embedding.bias", latent, 0, M->w[1].data, 0)) != FL_OK) return st;
    if (bn2 >= 0) {
        if ((st = check_vec(ctx, &f->layers[bn2], latent)) != FL_OK) return st;
        if ((st = emit_bn(ctx, out, "latent_bn", &f->layers[bn2], latent)) != FL_OK) return st;
    }
    if ((st = do_decoder(ctx, f, dec0, D, H, bi, latent, out)) != FL_OK) return st;
    (void)outl;
    if ((st = set_info_meta(ctx, f, out)) != FL_OK) return st;

    if (c) {
        fl_sae_config_default(c);
        c->steps = 0;
        c->hidden = (int32_t)H;
        c->enc_layers = E;
        c->dec_layers = D;
        c->latent = (int32_t)latent;
        c->bidirectional = bi;
        c->batch_norm = bn1 >= 0;
        c->hard_sigmoid = 1;
        c->bn_eps = 1e-3f;
        c->bn_momentum = 0.99f;
        if (f->model_config && (st = apply_model_config(ctx, f->model_config, c)) != FL_OK) return st;
    }
    return FL_OK;
}

static fl_status build_decoder(fl_ctx *ctx, const char *path, const kw_file *f, fl_tensor_list *out)
{
    int i = 0, n = f->n, bn = -1, D = 0;
    if (i < n && f->layers[i].kind == KW_BN) bn = i++;
    int dec0 = i;
    while (i < n && is_rnn(&f->layers[i])) i++, D++;
    if (D == 0) {
        if (n && is_rnn(&f->layers[0]))
            return fl_fail(ctx, FL_EFORMAT, "'%s' looks like a full autoencoder, not a decoder-only checkpoint", path);
        return fl_fail(ctx, FL_EFORMAT, "'%s' is not an LSTM decoder: no LSTM layers at the start", path);
    }
    if (bn < 0 && (i >= n || f->layers[i].kind != KW_DENSE || i + 1 != n)) {
        for (int k = i; k < n; k++)
            if (is_rnn(&f->layers[k]))
                return fl_fail(ctx, FL_EFORMAT,
                               "'%s' looks like a full autoencoder (LSTM layers before and after '%s'), not a "
                               "decoder-only checkpoint",
                               path, f->layers[i < n ? i : 0].name);
    }
    if (i >= n || f->layers[i].kind != KW_DENSE)
        return fl_fail(ctx, FL_EFORMAT, "'%s': expected the time-distributed Dense output layer after the decoder, found %s",
                       path, i < n ? f->layers[i].name : "the end of the file");
    if (i + 1 != n)
        return fl_fail(ctx, FL_EUNSUPPORTED, "'%s': unexpected layer '%s' after the output layer", path,
                       f->layers[i + 1].name);
    const kw_layer *L0 = &f->layers[dec0];
    int bi = L0->kind == KW_BILSTM;
    if (L0->w[1].ndim != 2 || L0->w[0].ndim != 2)
        return fl_fail(ctx, FL_EFORMAT, "layer '%s': kernels are not matrices", L0->name);
    int64_t H = L0->w[1].dims[0], latent = L0->w[0].dims[0];
    if (H > 65536 || latent > 65536)
        return fl_fail(ctx, FL_EUNSUPPORTED, "layer '%s' is too large", L0->name);
    fl_status st;
    if (bn >= 0) {
        if ((st = check_vec(ctx, &f->layers[bn], latent)) != FL_OK) return st;
        if ((st = emit_bn(ctx, out, "latent_bn", &f->layers[bn], latent)) != FL_OK) return st;
    }
    if ((st = do_decoder(ctx, f, dec0, D, H, bi, latent, out)) != FL_OK) return st;
    if ((st = set_info_meta(ctx, f, out)) != FL_OK) return st;
    char v[32];
    const struct { const char *k; long long v; } m[] = {
        {"keras_hidden", H}, {"keras_dec_layers", D}, {"keras_latent", latent},
        {"keras_bidirectional", bi}, {"keras_batch_norm", bn >= 0}};
    for (size_t k = 0; k < sizeof m / sizeof m[0]; k++) {
        snprintf(v, sizeof v, "%lld", m[k].v);
        if ((st = fl_tensor_list_set_meta(ctx, out, m[k].k, v)) != FL_OK) return st;
    }
    return FL_OK;
}

fl_status fl_keras_read_lstm_ae(fl_ctx *ctx, const char *path, fl_tensor_list *out, fl_sae_config *cfg)
{
    return fl_keras_read_lstm_ae_opts(ctx, path, out, cfg, NULL);
}

fl_status fl_keras_read_lstm_decoder(fl_ctx *ctx, const char *path, fl_tensor_list *out)
{
    return fl_keras_read_lstm_decoder_opts(ctx, path, out, NULL);
}

fl_status fl_keras_read_lstm_ae_opts(fl_ctx *ctx, const char *path, fl_tensor_list *out, fl_sae_config *cfg,
                                     const fl_keras_child_opts *opts)
{
    if (!out) return fl_fail(ctx, FL_EINVAL, "fl_keras_read_lstm_ae: no output list");
    fl_tensor_list_init(out);
    kw_file f;
    fl_status st = kw_read_file(ctx, path, &f, opts);
    if (st != FL_OK) return st;
    fl_sae_config c;
    st = build_ae(ctx, path, &f, out, cfg ? &c : NULL);
    kw_file_free(&f);
    if (st != FL_OK) {
        fl_tensor_list_free(out);
        return st;
    }
    if (cfg) *cfg = c;
    return FL_OK;
}

fl_status fl_keras_read_lstm_decoder_opts(fl_ctx *ctx, const char *path, fl_tensor_list *out,
                                          const fl_keras_child_opts *opts)
{
    if (!out) return fl_fail(ctx, FL_EINVAL, "fl_keras_read_lstm_decoder: no output list");
    fl_tensor_list_init(out);
    kw_file f;
    fl_status st = kw_read_file(ctx, path, &f, opts);
    if (st != FL_OK) return st;
    st = build_decoder(ctx, path, &f, out);
    kw_file_free(&f);
    if (st != FL_OK) fl_tensor_list_free(out);
    return st;
}
