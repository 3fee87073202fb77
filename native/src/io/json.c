/* Strict JSON (RFC 8259) DOM parser for untrusted text, and a growable string builder.
 *
 * Strictness: one value with optional surrounding whitespace and nothing else; no comments, no
 * trailing commas, no NaN/Infinity/hex/leading '+' or leading zeros; strings must be valid UTF-8,
 * without raw control characters, with valid escapes (surrogate pairs must pair up, \u0000 is
 * refused because values are handed out as C strings); numbers must be finite as doubles; duplicate
 * keys in one object are an error. Limits: nesting depth, string length and total element count
 * (FL_JSON_MAX_*). Numbers are parsed and printed in the "C" locale whatever the process locale is
 * (the JVM sets LC_ALL from the environment, so a German Fiji would otherwise see "0,5").
 */
#define _GNU_SOURCE
#include "json.h"

#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fl_json {
    fl_json_type type;
    int b;
    double num;
    char *str;        /* FL_JSON_STRING: NUL-terminated UTF-8 */
    size_t n, cap;    /* array/object element count and capacity */
    fl_json **items;  /* elements (array) or values (object) */
    char **keys;      /* object keys */
};

typedef struct parser {
    fl_ctx *ctx;
    const char *s;
    size_t len, pos;
    size_t elements;
    locale_t cloc;
    fl_status st;
} parser;

static fl_status perr(parser *p, const char *what)
{
    if (p->st == FL_OK) p->st = fl_fail(p->ctx, FL_EFORMAT, "invalid JSON at byte %zu: %s", p->pos, what);
    return p->st;
}

static fl_status pnomem(parser *p)
{
    if (p->st == FL_OK) p->st = fl_fail(p->ctx, FL_ENOMEM, "out of memory while parsing JSON");
    return p->st;
}

static void skip_ws(parser *p)
{
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') p->pos++;
        else break;
    }
}

void fl_json_free(fl_json *j)
{
    if (!j) return;
    if (j->type == FL_JSON_ARRAY || j->type == FL_JSON_OBJECT) {
        for (size_t i = 0; i < j->n; i++) {
            fl_json_free(j->items[i]);
            if (j->keys) fl_free(j->keys[i]);
        }
        fl_free(j->items);
        fl_free(j->keys);
    }
    fl_free(j->str);
    fl_free(j);
}

static fl_json *new_node(parser *p, fl_json_type t)
{
    if (++p->elements > FL_JSON_MAX_ELEMENTS) {
        perr(p, "too many elements (limit " "1048576" ")");
        return NULL;
    }
    fl_json *j = fl_calloc(1, sizeof *j);
    if (!j) {
        pnomem(p);
        return NULL;
    }
    j->type = t;
    return j;
}

/* Append child (and key, for objects) to a container; takes ownership of both, also on failure. */
static fl_status push_child(parser *p, fl_json *c, char *key, fl_json *v)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 4;
        fl_json **items = fl_calloc(cap, sizeof *items);
        char **keys = c->type == FL_JSON_OBJECT ? fl_calloc(cap, sizeof *keys) : NULL;
        if (!items || (c->type == FL_JSON_OBJECT && !keys)) {
            fl_free(items);
            fl_free(keys);
            fl_free(key);
            fl_json_free(v);
            return pnomem(p);
        }
        if (c->n) {
            memcpy(items, c->items, c->n * sizeof *items);
            if (keys) memcpy(keys, c->keys, c->n * sizeof *keys);
        }
        fl_free(c->items);
        fl_free(c->keys);
        c->items = items;
        c->keys = keys;
        c->cap = cap;
    }
    c->items[c->n] = v;
    if (c->keys) c->keys[c->n] = key;
    c->n++;
    return FL_OK;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int read_hex4(parser *p, size_t at, unsigned *out)
{
    if (at + 4 > p->len) return 0;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p->s[at + i]);
        if (h < 0) return 0;
        v = v * 16 + (unsigned)h;
    }
    *out = v;
    return 1;
}

