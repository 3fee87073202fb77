/* Minimal strict JSON: a DOM parser for untrusted text (model headers) and a string builder. */
#ifndef FL_JSON_H
#define FL_JSON_H

#include "fl_internal.h"

typedef enum fl_json_type { FL_JSON_NULL, FL_JSON_BOOL, FL_JSON_NUMBER, FL_JSON_STRING, FL_JSON_ARRAY, FL_JSON_OBJECT } fl_json_type;
typedef struct fl_json fl_json;

/* Limits of fl_json_parse (untrusted input). */
#define FL_JSON_MAX_DEPTH 64                 /* nesting of arrays/objects */
#define FL_JSON_MAX_STRING (16u << 20)       /* bytes of one string or key (raw, before unescaping) */
#define FL_JSON_MAX_ELEMENTS (1u << 20)      /* values in one document */

/* Depth, length and count limits apply; duplicate keys are an error. */
fl_status fl_json_parse(fl_ctx *ctx, const char *text, size_t len, fl_json **out);
void fl_json_free(fl_json *j);
fl_json_type fl_json_type_of(const fl_json *j);
const fl_json *fl_json_get(const fl_json *obj, const char *key); /* NULL if absent or not an object */
size_t fl_json_len(const fl_json *j);                           /* array/object size, else 0 */
const fl_json *fl_json_at(const fl_json *j, size_t i);          /* array element or object value */
const char *fl_json_key_at(const fl_json *j, size_t i);         /* object key */
double fl_json_number(const fl_json *j);                        /* NaN if not a number */
const char *fl_json_string(const fl_json *j);                   /* NULL if not a string */
int fl_json_bool(const fl_json *j);
/* 1 and *out set when j is an integral number in [lo, hi] (and |value| <= 2^53), else 0. */
int fl_json_int64(const fl_json *j, int64_t lo, int64_t hi, int64_t *out);

/* Locale-independent ("C" locale) number text, whatever setlocale() the host process (JVM) did.
 * fl_parse_double_c: the whole of s[0..n) (surrounding blanks allowed) must be one finite number. */
int fl_parse_double_c(const char *s, size_t n, double *out);

/* Growable string; after an allocation failure `failed` is set and further appends are no-ops. */
typedef struct fl_strbuf {
    char *data;
    size_t len, cap;
    int failed;
} fl_strbuf;
void fl_strbuf_init(fl_strbuf *b);
void fl_strbuf_free(fl_strbuf *b);
void fl_strbuf_printf(fl_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void fl_strbuf_append(fl_strbuf *b, const char *s, size_t n);
void fl_strbuf_json_string(fl_strbuf *b, const char *s); /* quoted and escaped; NULL gives "" */
/* fl_strbuf_printf with numbers formatted in the "C" locale ('.' as decimal point). */
void fl_strbuf_printf_c(fl_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* data is NUL-terminated once anything was appended (NULL before). */

#endif
