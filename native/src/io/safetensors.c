/* safetensors (https://github.com/huggingface/safetensors): u64 LE header length N, N bytes of JSON
 * header, then the byte buffer; every tensor's data_offsets are relative to the buffer start.
 *
 * Reading treats the file as hostile: header size against file size and a cap, strict JSON, every
 * field type-checked, shape products and byte sizes overflow-checked, offsets inside the buffer,
 * tensors sorted by offset must tile the buffer exactly (no overlap, no gap, nothing left over). */
#define _GNU_SOURCE
#include "safetensors.h"

#include "json.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ST_CHUNK (1u << 20)

/* ---- atomic file replacement ------------------------------------------------------------------- */

fl_status fl_io_tmp_create(fl_ctx *ctx, const char *path, char *tmp, size_t cap, int *fd_out)
{
    *fd_out = -1;
    if (!path || !*path) return fl_fail(ctx, FL_EINVAL, "no output file name given");
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned long long seed = (unsigned long long)ts.tv_nsec ^ ((unsigned long long)ts.tv_sec << 20) ^
                              ((unsigned long long)(uintptr_t)tmp << 7) ^ (unsigned long long)getpid();
    for (int attempt = 0; attempt < 100; attempt++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        int n = snprintf(tmp, cap, "%s.tmp-%d-%08llx", path, (int)getpid(), (seed >> 32) & 0xffffffffULL);
        if (n < 0 || (size_t)n >= cap) return fl_fail(ctx, FL_EINVAL, "output path too long: '%s'", path);
        int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0) {
            *fd_out = fd;
            return FL_OK;
        }
        if (errno != EEXIST)
            return fl_fail(ctx, FL_EIO, "cannot create a file beside '%s': %s", path, strerror(errno));
    }
    return fl_fail(ctx, FL_EIO, "cannot create a temporary file beside '%s'", path);
}

fl_status fl_io_tmp_commit(fl_ctx *ctx, const char *tmp, const char *path)
{
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return fl_fail(ctx, FL_EIO, "cannot rename the finished file to '%s': %s", path, strerror(e));
    }
    return FL_OK;
}

/* ---- write -------------------------------------------------------------------------------------- */