/* Length of a valid UTF-8 sequence starting at s[0] (max n bytes available), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t k;
    unsigned cp;
    if (c >= 0xC2 && c <= 0xDF) { k = 2; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { k = 3; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { k = 4; cp = c & 0x07; }
    else return 0;
    if (n < k) return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (k == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) return 0;
    if (k == 4 && (cp < 0x10000 || cp > 0x10FFFF)) return 0;
    return k;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Parses a string token at p->pos (which is '"'); returns a fl_alloc'd NUL-terminated copy. */
static char *parse_string(parser *p)
{
    size_t start = ++p->pos; /* after the quote */
    /* pass 1: find the end and validate; the decoded form is never longer than the raw form */
    size_t i = start;
    for (;;) {
        if (i >= p->len) {
            perr(p, "unterminated string");
            return NULL;
        }
        unsigned char c = (unsigned char)p->s[i];
        if (c == '"') break;
        if (c < 0x20) {
            p->pos = i;
            perr(p, "control character in string (must be escaped)");
            return NULL;
        }
        if (c == '\\') {
            i += 2;
            continue; /* escapes are checked in pass 2 */
        }
        size_t k = utf8_seq((const unsigned char *)p->s + i, p->len - i);
        if (!k) {
            p->pos = i;
            perr(p, "invalid UTF-8 in string");
            return NULL;
        }
        i += k;
    }
    size_t raw = i - start;
    if (raw > FL_JSON_MAX_STRING) {
        perr(p, "string too long");
        return NULL;
    }
    char *out = fl_alloc(raw + 1);
    if (!out) {
        pnomem(p);
        return NULL;
    }
    size_t o = 0;
    for (size_t q = start; q < i;) {
        char c = p->s[q];
        if (c != '\\') {
            out[o++] = c;
            q++;
            continue;
        }
        p->pos = q;
        if (q + 1 >= i) goto bad_escape;
        char e = p->s[q + 1];
        q += 2;
        switch (e) {
        case '"': out[o++] = '"'; break;
        case '\\': out[o++] = '\\'; break;
        case '/': out[o++] = '/'; break;
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'n': out[o++] = '\n'; break;
        case 'r': out[o++] = '\r'; break;
        case 't': out[o++] = '\t'; break;
        case 'u': {
            unsigned u;
            if (q + 4 > i || !read_hex4(p, q, &u)) goto bad_escape;
            q += 4;
            if (u == 0) {
                fl_free(out);
                perr(p, "\\u0000 is not allowed in strings");
                return NULL;
            }
            if (u >= 0xDC00 && u <= 0xDFFF) goto bad_escape; /* lone low surrogate */
            if (u >= 0xD800 && u <= 0xDBFF) {
                unsigned lo;
                if (q + 6 > i || p->s[q] != '\\' || p->s[q + 1] != 'u' || !read_hex4(p, q + 2, &lo) ||
                    lo < 0xDC00 || lo > 0xDFFF)
                    goto bad_escape;
                q += 6;
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
            }
            /* \uXXXX is 6 raw bytes, at most 3 decoded; a pair is 12 raw, 4 decoded */
            o += put_utf8(out + o, u);
            break;
        }
        default:
            goto bad_escape;
        }
    }
    out[o] = '\0';
    p->pos = i + 1;
    return out;
bad_escape:
    fl_free(out);
    perr(p, "invalid escape sequence in string");
    return NULL;
}

