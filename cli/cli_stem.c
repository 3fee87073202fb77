/* The 4D-STEM input options shared by `ferrolens stem` and `ferrolens diffraction-ae`: a TIFF/BigTIFF
 * hyperstack or a raw file, opened as a streaming source (native/src/io/stem4d.h). */
#include "cli_stem.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

/* "32x24" -> a, b (both >= 1) */
int cli_parse_size_pair(const char *s, int64_t *a, int64_t *b)
{
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno || end == s || (*end != 'x' && *end != 'X')) return 0;
    const char *q = end + 1;
    long long y = strtoll(q, &end, 10);
    if (errno || end == q || *end || x < 1 || y < 1 || x > INT32_MAX || y > INT32_MAX) return 0;
    *a = x;
    *b = y;
    return 1;
}

/* Opens the source named by the options; usage errors return 2 (printed), engine errors 1. */
int cli_stem_open(const char *cmd, const cli_option *opts, fl_ctx *ctx, fl_stem4d **src)
{
    const char *in = cli_str(opts, "input"), *raw = cli_str(opts, "raw");
    if (!in == !raw) return cli_usage_error(cmd, "give exactly one of --input FILE (TIFF) and --raw FILE");
    int64_t sx = 0, sy = 0, dw = 0, dh = 0;
    if (cli_is_set(opts, "scan") && !cli_parse_size_pair(cli_str(opts, "scan"), &sx, &sy))
        return cli_usage_error(cmd, "--scan expects XxY (e.g. 32x32), got '%s'", cli_str(opts, "scan"));
    if (cli_flag(opts, "little") && cli_flag(opts, "big")) return cli_usage_error(cmd, "--little and --big exclude each other");
    fl_status st;
    if (in) {
        if (cli_is_set(opts, "detector") || cli_is_set(opts, "dtype") || cli_is_set(opts, "offset") || cli_flag(opts, "big"))
            return cli_usage_error(cmd, "--detector, --dtype, --offset and --big are for --raw files only");
        st = fl_stem4d_open_tiff(ctx, in, sx, sy, src);
    } else {
        if (!cli_is_set(opts, "detector") || !cli_parse_size_pair(cli_str(opts, "detector"), &dw, &dh))
            return cli_usage_error(cmd, "--raw needs --detector WxH (e.g. 128x128)");
        if (!sx) return cli_usage_error(cmd, "--raw needs --scan XxY (e.g. 32x32)");
        const char *dt = cli_str(opts, "dtype");
        if (!dt) return cli_usage_error(cmd, "--raw needs --dtype (u8, u16, i16, u32, i32, f32 or f64)");
        int d = fl_stem_dtype_parse(dt);
        if (d < 0) return cli_usage_error(cmd, "--dtype: unknown sample type '%s' (u8, u16, i16, u32, i32, f32, f64)", dt);
        fl_stem_raw_params rp = {dw, dh, sx, sy, d, cli_flag(opts, "big"), (uint64_t)cli_int(opts, "offset")};
        st = fl_stem4d_open_raw(ctx, raw, &rp, src);
    }
    return st ? cli_engine_error(ctx) : 0;
}

