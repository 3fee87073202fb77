/* Strict JSON parser and string builder. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "io/json.h"

static fl_status parse(const char *s, fl_json **out)
{
    fl_ctx *ctx = fl_ctx_new();
    fl_status st = fl_json_parse(ctx, s, strlen(s), out);
    if (st != FL_OK) cr_assert_neq(fl_ctx_message(ctx)[0], '\0', "a failure must leave a message");
    fl_ctx_free(ctx);
    return st;
}

static void expect_reject(const char *s)
{
    fl_json *j = (fl_json *)1;
    fl_status st = parse(s, &j);
    cr_expect_eq(st, FL_EFORMAT, "should reject: %s (got %d)", s, st);
    cr_expect_null(j, "output must be NULL on failure");
}

Test(json, parses_a_document)
{
    fl_json *j = NULL;
    cr_assert_eq(parse(" {\"a\": [1, -2.5e3, true, false, null], \"s\": \"x\\u00e9\\ud83d\\ude00\\n\", \"o\": {}} \n", &j),
                 FL_OK);
    cr_assert_eq(fl_json_type_of(j), FL_JSON_OBJECT);
    cr_assert_eq(fl_json_len(j), 3);
    const fl_json *a = fl_json_get(j, "a");
    cr_assert_eq(fl_json_type_of(a), FL_JSON_ARRAY);
    cr_assert_eq(fl_json_len(a), 5);
    cr_expect_eq(fl_json_number(fl_json_at(a, 0)), 1.0);
    cr_expect_eq(fl_json_number(fl_json_at(a, 1)), -2500.0);
    cr_expect_eq(fl_json_bool(fl_json_at(a, 2)), 1);
    cr_expect_eq(fl_json_bool(fl_json_at(a, 3)), 0);
    cr_expect_eq(fl_json_type_of(fl_json_at(a, 4)), FL_JSON_NULL);
    cr_expect_null(fl_json_at(a, 5));
    cr_expect_str_eq(fl_json_string(fl_json_get(j, "s")), "x\xc3\xa9\xf0\x9f\x98\x80\n");
    cr_expect_str_eq(fl_json_key_at(j, 2), "o");
    cr_expect_eq(fl_json_len(fl_json_get(j, "o")), 0);
    cr_expect_null(fl_json_get(j, "missing"));
    cr_expect(isnan(fl_json_number(fl_json_get(j, "s"))));
    cr_expect_null(fl_json_string(a));
    int64_t v;
    cr_expect(fl_json_int64(fl_json_at(a, 0), 0, 10, &v) && v == 1);
    cr_expect(!fl_json_int64(fl_json_at(a, 1), 0, INT64_MAX, &v));
    fl_json_free(j);
}

Test(json, scalars_at_top_level)
{
    fl_json *j = NULL;
    cr_assert_eq(parse("0.125", &j), FL_OK);
    cr_expect_eq(fl_json_number(j), 0.125);
    fl_json_free(j);
    cr_assert_eq(parse("\"\"", &j), FL_OK);
    cr_expect_str_eq(fl_json_string(j), "");
    fl_json_free(j);
}

Test(json, rejects_bad_text)
{
    const char *bad[] = {
        "", "   ", "{", "[1,2", "{\"a\":1,}", "[1,]", "{\"a\" 1}", "{a:1}", "{'a':1}", "[01]", "[1.]", "[.5]",
        "[1e]", "[+1]", "[NaN]", "[nan]", "[Infinity]", "[-Infinity]", "[1e999]", "[0x10]", "tru", "nul",
        "{\"a\":1}x", "{\"a\":1} {}", "[1] // c", "/* c */ [1]", "\"abc", "\"a\\x\"", "\"\\u12\"",
        "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"\\u0000\"", "\"tab\there\"",
        "\"\xff\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "\"\xe2\x82\"", "{\"a\":1,\"a\":2}",
        "{\"k\":{\"x\":1,\"y\":2,\"x\":3}}", "[\"\\", "-", "[-]", "[1 2]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) expect_reject(bad[i]);
}