static int host_is_le(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

static fl_status write_all(fl_ctx *ctx, FILE *f, const void *p, size_t n, const char *path)
{
    if (n && fwrite(p, 1, n, f) != n)
        return fl_fail(ctx, FL_EIO, "cannot write '%s': %s", path, strerror(errno));
    return FL_OK;
}

fl_status fl_safetensors_write(fl_ctx *ctx, const char *path, const fl_tensor_list *l)
{
    if (!path || !l) return fl_fail(ctx, FL_EINVAL, "fl_safetensors_write: missing argument");
    if (l->count < 0 || (l->count > 0 && !l->items))
        return fl_fail(ctx, FL_EINVAL, "fl_safetensors_write: bad tensor list");
    /* validate the list and compute offsets */
    uint64_t offset = 0;
    for (int32_t i = 0; i < l->count; i++) {
        const fl_tensor *t = &l->items[i];
        if (memchr(t->name, 0, sizeof t->name) == NULL || t->name[0] == '\0')
            return fl_fail(ctx, FL_EINVAL, "tensor %d has no valid name", (int)i);
        if (strcmp(t->name, "__metadata__") == 0)
            return fl_fail(ctx, FL_EINVAL, "'__metadata__' cannot be a tensor name");
        if (t->ndim < 0 || t->ndim > 8) return fl_fail(ctx, FL_EINVAL, "tensor '%s' has a bad rank", t->name);
        size_t numel = 1;
        for (int32_t d = 0; d < t->ndim; d++)
            if (t->shape[d] < 0 || !fl_mul_size(numel, (size_t)t->shape[d], &numel))
                return fl_fail(ctx, FL_EINVAL, "tensor '%s' has a bad shape", t->name);
        size_t bytes;
        if (!fl_mul_size(numel, 4, &bytes) || bytes > UINT64_MAX - offset)
            return fl_fail(ctx, FL_EINVAL, "tensor '%s' is too large", t->name);
        if (numel && !t->data) return fl_fail(ctx, FL_EINVAL, "tensor '%s' has no data", t->name);
        for (int32_t k = 0; k < i; k++)
            if (strcmp(l->items[k].name, t->name) == 0)
                return fl_fail(ctx, FL_EINVAL, "two tensors are named '%s'", t->name);
        offset += bytes;
    }
    for (int32_t i = 0; i < l->meta_count; i++)
        if (!l->meta[i].key || !l->meta[i].value)
            return fl_fail(ctx, FL_EINVAL, "metadata entry %d is incomplete", (int)i);

    /* header JSON */
    fl_strbuf h;
    fl_strbuf_init(&h);
    fl_strbuf_append(&h, "{", 1);
    int first = 1;
    if (l->meta_count > 0) {
        fl_strbuf_append(&h, "\"__metadata__\":{", 16);
        for (int32_t i = 0; i < l->meta_count; i++) {
            if (i) fl_strbuf_append(&h, ",", 1);
            fl_strbuf_json_string(&h, l->meta[i].key);
            fl_strbuf_append(&h, ":", 1);
            fl_strbuf_json_string(&h, l->meta[i].value);
        }
        fl_strbuf_append(&h, "}", 1);
        first = 0;
    }
    offset = 0;
    for (int32_t i = 0; i < l->count; i++) {
        const fl_tensor *t = &l->items[i];
        uint64_t bytes = (uint64_t)fl_tensor_numel(t) * 4u;
        if (!first) fl_strbuf_append(&h, ",", 1);
        first = 0;
        fl_strbuf_json_string(&h, t->name);
        fl_strbuf_append(&h, ":{\"dtype\":\"F32\",\"shape\":[", 25);
        for (int32_t d = 0; d < t->ndim; d++)
            fl_strbuf_printf(&h, "%s%lld", d ? "," : "", (long long)t->shape[d]);
        fl_strbuf_printf(&h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)offset,
                         (unsigned long long)(offset + bytes));
        offset += bytes;
    }
    fl_strbuf_append(&h, "}", 1);
    while (!h.failed && (h.len % 8) != 0) fl_strbuf_append(&h, " ", 1);
    if (h.failed) {
        fl_strbuf_free(&h);
        return fl_fail(ctx, FL_ENOMEM, "out of memory for the safetensors header");
    }

    char tmp[4200];
    int fd;
    fl_status st = fl_io_tmp_create(ctx, path, tmp, sizeof tmp, &fd);
    if (st != FL_OK) {
        fl_strbuf_free(&h);
        return st;
    }
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        close(fd);
        unlink(tmp);
        fl_strbuf_free(&h);
        return fl_fail(ctx, FL_ENOMEM, "cannot open a stream for '%s'", path);
    }
    float *chunk = NULL;
    unsigned char n8[8];
    uint64_t hl = h.len;
    for (int i = 0; i < 8; i++) n8[i] = (unsigned char)(hl >> (8 * i));
    st = write_all(ctx, f, n8, 8, path);
    if (st == FL_OK) st = write_all(ctx, f, h.data, h.len, path);
    int le = host_is_le();
    if (st == FL_OK && !le) {
        chunk = fl_alloc(ST_CHUNK);
        if (!chunk) st = fl_fail(ctx, FL_ENOMEM, "out of memory while writing '%s'", path);
    }
    for (int32_t i = 0; st == FL_OK && i < l->count; i++) {
        const fl_tensor *t = &l->items[i];
        size_t n = (size_t)fl_tensor_numel(t);
        if (le) {
            st = write_all(ctx, f, t->data, n * 4, path);
        } else {
            for (size_t k = 0; st == FL_OK && k < n; k += ST_CHUNK / 4) {
                size_t m = n - k < ST_CHUNK / 4 ? n - k : ST_CHUNK / 4;
                for (size_t q = 0; q < m; q++) {
                    uint32_t u;
                    memcpy(&u, &t->data[k + q], 4);
                    u = __builtin_bswap32(u);
                    memcpy(&chunk[q], &u, 4);
                }
                st = write_all(ctx, f, chunk, m * 4, path);
            }
        }
    }
    fl_free(chunk);
    fl_strbuf_free(&h);
    if (st == FL_OK && fflush(f) != 0) st = fl_fail(ctx, FL_EIO, "cannot write '%s': %s", path, strerror(errno));
    if (st == FL_OK && fsync(fileno(f)) != 0)
        st = fl_fail(ctx, FL_EIO, "cannot flush '%s' to disk: %s", path, strerror(errno));
    if (fclose(f) != 0 && st == FL_OK) st = fl_fail(ctx, FL_EIO, "cannot write '%s': %s", path, strerror(errno));
    if (st != FL_OK) {
        unlink(tmp);
        return st;
    }
    return fl_io_tmp_commit(ctx, tmp, path);
}

/* ---- read --------------------------------------------------------------------------------------- */

typedef struct st_entry {
    const char *name;
    int dtype;          /* 0 F32, 1 F64, 2 F16, 3 BF16 */
    int32_t ndim;
    int64_t shape[8];
    uint64_t begin, end;
} st_entry;