static fl_json *parse_number(parser *p)
{
    size_t i = p->pos, n = p->len;
    const char *s = p->s;
    if (i < n && s[i] == '-') i++;
    if (i >= n || !(s[i] >= '0' && s[i] <= '9')) {
        perr(p, "invalid number");
        return NULL;
    }
    if (s[i] == '0') {
        i++;
        if (i < n && s[i] >= '0' && s[i] <= '9') {
            perr(p, "leading zeros are not allowed");
            return NULL;
        }
    } else {
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    }
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n || !(s[i] >= '0' && s[i] <= '9')) {
            perr(p, "digit expected after decimal point");
            return NULL;
        }
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= n || !(s[i] >= '0' && s[i] <= '9')) {
            perr(p, "digit expected in exponent");
            return NULL;
        }
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    }
    size_t tl = i - p->pos;
    if (tl > 1000) {
        perr(p, "number too long");
        return NULL;
    }
    char buf[1024];
    memcpy(buf, s + p->pos, tl);
    buf[tl] = '\0';
    double v = strtod_l(buf, NULL, p->cloc);
    if (!isfinite(v)) {
        perr(p, "number out of range");
        return NULL;
    }
    fl_json *j = new_node(p, FL_JSON_NUMBER);
    if (!j) return NULL;
    j->num = v;
    p->pos = i;
    return j;
}

static int key_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static fl_json *parse_value(parser *p, int depth);

static fl_json *parse_container(parser *p, int depth, int is_object)
{
    if (depth >= FL_JSON_MAX_DEPTH) {
        perr(p, "nesting too deep (limit 64)");
        return NULL;
    }
    fl_json *c = new_node(p, is_object ? FL_JSON_OBJECT : FL_JSON_ARRAY);
    if (!c) return NULL;
    char close = is_object ? '}' : ']';
    p->pos++; /* '[' or '{' */
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        return c;
    }
    for (;;) {
        skip_ws(p);
        char *key = NULL;
        if (is_object) {
            if (p->pos >= p->len || p->s[p->pos] != '"') {
                perr(p, "object key (a string) expected");
                goto fail;
            }
            key = parse_string(p);
            if (!key) goto fail;
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':') {
                fl_free(key);
                perr(p, "':' expected after object key");
                goto fail;
            }
            p->pos++;
        }
        fl_json *v = parse_value(p, depth + 1);
        if (!v) {
            fl_free(key);
            goto fail;
        }
        if (push_child(p, c, key, v) != FL_OK) goto fail;
        skip_ws(p);
        if (p->pos >= p->len) {
            perr(p, is_object ? "unterminated object" : "unterminated array");
            goto fail;
        }
        char ch = p->s[p->pos];
        if (ch == ',') {
            p->pos++;
            skip_ws(p);
            if (p->pos < p->len && p->s[p->pos] == close) {
                perr(p, "trailing comma");
                goto fail;
            }
            continue;
        }
        if (ch == close) {
            p->pos++;
            break;
        }
        perr(p, is_object ? "',' or '}' expected" : "',' or ']' expected");
        goto fail;
    }
    if (is_object && c->n > 1) {
        /* duplicate keys: sort a copy of the key pointers, compare neighbours (O(n log n)) */
        char **sorted = fl_calloc(c->n, sizeof *sorted);
        if (!sorted) {
            pnomem(p);
            goto fail;
        }
        memcpy(sorted, c->keys, c->n * sizeof *sorted);
        qsort(sorted, c->n, sizeof *sorted, key_cmp);
        for (size_t i = 1; i < c->n; i++) {
            if (strcmp(sorted[i - 1], sorted[i]) == 0) {
                char msg[160];
                snprintf(msg, sizeof msg, "duplicate key \"%.100s\"", sorted[i]);
                fl_free(sorted);
                perr(p, msg);
                goto fail;
            }
        }
        fl_free(sorted);
    }
    return c;
fail:
    fl_json_free(c);
    return NULL;
}

static int match_lit(parser *p, const char *lit)
{
    size_t n = strlen(lit);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, lit, n) != 0) return 0;
    p->pos += n;
    return 1;
}

