/* libFuzzer target: fl_json_parse (strict JSON DOM for model headers) in memory, then a walk over
 * the whole tree through the public accessors. */
#include "fuzz_common.h"

#include "io/json.h"

#include <string.h>

static void walk(const fl_json *j, int depth)
{
    if (depth > FL_JSON_MAX_DEPTH + 1) abort(); /* the depth limit must hold */
    switch (fl_json_type_of(j)) {
    case FL_JSON_STRING: {
        const char *s = fl_json_string(j);
        if (!s) abort();
        volatile size_t n = strlen(s);
        (void)n;
        break;
    }
    case FL_JSON_NUMBER: {
        int64_t v;
        (void)fl_json_int64(j, INT64_MIN, INT64_MAX, &v);
        volatile double d = fl_json_number(j);
        (void)d;
        break;
    }
    case FL_JSON_ARRAY:
    case FL_JSON_OBJECT:
        for (size_t i = 0; i < fl_json_len(j); i++) {
            if (fl_json_type_of(j) == FL_JSON_OBJECT) {
                const char *k = fl_json_key_at(j, i);
                if (!k || fl_json_get(j, k) != fl_json_at(j, i)) abort(); /* lookup finds the same value */
            }
            walk(fl_json_at(j, i), depth + 1);
        }
        break;
    default: (void)fl_json_bool(j); break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size heap copy: any read past `len` is caught by ASan */
    char *text = malloc(size ? size : 1);
    if (!text) return 0;
    if (size) memcpy(text, data, size);
    fl_ctx *ctx = fuzz_ctx();
    fl_json *root = NULL;
    fl_status st = fl_json_parse(ctx, text, size, &root);
    fuzz_check_message(ctx, st);
    if (st == FL_OK) walk(root, 0);
    fl_json_free(root);
    /* the locale-independent number parser shares the input */
    double d;
    (void)fl_parse_double_c(text, size, &d);
    fl_ctx_free(ctx);
    free(text);
    return 0;
}
