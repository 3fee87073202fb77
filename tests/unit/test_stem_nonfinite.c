/* Issue 6: a 4D-STEM pattern with a NaN or infinite pixel is refused by every reader of the data
 * (fl_stem4d_read, so COM, virtual detectors, means and the diffraction autoencoder), naming the scan
 * position and the detector pixel; the other patterns read as before and the data are not modified. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ferrolens/stem.h"
#include "io/stem4d.h"

#define W 8
#define H 6
#define SX 3
#define SY 2
#define N (SX * SY)

static float data[N * W * H];

static void fill(float bad)
{
    for (int i = 0; i < N * W * H; i++) data[i] = (float)(i % 13);
    /* pattern 5 = scan (2, 1); detector pixel (3, 4) */
    data[5 * W * H + 4 * W + 3] = bad;
}

static void expect_refused(float bad, const char *what)
{
    fill(bad);
    float copy[N * W * H];
    memcpy(copy, data, sizeof data);
    fl_ctx *ctx = fl_ctx_new();
    fl_stem4d *s = NULL;
    cr_assert_eq(fl_stem4d_open_memory(ctx, data, W, H, SX, SY, &s), FL_OK, "%s", fl_ctx_message(ctx));
    char want[200];
    snprintf(want, sizeof want, "hold %s in the pattern at scan position (2, 1), detector pixel (3, 4)", what);

    float out[N * W * H];
    cr_assert_eq(fl_stem4d_read(ctx, s, 0, N, 1, out), FL_EINVAL);
    cr_assert(strstr(fl_ctx_message(ctx), want), "%s", fl_ctx_message(ctx));
    /* binned: the same refusal (the sum would hide nothing: NaN/Inf stay non-finite) */
    cr_assert_eq(fl_stem4d_read(ctx, s, 0, N, 2, out), FL_EINVAL);
    cr_assert(strstr(fl_ctx_message(ctx), want), "%s", fl_ctx_message(ctx));
    /* patterns 0..4 are finite and read unchanged */
    cr_assert_eq(fl_stem4d_read(ctx, s, 0, N - 1, 1, out), FL_OK, "%s", fl_ctx_message(ctx));
    for (int i = 0; i < (N - 1) * W * H; i++) cr_assert_eq(out[i], (float)(i % 13), "pixel %d", i);

    /* a whole analysis stops with the same sentence and allocates nothing for the caller */
    fl_stem_com_params p;
    fl_stem_com_params_default(&p);
    fl_stem_com_result r;
    memset(&r, 0, sizeof r);
    cr_assert_eq(fl_stem_com(ctx, s, &p, &r), FL_EINVAL);
    cr_assert(strstr(fl_ctx_message(ctx), want), "%s", fl_ctx_message(ctx));
    cr_assert_null(r.com_x);
    float vdf[N];
    fl_stem_vdf_params v;
    memset(&v, 0, sizeof v);
    v.shape = FL_VDF_RECT;
    v.bin = 1;
    v.x = 0, v.y = 0, v.w = W, v.h = H;
    cr_assert_neq(fl_stem_vdf(ctx, s, &v, vdf), FL_OK);
    cr_assert(strstr(fl_ctx_message(ctx), want), "%s", fl_ctx_message(ctx));

    cr_assert(memcmp(copy, data, sizeof data) == 0, "the input was modified");
    fl_stem4d_close(s);
    fl_ctx_free(ctx);
}

Test(stem_nonfinite, nan_refused_with_position) { expect_refused(NAN, "NaN"); }
Test(stem_nonfinite, inf_refused_with_position) { expect_refused(INFINITY, "an infinite value"); }
Test(stem_nonfinite, minus_inf_refused_with_position) { expect_refused(-INFINITY, "an infinite value"); }

Test(stem_nonfinite, finite_data_read_as_before)
{
    fill(7.0f);
    fl_ctx *ctx = fl_ctx_new();
    fl_stem4d *s = NULL;
    cr_assert_eq(fl_stem4d_open_memory(ctx, data, W, H, SX, SY, &s), FL_OK);
    float out[N * W * H];
    cr_assert_eq(fl_stem4d_read(ctx, s, 0, N, 1, out), FL_OK, "%s", fl_ctx_message(ctx));
    cr_assert(memcmp(out, data, sizeof out) == 0);
    fl_stem4d_close(s);
    fl_ctx_free(ctx);
}