static fl_json *parse_value(parser *p, int depth)
{
    skip_ws(p);
    if (p->pos >= p->len) {
        perr(p, "value expected");
        return NULL;
    }
    char c = p->s[p->pos];
    switch (c) {
    case '{': return parse_container(p, depth, 1);
    case '[': return parse_container(p, depth, 0);
    case '"': {
        char *s = parse_string(p);
        if (!s) return NULL;
        fl_json *j = new_node(p, FL_JSON_STRING);
        if (!j) {
            fl_free(s);
            return NULL;
        }
        j->str = s;
        return j;
    }
    case 't':
    case 'f':
    case 'n': {
        fl_json_type t = c == 'n' ? FL_JSON_NULL : FL_JSON_BOOL;
        if (!match_lit(p, c == 't' ? "true" : c == 'f' ? "false" : "null")) {
            perr(p, "invalid literal");
            return NULL;
        }
        fl_json *j = new_node(p, t);
        if (j) j->b = c == 't';
        return j;
    }
    default:
        if (c == '-' || (c >= '0' && c <= '9')) return parse_number(p);
        perr(p, "unexpected character (NaN, Infinity, comments and single quotes are not JSON)");
        return NULL;
    }
}

fl_status fl_json_parse(fl_ctx *ctx, const char *text, size_t len, fl_json **out)
{
    if (!out) return fl_fail(ctx, FL_EINVAL, "fl_json_parse: no output pointer");
    *out = NULL;
    if (!text && len) return fl_fail(ctx, FL_EINVAL, "fl_json_parse: no text");
    parser p = {.ctx = ctx, .s = text, .len = len, .pos = 0, .elements = 0, .st = FL_OK};
    p.cloc = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (p.cloc == (locale_t)0) return fl_fail(ctx, FL_ENOMEM, "out of memory (C locale) while parsing JSON");
    fl_json *j = parse_value(&p, 0);
    if (j) {
        skip_ws(&p);
        if (p.pos != p.len) {
            perr(&p, "unexpected text after the JSON value");
            fl_json_free(j);
            j = NULL;
        }
    }
    freelocale(p.cloc);
    if (!j) return p.st != FL_OK ? p.st : fl_fail(ctx, FL_EFORMAT, "invalid JSON");
    *out = j;
    return FL_OK;
}

fl_json_type fl_json_type_of(const fl_json *j) { return j ? j->type : FL_JSON_NULL; }

const fl_json *fl_json_get(const fl_json *obj, const char *key)
{
    if (!obj || obj->type != FL_JSON_OBJECT || !key) return NULL;
    for (size_t i = 0; i < obj->n; i++)
        if (strcmp(obj->keys[i], key) == 0) return obj->items[i];
    return NULL;
}

size_t fl_json_len(const fl_json *j)
{
    return j && (j->type == FL_JSON_ARRAY || j->type == FL_JSON_OBJECT) ? j->n : 0;
}

const fl_json *fl_json_at(const fl_json *j, size_t i)
{
    if (!j || (j->type != FL_JSON_ARRAY && j->type != FL_JSON_OBJECT) || i >= j->n) return NULL;
    return j->items[i];
}

const char *fl_json_key_at(const fl_json *j, size_t i)
{
    if (!j || j->type != FL_JSON_OBJECT || i >= j->n) return NULL;
    return j->keys[i];
}

double fl_json_number(const fl_json *j) { return j && j->type == FL_JSON_NUMBER ? j->num : NAN; }

const char *fl_json_string(const fl_json *j) { return j && j->type == FL_JSON_STRING ? j->str : NULL; }

int fl_json_bool(const fl_json *j) { return j && j->type == FL_JSON_BOOL ? j->b : 0; }

int fl_json_int64(const fl_json *j, int64_t lo, int64_t hi, int64_t *out)
{
    if (!j || j->type != FL_JSON_NUMBER) return 0;
    double v = j->num;
    if (!(v >= -9007199254740992.0 && v <= 9007199254740992.0) || v != floor(v)) return 0;
    int64_t iv = (int64_t)v;
    if (iv < lo || iv > hi) return 0;
    *out = iv;
    return 1;
}

