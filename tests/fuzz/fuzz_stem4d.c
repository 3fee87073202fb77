/* libFuzzer target: the 4D-STEM streaming sources (fl_stem4d_open_tiff page by page, ImageJ
 * description, contiguous layout; fl_stem4d_open_raw with parameters taken from the input) and the
 * tools that stream them (fl_stem_com, fl_stem_vdf) on arbitrary bytes. */
#include "fuzz_common.h"

#include "ferrolens/stem.h"

#include <math.h>
#include <string.h>

/* Reads every pattern (at most 4096, binned by `bin`) and runs COM and a VDF when the data set is small. */
static void exercise(fl_ctx *ctx, fl_stem4d *s, int32_t bin)
{
    fl_stem4d_info in;
    fl_stem4d_get_info(s, &in);
    int64_t bw = in.det_w / bin, bh = in.det_h / bin;
    if (bw < 1 || bh < 1 || in.det_w * in.det_h > (1 << 20)) return;
    float *buf = malloc((size_t)bw * bh * sizeof(float));
    if (!buf) return;
    volatile float acc = 0;
    int64_t n = in.patterns < 4096 ? in.patterns : 4096;
    for (int64_t p = 0; p < n; p++) {
        fl_status st = fl_stem4d_read(ctx, s, p, 1, bin, buf);
        fuzz_check_message(ctx, st);
        if (st) break;
        for (int64_t i = 0; i < bw * bh; i++) acc += buf[i];
    }
    free(buf);
    if (in.patterns * in.det_w * in.det_h <= (1 << 22)) {
        fl_stem_com_params cp;
        fl_stem_com_params_default(&cp);
        cp.bin = bin;
        cp.hist_bins = 16;
        fl_stem_com_result r;
        fl_status st = fl_stem_com(ctx, s, &cp, &r);
        fuzz_check_message(ctx, st);
        if (!st) {
            for (int64_t i = 0; i < r.scan_x * r.scan_y; i++) acc += r.com_x[i] + r.direction[i];
            fl_stem_com_result_free(&r);
        }
        float *img = malloc((size_t)in.patterns * sizeof(float));
        if (img) {
            fl_stem_vdf_params vp;
            memset(&vp, 0, sizeof vp);
            vp.bin = bin, vp.shape = FL_VDF_ANNULUS, vp.cx = in.det_w / 2.0, vp.cy = in.det_h / 2.0, vp.r_out = 2, vp.mean = 1;
            st = fl_stem_vdf(ctx, s, &vp, img);
            fuzz_check_message(ctx, st);
            free(img);
        }
    }
    (void)acc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fl_ctx *ctx = fuzz_ctx();
    const char *path = fuzz_file(data, size);
    fl_stem4d *s = NULL;
    fl_status st = fl_stem4d_open_tiff(ctx, path, 0, 0, &s);
    fuzz_check_message(ctx, st);
    if (st == FL_OK) {
        exercise(ctx, s, size % 3 == 0 ? 2 : 1);
        fl_stem4d_close(s);
        s = NULL;
    }
    /* raw: the first 6 bytes choose the layout, the header offset is what is left over */
    if (size >= 6) {
        fl_stem_raw_params rp;
        rp.dtype = data[0] % 8; /* 7 is invalid on purpose */
        rp.big_endian = data[1] & 1;
        rp.det_w = 1 + data[2] % 16;
        rp.det_h = 1 + data[3] % 16;
        rp.scan_x = 1 + data[4] % 8;
        rp.scan_y = 1 + data[5] % 8;
        static const size_t sb[] = {1, 2, 2, 4, 4, 4, 8, 1};
        uint64_t need = (uint64_t)rp.det_w * rp.det_h * rp.scan_x * rp.scan_y * sb[rp.dtype];
        rp.offset = size >= need ? size - need : 6; /* too short: a size mismatch to report */
        st = fl_stem4d_open_raw(ctx, path, &rp, &s);
        fuzz_check_message(ctx, st);
        if (st == FL_OK) {
            exercise(ctx, s, (data[1] & 2) ? 2 : 1);
            fl_stem4d_close(s);
        }
    }
    fl_ctx_free(ctx);
    return 0;
}
