/* safetensors model files: round trip and hostile-file rejection. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/safetensors.h"

static char dir[256];

static void setup(void)
{
    strcpy(dir, "/tmp/fl_st_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char p[600];
        while ((e = readdir(d)))
            if (e->d_name[0] != '.') {
                snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
                unlink(p);
            }
        closedir(d);
    }
    rmdir(dir);
}

static int count_files(void)
{
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

/* file = u64 LE len(header) + header + data */
static void write_raw(const char *path, const char *header, const void *data, size_t dlen, int64_t fake_len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    uint64_t n = fake_len >= 0 ? (uint64_t)fake_len : strlen(header);
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(n >> (8 * i));
    fwrite(b, 1, 8, f);
    fwrite(header, 1, strlen(header), f);
    if (dlen) fwrite(data, 1, dlen, f);
    fclose(f);
}

static fl_status read_status(const char *path, char *msg, size_t cap)
{
    fl_ctx *ctx = fl_ctx_new();
    fl_tensor_list l;
    fl_status st = fl_safetensors_read(ctx, path, &l);
    if (msg) snprintf(msg, cap, "%s", fl_ctx_message(ctx));
    if (st != FL_OK) {
        cr_expect_eq(l.count, 0, "no half-built list on failure");
        cr_expect_neq(fl_ctx_message(ctx)[0], '\0');
    }
    fl_tensor_list_free(&l);
    fl_ctx_free(ctx);
    return st;
}

TestSuite(safetensors, .init = setup, .fini = teardown);

Test(safetensors, round_trip)
{
    fl_ctx *ctx = fl_ctx_new();
    fl_tensor_list l;
    fl_tensor_list_init(&l);
    float w[6] = {1.5f, -2.f, 3.25f, NAN, INFINITY, -0.f};
    int64_t s23[2] = {2, 3}, s0[1] = {0}, s4[1] = {4};
    cr_assert_not_null(fl_tensor_list_add(ctx, &l, "encoder.lstm.weight_ih_l0", 2, s23, w));
    cr_assert_not_null(fl_tensor_list_add(ctx, &l, "empty", 1, s0, NULL));
    fl_tensor *sc = fl_tensor_list_add(ctx, &l, "scalar", 0, NULL, NULL);
    cr_assert_not_null(sc);
    sc->data[0] = 42.f;
    float b[4] = {0.1f, 0.2f, 0.3f, 0.4f};
    cr_assert_not_null(fl_tensor_list_add(ctx, &l, "bias \"q\"", 1, s4, b));
    cr_assert_eq(fl_tensor_list_set_meta(ctx, &l, "family", "spectral-ae"), FL_OK);
    cr_assert_eq(fl_tensor_list_set_meta(ctx, &l, "config", "{\"hidden\": 64,\n\"x\":\"\\\\\"}"), FL_OK);
    char path[300];
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    cr_assert_eq(fl_safetensors_write(ctx, path, &l), FL_OK, "%s", fl_ctx_message(ctx));
    cr_expect_eq(count_files(), 1, "no temporary file left behind");

    /* header length is a multiple of 8 and the file is exactly header + data */
    FILE *f = fopen(path, "rb");
    unsigned char h8[8];
    cr_assert_eq(fread(h8, 1, 8, f), 8);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | h8[i];
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    cr_expect_eq(hl % 8, 0);
    cr_expect_eq((uint64_t)size, 8 + hl + (6 + 0 + 1 + 4) * 4);

    fl_tensor_list r;
    cr_assert_eq(fl_safetensors_read(ctx, path, &r), FL_OK, "%s", fl_ctx_message(ctx));
    cr_assert_eq(r.count, 4);
    for (int i = 0; i < 4; i++) {
        cr_expect_str_eq(r.items[i].name, l.items[i].name);
        cr_expect_eq(r.items[i].ndim, l.items[i].ndim);
        for (int d = 0; d < l.items[i].ndim; d++) cr_expect_eq(r.items[i].shape[d], l.items[i].shape[d]);
        cr_expect_eq(memcmp(r.items[i].data, l.items[i].data, (size_t)fl_tensor_numel(&l.items[i]) * 4), 0);
    }
    cr_expect(isnan(fl_tensor_list_find(&r, "encoder.lstm.weight_ih_l0")->data[3]));
    cr_expect_str_eq(fl_tensor_list_get_meta(&r, "family"), "spectral-ae");
    cr_expect_str_eq(fl_tensor_list_get_meta(&r, "config"), "{\"hidden\": 64,\n\"x\":\"\\\\\"}");
    fl_tensor_list_free(&r);

    /* overwrite an existing file atomically */
    cr_assert_eq(fl_safetensors_write(ctx, path, &l), FL_OK);
    cr_expect_eq(count_files(), 1);
    fl_tensor_list_free(&l);
    fl_ctx_free(ctx);
}

