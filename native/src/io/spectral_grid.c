/* Grids of curves <-> hyperstacks (see spectral_grid.h). */
#include "io/spectral_grid.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- axis labels --------------------------------------------------------------------------------- */

static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

/* Locale-independent decimal number: [+-]digits[.digits][(e|E)[+-]digits]; also a leading U+2212
 * minus. Returns the number of bytes consumed, 0 if none. */
static size_t parse_number(const char *s, double *out)
{
    size_t i = 0;
    int neg = 0;
    if (s[i] == '+' || s[i] == '-') {
        neg = s[i] == '-';
        i++;
    } else if ((unsigned char)s[0] == 0xE2 && (unsigned char)s[1] == 0x88 && (unsigned char)s[2] == 0x92) {
        neg = 1;
        i = 3;
    }
    double mant = 0.0;
    int ndig = 0, scale = 0;
    while (is_digit(s[i])) {
        if (mant < 1e17) mant = mant * 10.0 + (s[i] - '0');
        else scale++;
        i++;
        ndig++;
    }
    if (s[i] == '.') {
        i++;
        while (is_digit(s[i])) {
            if (mant < 1e17) {
                mant = mant * 10.0 + (s[i] - '0');
                scale--;
            }
            i++;
            ndig++;
        }
    }
    if (ndig == 0) return 0;
    if (s[i] == 'e' || s[i] == 'E') {
        size_t j = i + 1;
        int eneg = 0;
        if (s[j] == '+' || s[j] == '-') {
            eneg = s[j] == '-';
            j++;
        }
        if (is_digit(s[j])) {
            int e = 0;
            while (is_digit(s[j])) {
                if (e < 10000) e = e * 10 + (s[j] - '0');
                j++;
            }
            scale += eneg ? -e : e;
            i = j;
        }
        /* "1e" followed by something else: the 'e' starts the unit ("1 eV" needs the space) */
    }
    double v = mant;
    if (scale > 0) v *= pow(10.0, scale);
    else if (scale < 0) v /= pow(10.0, -scale);
    if (!isfinite(v)) return 0;
    *out = neg ? -v : v;
    return i;
}

int fl_parse_axis_label(const char *label, double *value, char *unit, size_t cap)
{
    if (!label || !value) return 0;
    char buf[256];
    size_t L = 0;
    while (label[L] && label[L] != '\n' && L + 1 < sizeof buf) {
        buf[L] = label[L];
        L++;
    }
    buf[L] = '\0';
    while (L > 0 && is_space(buf[L - 1])) buf[--L] = '\0';
    const char *s = buf;
    while (is_space(*s)) s++;
    double v;
    size_t used = parse_number(s, &v);
    if (used == 0) return 0;
    s += used;
    while (is_space(*s)) s++;
    size_t ul = strlen(s);
    if (ul > 0) {
        if (is_digit(s[0]) || s[0] == '.' || s[0] == '+' || s[0] == '-') return 0;
        for (size_t i = 0; i < ul; i++)
            if (is_space(s[i]) || s[i] == ',' || s[i] == ';' || s[i] == '(' || s[i] == ')' || s[i] == '=') return 0;
    }
    if (unit) {
        if (ul + 1 > cap) return 0;
        memcpy(unit, s, ul + 1);
    }
    *value = v;
    return 1;
}

static int unit_is_voltage(const char *u)
{
    return !strcmp(u, "V") || !strcmp(u, "mV") || !strcmp(u, "kV") || !strcmp(u, "uV") || !strcmp(u, "\xC2\xB5V") ||
           !strcmp(u, "volt") || !strcmp(u, "volts");
}

static int unit_is_time(const char *u)
{
    return !strcmp(u, "s") || !strcmp(u, "ms") || !strcmp(u, "us") || !strcmp(u, "sec") || !strcmp(u, "min");
}

/* ---- image -> curves ------------------------------------------------------------------------------ */

