/* Tiny NumPy .npy reader for the tests; see npy.h. */
#include "npy.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int npy_err(char *err, size_t cap, const char *fmt, ...)
{
    if (err && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void npy_free(npy_array *a)
{
    if (!a) return;
    free(a->data);
    memset(a, 0, sizeof *a);
}

/* Value text after 'key': in the header dict, or NULL. */
static const char *dict_value(const char *h, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "'%s'", key);
    const char *p = strstr(h, pat);
    if (!p) return NULL;
    p += strlen(pat);
    while (*p == ' ') p++;
    if (*p != ':') return NULL;
    p++;
    while (*p == ' ') p++;
    return p;
}

static uint32_t le32(const unsigned char *b) { return b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24; }

int npy_read(const char *path, npy_array *a, char *err, size_t errcap)
{
    memset(a, 0, sizeof *a);
    FILE *fp = fopen(path, "rb");
    if (!fp) return npy_err(err, errcap, "cannot open %s", path);
    unsigned char pre[12];
    char *hdr = NULL;
    int rc = -1;
    size_t hl;
    if (fread(pre, 1, 10, fp) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        npy_err(err, errcap, "%s is not a .npy file", path);
        goto done;
    }
    if (pre[6] == 1) {
        hl = (size_t)pre[8] | (size_t)pre[9] << 8;
    } else if (pre[6] == 2 || pre[6] == 3) {
        if (fread(pre + 10, 1, 2, fp) != 2) { npy_err(err, errcap, "%s: truncated header", path); goto done; }
        hl = le32(pre + 8);
    } else {
        npy_err(err, errcap, "%s: unsupported .npy version %d", path, pre[6]);
        goto done;
    }
    if (hl == 0 || hl > (1u << 20)) { npy_err(err, errcap, "%s: bad header length", path); goto done; }
    hdr = malloc(hl + 1);
    if (!hdr || fread(hdr, 1, hl, fp) != hl) { npy_err(err, errcap, "%s: truncated header", path); goto done; }
    hdr[hl] = '\0';

    const char *d = dict_value(hdr, "descr");
    int f64;
    if (d && strncmp(d, "'<f4'", 5) == 0) f64 = 0;
    else if (d && strncmp(d, "'<f8'", 5) == 0) f64 = 1;
    else { npy_err(err, errcap, "%s: dtype is not '<f4' or '<f8'", path); goto done; }
    const char *fo = dict_value(hdr, "fortran_order");
    if (!fo || strncmp(fo, "False", 5) != 0) { npy_err(err, errcap, "%s: not C order", path); goto done; }
    const char *s = dict_value(hdr, "shape");
    if (!s || *s != '(') { npy_err(err, errcap, "%s: no shape", path); goto done; }
    s++;
    int nd = 0;
    int64_t shape[2] = {1, 1};
    for (;;) {
        while (*s == ' ' || *s == ',') s++;
        if (*s == ')') break;
        char *e;
        long long v = strtoll(s, &e, 10);
        if (e == s || v < 0 || nd >= 2) { npy_err(err, errcap, "%s: only 1-D or 2-D shapes are supported", path); goto done; }
        shape[nd++] = v;
        s = e;
    }
    if (nd < 1) { npy_err(err, errcap, "%s: scalar arrays are not supported", path); goto done; }
    int64_t numel = shape[0] * shape[1];
    if (numel <= 0 || numel > ((int64_t)1 << 32)) { npy_err(err, errcap, "%s: bad size", path); goto done; }
    size_t esz = f64 ? 8 : 4;
    unsigned char *raw = malloc((size_t)numel * esz);
    float *out = malloc((size_t)numel * sizeof(float));
    if (!raw || !out || fread(raw, esz, (size_t)numel, fp) != (size_t)numel) {
        free(raw);
        free(out);
        npy_err(err, errcap, "%s: truncated data or out of memory", path);
        goto done;
    }
    for (int64_t i = 0; i < numel; i++) {
        const unsigned char *b = raw + (size_t)i * esz;
        if (f64) {
            uint64_t u = (uint64_t)le32(b) | (uint64_t)le32(b + 4) << 32;
            double v;
            memcpy(&v, &u, 8);
            out[i] = (float)v;
        } else {
            uint32_t u = le32(b);
            memcpy(&out[i], &u, 4);
        }
    }
    free(raw);
    a->data = out;
    a->ndim = nd;
    a->shape[0] = shape[0];
    a->shape[1] = nd == 2 ? shape[1] : 1;
    a->numel = numel;
    a->src_f64 = f64;
    rc = 0;
done:
    free(hdr);
    fclose(fp);
    return rc;
}