Test(safetensors, write_rejects_bad_lists_and_paths)
{
    fl_ctx *ctx = fl_ctx_new();
    fl_tensor_list l;
    fl_tensor_list_init(&l);
    int64_t s[1] = {2};
    fl_tensor_list_add(ctx, &l, "a", 1, s, NULL);
    fl_tensor_list_add(ctx, &l, "a", 1, s, NULL);
    char path[300];
    snprintf(path, sizeof path, "%s/dup.safetensors", dir);
    cr_expect_eq(fl_safetensors_write(ctx, path, &l), FL_EINVAL);
    fl_tensor_list_free(&l);
    fl_tensor_list_init(&l);
    fl_tensor_list_add(ctx, &l, "a", 1, s, NULL);
    cr_expect_eq(fl_safetensors_write(ctx, "/nonexistent-dir/x.safetensors", &l), FL_EIO);
    cr_expect_eq(count_files(), 0);
    fl_tensor_list_free(&l);
    fl_ctx_free(ctx);
}

Test(safetensors, reads_f64_f16_bf16)
{
    char path[300];
    snprintf(path, sizeof path, "%s/t.safetensors", dir);
    unsigned char data[16 + 8 + 4];
    double d[2] = {1.25, -3e10};
    memcpy(data, d, 16);                                   /* F64 (host is little-endian here) */
    uint16_t h[4] = {0x3C00, 0xC000, 0x0001, 0x7C00};      /* F16: 1, -2, 2^-24, +inf */
    memcpy(data + 16, h, 8);
    uint16_t bf[2] = {0x3F80, 0xC0A0};                     /* BF16: 1, -5 */
    memcpy(data + 24, bf, 4);
    write_raw(path,
              "{\"d\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]},"
              "\"h\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[16,24]},"
              "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[24,28]}}",
              data, sizeof data, -1);
    fl_ctx *ctx = fl_ctx_new();
    fl_tensor_list r;
    cr_assert_eq(fl_safetensors_read(ctx, path, &r), FL_OK, "%s", fl_ctx_message(ctx));
    const fl_tensor *t = fl_tensor_list_find(&r, "d");
    cr_assert_not_null(t);
    cr_expect_eq(t->data[0], 1.25f);
    cr_expect_eq(t->data[1], (float)-3e10);
    t = fl_tensor_list_find(&r, "h");
    cr_expect_eq(t->ndim, 2);
    cr_expect_eq(t->data[0], 1.f);
    cr_expect_eq(t->data[1], -2.f);
    cr_expect_eq(t->data[2], ldexpf(1.f, -24));
    cr_expect(isinf(t->data[3]) && t->data[3] > 0);
    t = fl_tensor_list_find(&r, "b");
    cr_expect_eq(t->data[0], 1.f);
    cr_expect_eq(t->data[1], -5.f);
    /* list order follows the data buffer */
    cr_expect_str_eq(r.items[0].name, "d");
    cr_expect_str_eq(r.items[2].name, "b");
    fl_tensor_list_free(&r);
    fl_ctx_free(ctx);
}

struct bad_case {
    const char *name;
    const char *header;
    size_t data_len;
    int64_t fake_len;
    fl_status want;
};