fl_status fl_grid_to_curves(fl_ctx *ctx, const fl_image *img, int axis, float **curves, int64_t *n, int32_t *T,
                            double **axis_values, char unit[32], char label[64])
{
    if (!img || !curves || !n || !T || !axis_values || !unit || !label)
        return fl_fail(ctx, FL_EINVAL, "spectral grid: missing argument");
    if (img->is_rgb)
        return fl_fail(ctx, FL_EUNSUPPORTED, "the image is RGB colour; a grid of curves needs a grayscale (8-, 16- or 32-bit) hyperstack");
    if (!img->data || img->width < 1 || img->height < 1 || img->channels < 1 || img->slices < 1 || img->frames < 1)
        return fl_fail(ctx, FL_EINVAL, "the image is empty");
    if (img->channels > 1)
        return fl_fail(ctx, FL_EINVAL, "the image has %lld channels; a grid of curves needs a single channel with the curve on the slice (Z) or frame (T) axis",
                       (long long)img->channels);
    const int64_t Z = img->slices, F = img->frames;
    int use_t;
    if (axis == 0) {
        if (Z > 1 && F > 1)
            return fl_fail(ctx, FL_EINVAL, "the image has both slices and frames; choose the spectral axis");
        if (Z == 1 && F == 1)
            return fl_fail(ctx, FL_EINVAL, "the image has a single plane; a grid of curves needs the curve on the slice (Z) or frame (T) axis");
        use_t = F > 1;
    } else if (axis == 'z' || axis == 'Z') {
        if (Z == 1) return fl_fail(ctx, FL_EINVAL, "the image has no slices (Z); it cannot be the spectral axis");
        if (F > 1)
            return fl_fail(ctx, FL_EINVAL, "the image has %lld frames besides the %lld slices; only one of Z and T can hold the curves",
                           (long long)F, (long long)Z);
        use_t = 0;
    } else if (axis == 't' || axis == 'T') {
        if (F == 1) return fl_fail(ctx, FL_EINVAL, "the image has no frames (T); it cannot be the spectral axis");
        if (Z > 1)
            return fl_fail(ctx, FL_EINVAL, "the image has %lld slices besides the %lld frames; only one of Z and T can hold the curves",
                           (long long)Z, (long long)F);
        use_t = 1;
    } else {
        return fl_fail(ctx, FL_EINVAL, "spectral axis must be automatic, 'z' or 't'");
    }
    const int64_t len = use_t ? F : Z;
    if (len < FL_GRID_MIN_POINTS)
        return fl_fail(ctx, FL_EINVAL, "the curves have only %lld points along %s; at least %d are needed",
                       (long long)len, use_t ? "the frames (T)" : "the slices (Z)", FL_GRID_MIN_POINTS);
    if (len > INT32_MAX) return fl_fail(ctx, FL_EINVAL, "the curves are too long (%lld points)", (long long)len);
    const int64_t W = img->width, H = img->height;
    if (W > INT64_MAX / H) return fl_fail(ctx, FL_EINVAL, "the image is too large");
    const int64_t npix = W * H;
    size_t cells, bytes;
    if (!fl_mul_size((size_t)npix, (size_t)len, &cells) || !fl_mul_size(cells, sizeof(float), &bytes))
        return fl_fail(ctx, FL_ENOMEM, "the image is too large");
    /* with C = 1 and one of Z, T equal to 1, plane index k runs along the spectral axis */

    /* non-finite pixels */
    int64_t bad = 0, first = -1;
    for (size_t i = 0; i < cells; i++) {
        if (!isfinite(img->data[i])) {
            if (first < 0) first = (int64_t)i;
            bad++;
        }
    }
    if (bad) {
        int64_t k = first / npix, r = first % npix;
        return fl_fail(ctx, FL_EINVAL, "image has %lld NaN/Inf pixel%s (first at x=%lld, y=%lld, %s %lld)", (long long)bad,
                       bad == 1 ? "" : "s", (long long)(r % W), (long long)(r / W), use_t ? "frame" : "slice",
                       (long long)(k + 1));
    }

    fl_status st = fl_check_budget(ctx, bytes + (size_t)len * sizeof(double), "converting the image to curves");
    if (st != FL_OK) return st;
    float *c = fl_alloc(bytes);
    double *av = fl_alloc((size_t)len * sizeof(double));
    if (!c || !av) {
        fl_free(c);
        fl_free(av);
        return fl_fail(ctx, FL_ENOMEM, "out of memory converting the image to curves (%.1f MiB)", bytes / 1048576.0);
    }

    /* axis values: labels, calibration, index */
    char u0[32] = "";
    int from_labels = img->labels != NULL;
    for (int64_t k = 0; k < len && from_labels; k++) {
        char uk[32];
        if (!fl_parse_axis_label(img->labels[k], &av[k], uk, sizeof uk)) {
            from_labels = 0;
        } else if (k == 0) {
            memcpy(u0, uk, sizeof u0);
        } else if (strcmp(uk, u0) != 0) {
            from_labels = 0;
        }
    }
    if (from_labels) {
        snprintf(unit, 32, "%s", u0);
        snprintf(label, 64, "%s", unit_is_voltage(u0) ? "voltage" : unit_is_time(u0) ? "time" : "slice label");
    } else if (!use_t && isfinite(img->pixel_depth) && img->pixel_depth != 0.0 &&
               (img->pixel_depth != 1.0 || (img->unit[0] && strcmp(img->unit, "pixel") && strcmp(img->unit, "pixels")))) {
        for (int64_t k = 0; k < len; k++) av[k] = (double)k * img->pixel_depth;
        snprintf(unit, 32, "%s", strcmp(img->unit, "pixel") ? img->unit : "");
        snprintf(label, 64, "Z");
    } else if (use_t && isfinite(img->frame_interval) && img->frame_interval > 0.0) {
        for (int64_t k = 0; k < len; k++) av[k] = (double)k * img->frame_interval;
        snprintf(unit, 32, "s");
        snprintf(label, 64, "time");
    } else {
        for (int64_t k = 0; k < len; k++) av[k] = (double)k;
        unit[0] = '\0';
        snprintf(label, 64, "index");
    }

    /* transpose planes -> curves, in blocks of pixels */
    const int64_t B = 256;
    for (int64_t n0 = 0; n0 < npix; n0 += B) {
        int64_t n1 = n0 + B < npix ? n0 + B : npix;
        for (int64_t k = 0; k < len; k++) {
            const float *plane = img->data + k * npix;
            for (int64_t i = n0; i < n1; i++) c[i * len + k] = plane[i];
        }
    }
    *curves = c;
    *axis_values = av;
    *n = npix;
    *T = (int32_t)len;
    return FL_OK;
}