static const char *const st_known_unsupported[] = {"BOOL", "U8", "I8", "I16", "U16", "I32", "U32", "I64",
                                                   "U64", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3",
                                                   "F6_E3M2", "F4", "C64", NULL};

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1F, man = h & 0x3FF, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3FF) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7F800000u | (man << 13);
    } else {
        bits = sign | ((exp - 15 + 127) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static int cmp_entry(const void *a, const void *b)
{
    const st_entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static fl_status parse_entry(fl_ctx *ctx, const char *name, const fl_json *v, uint64_t buf_len, st_entry *e)
{
    if (strlen(name) >= sizeof(((fl_tensor *)0)->name))
        return fl_fail(ctx, FL_EFORMAT, "tensor name '%.60s...' is too long (limit 127 bytes)", name);
    if (fl_json_type_of(v) != FL_JSON_OBJECT)
        return fl_fail(ctx, FL_EFORMAT, "header entry '%s' is not an object", name);
    for (size_t k = 0; k < fl_json_len(v); k++) {
        const char *key = fl_json_key_at(v, k);
        if (strcmp(key, "dtype") && strcmp(key, "shape") && strcmp(key, "data_offsets"))
            return fl_fail(ctx, FL_EFORMAT, "tensor '%s' has an unknown field '%.60s'", name, key);
    }
    const char *dt = fl_json_string(fl_json_get(v, "dtype"));
    const fl_json *shape = fl_json_get(v, "shape"), *offs = fl_json_get(v, "data_offsets");
    if (!dt || fl_json_type_of(shape) != FL_JSON_ARRAY || fl_json_type_of(offs) != FL_JSON_ARRAY)
        return fl_fail(ctx, FL_EFORMAT, "tensor '%s' needs a string dtype, a shape array and data_offsets", name);
    size_t esize;
    if (strcmp(dt, "F32") == 0) { e->dtype = 0; esize = 4; }
    else if (strcmp(dt, "F64") == 0) { e->dtype = 1; esize = 8; }
    else if (strcmp(dt, "F16") == 0) { e->dtype = 2; esize = 2; }
    else if (strcmp(dt, "BF16") == 0) { e->dtype = 3; esize = 2; }
    else {
        for (int i = 0; st_known_unsupported[i]; i++)
            if (strcmp(dt, st_known_unsupported[i]) == 0)
                return fl_fail(ctx, FL_EUNSUPPORTED,
                               "tensor '%s' has dtype %s; only F32, F64, F16 and BF16 tensors can be read", name, dt);
        return fl_fail(ctx, FL_EFORMAT, "tensor '%s' has an unknown dtype '%.40s'", name, dt);
    }
    size_t nd = fl_json_len(shape);
    if (nd > 8) return fl_fail(ctx, FL_EUNSUPPORTED, "tensor '%s' has %zu dimensions (at most 8 supported)", name, nd);
    e->name = name;
    e->ndim = (int32_t)nd;
    size_t numel = 1;
    for (size_t d = 0; d < nd; d++) {
        int64_t s;
        if (!fl_json_int64(fl_json_at(shape, d), 0, INT64_MAX, &s))
            return fl_fail(ctx, FL_EFORMAT, "tensor '%s': shape entries must be non-negative integers", name);
        e->shape[d] = s;
        if (!fl_mul_size(numel, (size_t)s, &numel))
            return fl_fail(ctx, FL_EFORMAT, "tensor '%s': shape product overflows", name);
    }
    size_t bytes;
    if (!fl_mul_size(numel, esize, &bytes))
        return fl_fail(ctx, FL_EFORMAT, "tensor '%s': byte size overflows", name);
    int64_t b, en;
    if (fl_json_len(offs) != 2 || !fl_json_int64(fl_json_at(offs, 0), 0, INT64_MAX, &b) ||
        !fl_json_int64(fl_json_at(offs, 1), 0, INT64_MAX, &en))
        return fl_fail(ctx, FL_EFORMAT, "tensor '%s': data_offsets must be two non-negative integers", name);
    if (en < b) return fl_fail(ctx, FL_EFORMAT, "tensor '%s': data_offsets end before they begin", name);
    if ((uint64_t)en > buf_len)
        return fl_fail(ctx, FL_EFORMAT,
                       "tensor '%s': data_offsets [%lld, %lld] reach beyond the data (%llu bytes); truncated file?",
                       name, (long long)b, (long long)en, (unsigned long long)buf_len);
    if ((uint64_t)(en - b) != (uint64_t)bytes)
        return fl_fail(ctx, FL_EFORMAT, "tensor '%s': shape and dtype need %zu bytes but data_offsets give %lld",
                       name, bytes, (long long)(en - b));
    e->begin = (uint64_t)b;
    e->end = (uint64_t)en;
    return FL_OK;
}

static fl_status read_tensor(fl_ctx *ctx, FILE *f, uint64_t data_start, const st_entry *e, float *dst,
                             unsigned char *chunk, const char *path)
{
    static const size_t esz[4] = {4, 8, 2, 2};
    size_t es = esz[e->dtype];
    uint64_t total = e->end - e->begin, done = 0;
    if (total == 0) return FL_OK;
    if (fseeko(f, (off_t)(data_start + e->begin), SEEK_SET) != 0)
        return fl_fail(ctx, FL_EIO, "cannot seek in '%s': %s", path, strerror(errno));
    size_t out = 0;
    while (done < total) {
        size_t want = total - done < ST_CHUNK ? (size_t)(total - done) : ST_CHUNK;
        if (fread(chunk, 1, want, f) != want)
            return fl_fail(ctx, FL_EFORMAT, "'%s' ends early (in tensor '%s')", path, e->name);
        size_t n = want / es;
        for (size_t i = 0; i < n; i++) {
            const unsigned char *p = chunk + i * es;
            switch (e->dtype) {
            case 0: {
                uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
                memcpy(&dst[out++], &u, 4);
                break;
            }
            case 1: {
                uint64_t u = 0;
                for (int k = 7; k >= 0; k--) u = (u << 8) | p[k];
                double d;
                memcpy(&d, &u, 8);
                dst[out++] = (float)d;
                break;
            }
            case 2: dst[out++] = half_to_float((uint16_t)(p[0] | p[1] << 8)); break;
            default: {
                uint32_t u = ((uint32_t)p[0] << 16) | ((uint32_t)p[1] << 24);
                memcpy(&dst[out++], &u, 4);
            }
            }
        }
        done += want;
    }
    return FL_OK;
}

fl_status fl_safetensors_read(fl_ctx *ctx, const char *path, fl_tensor_list *out)
{
    if (!out) return fl_fail(ctx, FL_EINVAL, "fl_safetensors_read: no output list");
    fl_tensor_list_init(out);
    if (!path) return fl_fail(ctx, FL_EINVAL, "fl_safetensors_read: no file name");
    FILE *f = fopen(path, "rb");
    if (!f) return fl_fail(ctx, FL_EIO, "cannot open '%s': %s", path, strerror(errno));
    fl_status st = FL_OK;
    char *hdr = NULL;
    fl_json *root = NULL;
    st_entry *ents = NULL;
    unsigned char *chunk = NULL;
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = fl_fail(ctx, FL_EIO, "'%s' is not a regular file", path);
        goto done;
    }
    uint64_t fsize = (uint64_t)sb.st_size;
    unsigned char n8[8];
    if (fsize < 8 || fread(n8, 1, 8, f) != 8) {
        st = fl_fail(ctx, FL_EFORMAT, "'%s' is too short to be a safetensors file", path);
        goto done;
    }
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = (hl << 8) | n8[i];
    if (hl > fsize - 8) {
        st = fl_fail(ctx, FL_EFORMAT,
                     "'%s' is not a valid safetensors file: header size %llu is larger than the file (%llu bytes)",
                     path, (unsigned long long)hl, (unsigned long long)fsize);
        goto done;
    }
    if (hl > FL_SAFETENSORS_MAX_HEADER) {
        st = fl_fail(ctx, FL_EFORMAT, "'%s': safetensors header of %llu bytes exceeds the limit of %u bytes", path,
                     (unsigned long long)hl, (unsigned)FL_SAFETENSORS_MAX_HEADER);
        goto done;
    }
    if (hl < 2) {
        st = fl_fail(ctx, FL_EFORMAT, "'%s' is not a valid safetensors file: empty header", path);
        goto done;
    }
    if ((st = fl_check_budget(ctx, (size_t)hl * 4, "reading the model header")) != FL_OK) goto done;
    hdr = fl_alloc((size_t)hl);
    if (!hdr) {
        st = fl_fail(ctx, FL_ENOMEM, "out of memory for a %llu-byte model header", (unsigned long long)hl);
        goto done;
    }
    if (fread(hdr, 1, (size_t)hl, f) != hl) {
        st = fl_fail(ctx, FL_EFORMAT, "'%s' ends inside its header", path);
        goto done;
    }
    if (hdr[0] != '{') {
        st = fl_fail(ctx, FL_EFORMAT, "'%s' is not a safetensors file (the header is not a JSON object)", path);
        goto done;
    }
    if ((st = fl_json_parse(ctx, hdr, (size_t)hl, &root)) != FL_OK) {
        char msg[FL_MSG_CAP];
        snprintf(msg, sizeof msg, "%s", fl_ctx_message(ctx));
        st = fl_fail(ctx, st, "'%s': bad safetensors header: %s", path, msg);
        goto done;
    }
    if (fl_json_type_of(root) != FL_JSON_OBJECT) {
        st = fl_fail(ctx, FL_EFORMAT, "'%s': the safetensors header is not a JSON object", path);
        goto done;
    }
    uint64_t buf_len = fsize - 8 - hl, data_start = 8 + hl;
    size_t n = fl_json_len(root), nt = 0;
    ents = fl_calloc(n ? n : 1, sizeof *ents);
    if (!ents) {
        st = fl_fail(ctx, FL_ENOMEM, "out of memory for the tensor table");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const char *key = fl_json_key_at(root, i);
        const fl_json *v = fl_json_at(root, i);
        if (strcmp(key, "__metadata__") == 0) {
            if (fl_json_type_of(v) != FL_JSON_OBJECT) {
                st = fl_fail(ctx, FL_EFORMAT, "'%s': __metadata__ must be an object of strings", path);
                goto done;
            }
            for (size_t k = 0; k < fl_json_len(v); k++) {
                const char *val = fl_json_string(fl_json_at(v, k));
                if (!val) {
                    st = fl_fail(ctx, FL_EFORMAT, "'%s': metadata value of '%.60s' is not a string", path,
                                 fl_json_key_at(v, k));
                    goto done;
                }
                if ((st = fl_tensor_list_set_meta(ctx, out, fl_json_key_at(v, k), val)) != FL_OK) goto done;
            }
            continue;
        }
        if ((st = parse_entry(ctx, key, v, buf_len, &ents[nt])) != FL_OK) {
            char msg[FL_MSG_CAP];
            snprintf(msg, sizeof msg, "%s", fl_ctx_message(ctx));
            st = fl_fail(ctx, st, "'%s': %s", path, msg);
            goto done;
        }
        nt++;
    }
    qsort(ents, nt, sizeof *ents, cmp_entry);
    uint64_t pos = 0;
    size_t total_floats = 0;
    for (size_t i = 0; i < nt; i++) {
        if (ents[i].begin < pos) {
            st = fl_fail(ctx, FL_EFORMAT, "'%s': tensors '%s' and '%s' overlap in the data buffer", path,
                         ents[i - 1].name, ents[i].name);
            goto done;
        }
        if (ents[i].begin > pos) {
            st = fl_fail(ctx, FL_EFORMAT, "'%s': %llu unused bytes before tensor '%s' in the data buffer", path,
                         (unsigned long long)(ents[i].begin - pos), ents[i].name);
            goto done;
        }
        pos = ents[i].end;
        size_t numel = 1;
        for (int32_t d = 0; d < ents[i].ndim; d++) fl_mul_size(numel, (size_t)ents[i].shape[d], &numel);
        if (total_floats > SIZE_MAX / 4 - numel) {
            st = fl_fail(ctx, FL_EFORMAT, "'%s': tensors too large", path);
            goto done;
        }
        total_floats += numel;
    }
    if (pos != buf_len) {
        st = fl_fail(ctx, FL_EFORMAT, "'%s': %llu bytes at the end of the data buffer belong to no tensor", path,
                     (unsigned long long)(buf_len - pos));
        goto done;
    }
    if ((st = fl_check_budget(ctx, total_floats * 4 + ST_CHUNK, "loading the model")) != FL_OK) goto done;
    chunk = fl_alloc(ST_CHUNK);
    if (!chunk) {
        st = fl_fail(ctx, FL_ENOMEM, "out of memory while reading '%s'", path);
        goto done;
    }
    for (size_t i = 0; i < nt; i++) {
        fl_tensor *t = fl_tensor_list_add(ctx, out, ents[i].name, ents[i].ndim, ents[i].shape, NULL);
        if (!t) {
            st = ctx ? ctx->status : FL_ENOMEM;
            if (st == FL_OK) st = FL_ENOMEM;
            goto done;
        }
        if ((st = read_tensor(ctx, f, data_start, &ents[i], t->data, chunk, path)) != FL_OK) goto done;
    }
done:
    fl_free(chunk);
    fl_free(ents);
    fl_json_free(root);
    fl_free(hdr);
    fclose(f);
    if (st != FL_OK) fl_tensor_list_free(out);
    return st;
}