Test(safetensors, rejects_hostile_files)
{
    static const struct bad_case cases[] = {
        {"header size larger than file", "{}", 0, 1000, FL_EFORMAT},
        {"header size 2^63", "{}", 0, INT64_MAX, FL_EFORMAT},
        {"offsets out of bounds", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, -1, FL_EFORMAT},
        {"overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, -1, FL_EFORMAT},
        {"gap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, -1, FL_EFORMAT},
        {"trailing data", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, -1, FL_EFORMAT},
        {"shape/size mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, -1, FL_EFORMAT},
        {"shape overflow", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,8]}}",
         8, -1, FL_EFORMAT},
        {"negative dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, -1, FL_EFORMAT},
        {"fractional dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,8]}}", 8, -1, FL_EFORMAT},
        {"end before begin", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8, -1, FL_EFORMAT},
        {"unknown dtype", "{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, -1, FL_EFORMAT},
        {"integer dtype", "{\"a\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, -1, FL_EUNSUPPORTED},
        {"missing dtype", "{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, -1, FL_EFORMAT},
        {"extra field", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}", 8, -1, FL_EFORMAT},
        {"three offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]}}", 8, -1, FL_EFORMAT},
        {"entry not object", "{\"a\":[1,2]}", 0, -1, FL_EFORMAT},
        {"rank 9", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]}}", 8, -1,
         FL_EUNSUPPORTED},
        {"metadata not strings", "{\"__metadata__\":{\"k\":1}}", 0, -1, FL_EFORMAT},
        {"metadata not object", "{\"__metadata__\":\"x\"}", 0, -1, FL_EFORMAT},
        {"duplicate key", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                          "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, -1, FL_EFORMAT},
        {"trailing garbage", "{} x", 0, -1, FL_EFORMAT},
        {"NaN in shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[NaN],\"data_offsets\":[0,8]}}", 8, -1, FL_EFORMAT},
        {"truncated JSON", "{\"a\":{\"dtype\":\"F32\",", 0, -1, FL_EFORMAT},
        {"header not an object", "[1,2]   ", 0, -1, FL_EFORMAT},
        {"empty header", "", 0, -1, FL_EFORMAT},
        {"name too long", "{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}",
         0, -1, FL_EFORMAT},
    };
    char path[300];
    snprintf(path, sizeof path, "%s/bad.safetensors", dir);
    unsigned char zeros[64] = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_raw(path, cases[i].header, zeros, cases[i].data_len, cases[i].fake_len);
        char msg[1024];
        fl_status st = read_status(path, msg, sizeof msg);
        cr_expect_eq(st, cases[i].want, "%s: got %d (%s)", cases[i].name, st, msg);
    }
    /* the dtype is named in the message */
    write_raw(path, cases[12].header, zeros, 8, -1);
    char msg[1024];
    read_status(path, msg, sizeof msg);
    cr_expect(strstr(msg, "I64") != NULL, "%s", msg);
}

Test(safetensors, rejects_truncated_garbage_and_missing_files)
{
    fl_ctx *ctx = fl_ctx_new();
    fl_tensor_list l;
    fl_tensor_list_init(&l);
    int64_t s[2] = {16, 16};
    fl_tensor_list_add(ctx, &l, "w", 2, s, NULL);
    char path[300];
    snprintf(path, sizeof path, "%s/t.safetensors", dir);
    cr_assert_eq(fl_safetensors_write(ctx, path, &l), FL_OK);
    fl_tensor_list_free(&l);
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    cr_assert_eq(truncate(path, size - 10), 0);
    cr_expect_eq(read_status(path, NULL, 0), FL_EFORMAT, "truncated data");
    cr_assert_eq(truncate(path, 20), 0);
    cr_expect_eq(read_status(path, NULL, 0), FL_EFORMAT, "truncated header");
    cr_assert_eq(truncate(path, 5), 0);
    cr_expect_eq(read_status(path, NULL, 0), FL_EFORMAT, "shorter than 8 bytes");
    cr_assert_eq(truncate(path, 0), 0);
    cr_expect_eq(read_status(path, NULL, 0), FL_EFORMAT, "empty");

    f = fopen(path, "wb");
    fputs("this is just a text file, not a model\n", f);
    fclose(f);
    cr_expect_eq(read_status(path, NULL, 0), FL_EFORMAT, "text");

    snprintf(path, sizeof path, "%s/missing.safetensors", dir);
    cr_expect_eq(read_status(path, NULL, 0), FL_EIO);
    cr_expect_eq(read_status(dir, NULL, 0), FL_EIO, "a directory");
    fl_ctx_free(ctx);
}

Test(safetensors, memory_budget_is_respected)
{
    fl_ctx *ctx = fl_ctx_new();
    fl_tensor_list l;
    fl_tensor_list_init(&l);
    int64_t s[1] = {1 << 20};
    fl_tensor_list_add(ctx, &l, "big", 1, s, NULL);
    char path[300];
    snprintf(path, sizeof path, "%s/big.safetensors", dir);
    cr_assert_eq(fl_safetensors_write(ctx, path, &l), FL_OK);
    fl_tensor_list_free(&l);
    fl_ctx_set_memory_budget(ctx, 1 << 20);
    cr_expect_eq(fl_safetensors_read(ctx, path, &l), FL_ENOMEM);
    cr_expect_eq(l.count, 0);
    fl_ctx_free(ctx);
}