/* ---- curves -> image ------------------------------------------------------------------------------ */

static void copy_spatial(fl_image *out, const fl_image *like)
{
    if (!like) {
        out->pixel_width = out->pixel_height = 1.0;
        snprintf(out->unit, sizeof out->unit, "pixel");
        return;
    }
    out->pixel_width = like->pixel_width;
    out->pixel_height = like->pixel_height;
    snprintf(out->unit, sizeof out->unit, "%s", like->unit);
    out->frame_interval = like->frame_interval;
}

static fl_status check_dims(fl_ctx *ctx, const void *data, int64_t W, int64_t H, int64_t K, const char *what)
{
    if (!data) return fl_fail(ctx, FL_EINVAL, "%s: no data given", what);
    if (W < 1 || H < 1 || K < 1)
        return fl_fail(ctx, FL_EINVAL, "%s: invalid size %lld x %lld x %lld", what, (long long)W, (long long)H, (long long)K);
    return FL_OK;
}

static void format_value(char *buf, size_t cap, double v, int fixed3, const char *unit)
{
    if (fixed3 && fabs(v) < 0.0005) v = 0.0;
    if (fixed3) snprintf(buf, cap, "%.3f", v);
    else {
        /* the shortest %g form (6..15 significant digits) that reads back within 1e-9 relative */
        for (int prec = 6; prec <= 15; prec++) {
            snprintf(buf, cap, "%.*g", prec, v);
            double back;
            if (fl_parse_axis_label(buf, &back, NULL, 0) && fabs(back - v) <= 1e-9 * fabs(v)) break;
        }
    }
    if (!strcmp(buf, "-0.000") || !strcmp(buf, "-0")) snprintf(buf, cap, fixed3 ? "0.000" : "0");
    if (unit && unit[0]) {
        size_t l = strlen(buf);
        snprintf(buf + l, cap - l, " %s", unit);
    }
}

