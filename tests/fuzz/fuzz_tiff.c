/* libFuzzer target: fl_tiff_read (libtiff + ImageJ hyperstack metadata, BigTIFF, contiguous
 * "images=N" layout, slice labels) on arbitrary bytes. */
#include "fuzz_common.h"

#include "io/tiff.h"

#include <math.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fl_ctx *ctx = fuzz_ctx();
    fl_image img;
    fl_status st = fl_tiff_read(ctx, fuzz_file(data, size), &img);
    fuzz_check_message(ctx, st);
    if (st == FL_OK) {
        /* touch every pixel and label so ASan sees any short allocation */
        int64_t planes = fl_image_planes(&img);
        size_t n = (size_t)img.width * (size_t)img.height * (size_t)planes;
        volatile float acc = 0;
        if (img.data)
            for (size_t i = 0; i < n; i++) acc += img.data[i];
        if (img.labels)
            for (int64_t p = 0; p < planes; p++)
                if (img.labels[p]) acc += (float)img.labels[p][0];
        (void)acc;
    }
    fl_image_free(&img);
    fl_ctx_free(ctx);
    return 0;
}