/* ---- locale-independent number text -------------------------------------------------------------- */

int fl_parse_double_c(const char *s, size_t n, double *out)
{
    char buf[128];
    while (n && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) n--;
    if (n == 0 || n >= sizeof buf) return 0;
    memcpy(buf, s, n);
    buf[n] = '\0';
    locale_t c = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (c == (locale_t)0) return 0;
    char *end = NULL;
    double v = strtod_l(buf, &end, c);
    freelocale(c);
    if (end != buf + n || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

void fl_strbuf_printf_c(fl_strbuf *b, const char *fmt, ...)
{
    locale_t c = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (c == (locale_t)0) {
        b->failed = 1;
        return;
    }
    locale_t old = uselocale(c);
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    if (n >= 0 && (size_t)n < sizeof small) {
        fl_strbuf_append(b, small, (size_t)n);
    } else if (n >= 0) {
        char *big = fl_alloc((size_t)n + 1);
        if (big) {
            vsnprintf(big, (size_t)n + 1, fmt, ap2);
            fl_strbuf_append(b, big, (size_t)n);
            fl_free(big);
        } else {
            b->failed = 1;
        }
    } else {
        b->failed = 1;
    }
    va_end(ap2);
    va_end(ap);
    uselocale(old);
    freelocale(c);
}

/* ---- string builder ------------------------------------------------------------------------------ */

void fl_strbuf_init(fl_strbuf *b) { memset(b, 0, sizeof *b); }

void fl_strbuf_free(fl_strbuf *b)
{
    if (!b) return;
    fl_free(b->data);
    memset(b, 0, sizeof *b);
}

void fl_strbuf_append(fl_strbuf *b, const char *s, size_t n)
{
    if (b->failed) return;
    if (n > SIZE_MAX / 2 - b->len - 1) {
        b->failed = 1;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1) cap *= 2;
        char *d = fl_alloc(cap);
        if (!d) {
            b->failed = 1;
            return;
        }
        if (b->data) memcpy(d, b->data, b->len);
        fl_free(b->data);
        b->data = d;
        b->cap = cap;
    }
    if (n) memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void fl_strbuf_printf(fl_strbuf *b, const char *fmt, ...)
{
    if (b->failed) return;
    char small[256];
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    if (n < 0) {
        b->failed = 1;
    } else if ((size_t)n < sizeof small) {
        fl_strbuf_append(b, small, (size_t)n);
    } else {
        char *big = fl_alloc((size_t)n + 1);
        if (!big) {
            b->failed = 1;
        } else {
            vsnprintf(big, (size_t)n + 1, fmt, ap2);
            fl_strbuf_append(b, big, (size_t)n);
            fl_free(big);
        }
    }
    va_end(ap2);
    va_end(ap);
}

void fl_strbuf_json_string(fl_strbuf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    fl_strbuf_append(b, "\"", 1);
    if (s) {
        const char *run = s;
        for (const char *q = s; *q; q++) {
            unsigned char c = (unsigned char)*q;
            if (c >= 0x20 && c != '"' && c != '\\') continue;
            fl_strbuf_append(b, run, (size_t)(q - run));
            char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
            size_t el = 2;
            switch (c) {
            case '"': esc[1] = '"'; break;
            case '\\': esc[1] = '\\'; break;
            case '\n': esc[1] = 'n'; break;
            case '\r': esc[1] = 'r'; break;
            case '\t': esc[1] = 't'; break;
            case '\b': esc[1] = 'b'; break;
            case '\f': esc[1] = 'f'; break;
            default:
                esc[1] = 'u'; esc[2] = '0'; esc[3] = '0';
                esc[4] = hex[c >> 4]; esc[5] = hex[c & 15];
                el = 6;
            }
            fl_strbuf_append(b, esc, el);
            run = q + 1;
        }
        fl_strbuf_append(b, run, strlen(run));
    }
    fl_strbuf_append(b, "\"", 1);
}