fl_status fl_curves_to_grid(fl_ctx *ctx, const float *curves, int64_t W, int64_t H, int32_t T,
                            const double *axis_values, const char *unit, const fl_image *like, fl_image *out)
{
    if (!out) return fl_fail(ctx, FL_EINVAL, "curves to grid: no output image");
    fl_image_init(out);
    fl_status st = check_dims(ctx, curves, W, H, T, "curves to grid");
    if (st != FL_OK) return st;
    st = fl_image_alloc(ctx, out, W, H, 1, T, 1);
    if (st != FL_OK) return st;
    const int64_t npix = W * H;
    const int64_t B = 256;
    for (int64_t n0 = 0; n0 < npix; n0 += B) {
        int64_t n1 = n0 + B < npix ? n0 + B : npix;
        for (int64_t k = 0; k < T; k++) {
            float *plane = out->data + k * npix;
            for (int64_t i = n0; i < n1; i++) plane[i] = curves[i * T + k];
        }
    }
    copy_spatial(out, like);
    /* label format and z step */
    int fixed3 = 1, even = T > 1;
    double step = 0.0;
    if (axis_values) {
        for (int32_t k = 0; k < T; k++) {
            double v = axis_values[k], m = v * 1000.0;
            if (!isfinite(v) || fabs(v) >= 1e9 || fabs(m - nearbyint(m)) > 1e-6 * (fabs(m) > 1.0 ? fabs(m) : 1.0)) fixed3 = 0;
        }
        if (T > 1) {
            step = (axis_values[T - 1] - axis_values[0]) / (double)(T - 1);
            for (int32_t k = 1; k < T && even; k++)
                if (!(fabs(axis_values[k] - axis_values[k - 1] - step) <= 1e-6 * fabs(step)) || step == 0.0) even = 0;
        }
    } else {
        even = 0;
    }
    out->pixel_depth = even ? fabs(step) : 1.0;
    for (int32_t k = 0; k < T && st == FL_OK; k++) {
        char lab[96];
        if (axis_values) format_value(lab, sizeof lab, axis_values[k], fixed3, unit);
        else snprintf(lab, sizeof lab, "%d", (int)k + 1);
        st = fl_image_set_label(ctx, out, k, lab);
    }
    if (st != FL_OK) {
        fl_image_free(out);
        fl_image_init(out);
    }
    return st;
}

fl_status fl_maps_to_image(fl_ctx *ctx, const float *maps, int64_t W, int64_t H, int32_t K,
                           const char *const *labels, const fl_image *like, fl_image *out)
{
    if (!out) return fl_fail(ctx, FL_EINVAL, "maps to image: no output image");
    fl_image_init(out);
    fl_status st = check_dims(ctx, maps, W, H, K, "maps to image");
    if (st != FL_OK) return st;
    st = fl_image_alloc(ctx, out, W, H, 1, K, 1);
    if (st != FL_OK) return st;
    const int64_t npix = W * H;
    for (int64_t i = 0; i < npix; i++)
        for (int64_t k = 0; k < K; k++) out->data[k * npix + i] = maps[i * K + k];
    copy_spatial(out, like);
    out->pixel_depth = 1.0;
    for (int32_t k = 0; k < K && st == FL_OK; k++) {
        char lab[64];
        if (labels && labels[k]) st = fl_image_set_label(ctx, out, k, labels[k]);
        else {
            snprintf(lab, sizeof lab, "channel %d", (int)k + 1);
            st = fl_image_set_label(ctx, out, k, lab);
        }
    }
    if (st != FL_OK) {
        fl_image_free(out);
        fl_image_init(out);
    }
    return st;
}