Test(json, nul_byte_inside_text_is_rejected)
{
    fl_ctx *ctx = fl_ctx_new();
    fl_json *j = NULL;
    cr_expect_eq(fl_json_parse(ctx, "[1]\0", 4, &j), FL_EFORMAT);
    cr_expect_eq(fl_json_parse(ctx, "\"a\0b\"", 5, &j), FL_EFORMAT);
    /* not NUL-terminated: only len bytes are read */
    char buf[3] = {'[', '7', ']'};
    cr_assert_eq(fl_json_parse(ctx, buf, 3, &j), FL_OK);
    cr_expect_eq(fl_json_number(fl_json_at(j, 0)), 7.0);
    fl_json_free(j);
    fl_ctx_free(ctx);
}

Test(json, depth_limit)
{
    char deep[200];
    for (int ok = 0; ok < 2; ok++) {
        int n = ok ? FL_JSON_MAX_DEPTH : FL_JSON_MAX_DEPTH + 1;
        int k = 0;
        for (int i = 0; i < n; i++) deep[k++] = '[';
        for (int i = 0; i < n; i++) deep[k++] = ']';
        deep[k] = '\0';
        fl_json *j = NULL;
        cr_expect_eq(parse(deep, &j), ok ? FL_OK : FL_EFORMAT, "depth %d", n);
        fl_json_free(j);
    }
}

Test(json, big_array_and_duplicate_detection_scale)
{
    /* 20000 distinct keys: duplicate detection must not be quadratic-slow, and must find a late dup */
    fl_strbuf b;
    fl_strbuf_init(&b);
    fl_strbuf_append(&b, "{", 1);
    for (int i = 0; i < 20000; i++) fl_strbuf_printf(&b, "%s\"k%d\":%d", i ? "," : "", i, i);
    fl_strbuf_append(&b, "}", 1);
    cr_assert(!b.failed);
    fl_json *j = NULL;
    cr_assert_eq(parse(b.data, &j), FL_OK);
    cr_expect_eq(fl_json_len(j), 20000);
    cr_expect_eq(fl_json_number(fl_json_get(j, "k19999")), 19999.0);
    fl_json_free(j);
    b.len--; /* drop '}' */
    fl_strbuf_append(&b, ",\"k7\":1}", 8);
    cr_expect_eq(parse(b.data, &j), FL_EFORMAT);
    fl_strbuf_free(&b);
}

Test(json, strbuf_escapes_and_round_trips)
{
    const char *nasty = "q\"b\\s/\n\r\t\b\f\x01\x1f end \xc3\xa9";
    fl_strbuf b;
    fl_strbuf_init(&b);
    fl_strbuf_append(&b, "[", 1);
    fl_strbuf_json_string(&b, nasty);
    fl_strbuf_append(&b, ",", 1);
    fl_strbuf_json_string(&b, NULL);
    fl_strbuf_printf(&b, ",%d]", 42);
    cr_assert(!b.failed);
    cr_expect_str_eq(b.data, "[\"q\\\"b\\\\s/\\n\\r\\t\\b\\f\\u0001\\u001f end \xc3\xa9\",\"\",42]");
    fl_json *j = NULL;
    cr_assert_eq(parse(b.data, &j), FL_OK);
    cr_expect_str_eq(fl_json_string(fl_json_at(j, 0)), nasty);
    cr_expect_str_eq(fl_json_string(fl_json_at(j, 1)), "");
    fl_json_free(j);
    fl_strbuf_free(&b);
    cr_expect_null(b.data);
}

Test(json, locale_independent_numbers)
{
    double v;
    cr_expect(fl_parse_double_c(" 0.25\r", 6, &v) && v == 0.25);
    cr_expect(!fl_parse_double_c("0,25", 4, &v));
    cr_expect(!fl_parse_double_c("1x", 2, &v));
    cr_expect(!fl_parse_double_c("inf", 3, &v));
    fl_strbuf b;
    fl_strbuf_init(&b);
    fl_strbuf_printf_c(&b, "%.2f", 1.5);
    cr_expect_str_eq(b.data, "1.50");
    fl_strbuf_free(&b);
}
