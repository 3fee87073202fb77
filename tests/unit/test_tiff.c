/* TIFF hyperstacks: round trips, sample formats, BigTIFF, hostile files, and ImageJ itself (ij.jar,
 * headless, through a tiny Java source program) reading our files and writing files we read. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <tiffio.h>
#include <unistd.h>

#include "io/tiff.h"

static char dir[256];

static void setup(void)
{
    strcpy(dir, "/tmp/fl_tiff_XXXXXX");
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

TestSuite(tiff, .init = setup, .fini = teardown);

static void pathf(char *out, const char *name) { snprintf(out, 300, "%s/%s", dir, name); }

/* A 2-channel, 3-slice, 2-frame calibrated, labelled stack. */
static void make_stack(fl_ctx *ctx, fl_image *img, int64_t w, int64_t h)
{
    fl_image_init(img);
    cr_assert_eq(fl_image_alloc(ctx, img, w, h, 2, 3, 2), FL_OK, "%s", fl_ctx_message(ctx));
    int64_t n = fl_image_planes(img);
    for (int64_t i = 0; i < w * h * n; i++) img->data[i] = (float)i * 0.5f - 3.f;
    img->data[5] = NAN;
    img->data[6] = -INFINITY;
    img->pixel_width = 0.123456789;
    img->pixel_height = 0.25;
    img->pixel_depth = 2.5;
    img->frame_interval = 1.5;
    strcpy(img->unit, "\xc2\xb5m"); /* µm */
    cr_assert_eq(fl_image_set_label(ctx, img, 1, "V = -1.25 V"), FL_OK);
    cr_assert_eq(fl_image_set_label(ctx, img, 4, "caf\xc3\xa9 \xf0\x9f\x98\x80 \"x\""), FL_OK);
    cr_assert_eq(fl_image_set_label(ctx, img, 5, ""), FL_OK);
}

static void expect_same(const fl_image *a, const fl_image *b)
{
    cr_assert_eq(b->width, a->width);
    cr_assert_eq(b->height, a->height);
    cr_assert_eq(b->channels, a->channels);
    cr_assert_eq(b->slices, a->slices);
    cr_assert_eq(b->frames, a->frames);
    int64_t n = a->width * a->height * fl_image_planes(a);
    cr_expect_eq(memcmp(a->data, b->data, (size_t)n * 4), 0, "pixel values (incl. NaN/Inf bits) differ");
    cr_expect_float_eq(b->pixel_width, a->pixel_width, 1e-6 * a->pixel_width);
    cr_expect_float_eq(b->pixel_height, a->pixel_height, 1e-6 * a->pixel_height);
    cr_expect_eq(b->pixel_depth, a->pixel_depth);
    cr_expect_eq(b->frame_interval, a->frame_interval);
    cr_expect_str_eq(b->unit, a->unit);
    cr_expect_eq(b->source_bits, 32);
    cr_assert_not_null(b->labels);
    for (int64_t i = 0; i < fl_image_planes(a); i++) {
        const char *la = a->labels ? a->labels[i] : NULL;
        if (la && !la[0]) la = NULL; /* empty labels are not stored */
        if (la) cr_expect_str_eq(b->labels[i], la, "label %lld", (long long)i);
        else cr_expect_null(b->labels[i], "label %lld", (long long)i);
    }
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

Test(tiff, hyperstack_round_trip)
{
    fl_ctx *ctx = fl_ctx_new();
    fl_image a, b;
    make_stack(ctx, &a, 7, 5);
    char p[300];
    pathf(p, "stack.tif");
    cr_assert_eq(fl_tiff_write(ctx, p, &a), FL_OK, "%s", fl_ctx_message(ctx));
    cr_expect_eq(count_files(), 1, "temporary file left behind");
    cr_assert_eq(fl_tiff_read(ctx, p, &b), FL_OK, "%s", fl_ctx_message(ctx));
    expect_same(&a, &b);
    /* the description is ImageJ's */
    TIFFSetWarningHandler(NULL);
    TIFF *t = TIFFOpen(p, "r");
    char *desc = NULL;
    cr_assert(TIFFGetField(t, TIFFTAG_IMAGEDESCRIPTION, &desc));
    cr_expect(strncmp(desc, "ImageJ=1.53t\nimages=12\nchannels=2\nslices=3\nframes=2\nhyperstack=true\n", 68) == 0,
              "%s", desc);
    cr_expect(strstr(desc, "unit=\\u00B5m\n") && strstr(desc, "spacing=2.5\n") && strstr(desc, "finterval=1.5\n") &&
                  strstr(desc, "loop=false\n") && strstr(desc, "min=-3\n") && strstr(desc, "max="),
              "%s", desc);
    cr_expect_eq(TIFFNumberOfDirectories(t), 12);
    TIFFClose(t);
    fl_image_free(&a);
    fl_image_free(&b);
    cr_expect_null(b.data);
    fl_ctx_free(ctx);
}

Test(tiff, single_plane_and_uncalibrated)
{
    fl_ctx *ctx = fl_ctx_new();
    fl_image a, b;
    fl_image_init(&a);
    cr_assert_eq(fl_image_alloc(ctx, &a, 3, 2, 1, 1, 1), FL_OK);
    for (int i = 0; i < 6; i++) a.data[i] = (float)i;
    char p[300];
    pathf(p, "one.tif");
    cr_assert_eq(fl_tiff_write(ctx, p, &a), FL_OK, "%s", fl_ctx_message(ctx));
    cr_assert_eq(fl_tiff_read(ctx, p, &b), FL_OK, "%s", fl_ctx_message(ctx));
    cr_expect_eq(b.slices * b.channels * b.frames, 1);
    cr_expect_eq(b.pixel_width, 1.0);
    cr_expect_str_eq(b.unit, "pixel");
    cr_expect_null(b.labels);
    cr_expect_eq(b.data[5], 5.f);
    fl_image_free(&a);
    fl_image_free(&b);
    fl_ctx_free(ctx);
}

Test(tiff, bigtiff_round_trip)
{
    fl_ctx *ctx = fl_ctx_new();
    fl_image a, b;
    make_stack(ctx, &a, 9, 4);
    char p[300];
    pathf(p, "big.tif");
    cr_assert_eq(fl_tiff_write_ex(ctx, p, &a, 1), FL_OK, "%s", fl_ctx_message(ctx));
    FILE *f = fopen(p, "rb");
    unsigned char h[4];
    cr_assert_eq(fread(h, 1, 4, f), 4);
    fclose(f);
    cr_expect(h[0] == 'M' && h[1] == 'M' && h[2] == 0 && h[3] == 43, "BigTIFF magic");
    cr_assert_eq(fl_tiff_read(ctx, p, &b), FL_OK, "%s", fl_ctx_message(ctx));
    expect_same(&a, &b);
    fl_image_free(&a);
    fl_image_free(&b);
    fl_ctx_free(ctx);
}

/* Write a grey stack with plain libtiff (what other programs produce). */
static void libtiff_write(const char *path, const char *mode, int bps, int fmt, int spp, int photo, int tiled,
                          int pages, int compression, const char *desc)
{
    TIFFSetWarningHandler(NULL); /* test code only: keep libtiff's warnings about ImageJ's tags quiet */
    TIFF *t = TIFFOpen(path, mode);
    cr_assert_not_null(t);
    const int w = 40, h = 33;
    size_t bpp = (size_t)bps / 8 * spp;
    unsigned char *buf = calloc((size_t)w * h, bpp);
    for (int p = 0; p < pages; p++) {
        TIFFSetField(t, TIFFTAG_IMAGEWIDTH, w);
        TIFFSetField(t, TIFFTAG_IMAGELENGTH, h);
        TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, bps);
        TIFFSetField(t, TIFFTAG_SAMPLEFORMAT, fmt);
        TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, spp);
        TIFFSetField(t, TIFFTAG_PHOTOMETRIC, photo);
        TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
        TIFFSetField(t, TIFFTAG_COMPRESSION, compression);
        if (desc && p == 0) TIFFSetField(t, TIFFTAG_IMAGEDESCRIPTION, desc);
        for (int i = 0; i < w * h * spp; i++) {
            double v = (i % 200) + p * 7;
            if (fmt == SAMPLEFORMAT_INT) v = -v;
            if (bps == 8 && fmt == SAMPLEFORMAT_UINT) buf[i] = (unsigned char)v;
            else if (bps == 16 && fmt == SAMPLEFORMAT_UINT) ((uint16_t *)buf)[i] = (uint16_t)(v * 300);
            else if (bps == 16) ((int16_t *)buf)[i] = (int16_t)(v * 100);
            else if (bps == 32) ((float *)buf)[i] = (float)v + 0.25f;
            else ((double *)buf)[i] = v + 0.125;
        }
        if (tiled) {
            TIFFSetField(t, TIFFTAG_TILEWIDTH, 16);
            TIFFSetField(t, TIFFTAG_TILELENGTH, 16);
            unsigned char *tile = calloc(16 * 16, bpp);
            for (int y = 0; y < h; y += 16)
                for (int x = 0; x < w; x += 16) {
                    memset(tile, 0, 16 * 16 * bpp);
                    for (int r = 0; r < 16 && y + r < h; r++)
                        for (int c = 0; c < 16 && x + c < w; c++)
                            memcpy(tile + (r * 16 + c) * bpp, buf + ((size_t)(y + r) * w + x + c) * bpp, bpp);
                    cr_assert(TIFFWriteTile(t, tile, x, y, 0, 0) >= 0);
                }
            free(tile);
        } else {
            TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, 5);
            for (int r = 0; r < h; r++) cr_assert(TIFFWriteScanline(t, buf + (size_t)r * w * bpp, r, 0) >= 0);
        }
        TIFFWriteDirectory(t);
    }
    free(buf);
    TIFFClose(t);
}

static double expected_value(int bps, int fmt, int i, int p)
{
    double v = (i % 200) + p * 7;
    if (fmt == SAMPLEFORMAT_INT) v = -v;
    if (bps == 8) return v;
    if (bps == 16) return fmt == SAMPLEFORMAT_UINT ? v * 300 : v * 100;
    if (bps == 32) return v + 0.25;
    return v + 0.125;
}

Test(tiff, reads_8_16_32_64_bit_strips_tiles_compression_bigtiff)
{
    struct {
        int bps, fmt, tiled, comp;
        const char *mode;
    } cases[] = {
        {8, SAMPLEFORMAT_UINT, 0, COMPRESSION_NONE, "w"},
        {16, SAMPLEFORMAT_UINT, 0, COMPRESSION_LZW, "w"},
        {16, SAMPLEFORMAT_INT, 1, COMPRESSION_ADOBE_DEFLATE, "w"},
        {32, SAMPLEFORMAT_IEEEFP, 1, COMPRESSION_NONE, "w8"},
        {64, SAMPLEFORMAT_IEEEFP, 0, COMPRESSION_PACKBITS, "w8"},
        {16, SAMPLEFORMAT_UINT, 0, COMPRESSION_NONE, "wb"}, /* big-endian */
    };
    fl_ctx *ctx = fl_ctx_new();
    char p[300];
    pathf(p, "lt.tif");
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        libtiff_write(p, cases[k].mode, cases[k].bps, cases[k].fmt, 1, PHOTOMETRIC_MINISBLACK, cases[k].tiled, 3,
                      cases[k].comp, NULL);
        fl_image img;
        cr_assert_eq(fl_tiff_read(ctx, p, &img), FL_OK, "case %zu: %s", k, fl_ctx_message(ctx));
        cr_expect_eq(img.width, 40);
        cr_expect_eq(img.height, 33);
        cr_expect_eq(img.channels, 1);
        cr_expect_eq(img.slices, 3, "no ImageJ description: pages are slices");
        cr_expect_eq(img.frames, 1);
        cr_expect_eq(img.source_bits, cases[k].bps > 32 ? 32 : cases[k].bps);
        int bad = 0;
        for (int pg = 0; pg < 3; pg++)
            for (int i = 0; i < 40 * 33; i++)
                if (img.data[pg * 40 * 33 + i] != (float)expected_value(cases[k].bps, cases[k].fmt, i, pg)) bad++;
        cr_expect_eq(bad, 0, "case %zu: %d wrong values", k, bad);
        fl_image_free(&img);
    }
    fl_ctx_free(ctx);
}

Test(tiff, imagej_description_dims_from_other_writers)
{
    fl_ctx *ctx = fl_ctx_new();
    char p[300];
    pathf(p, "ij.tif");
    libtiff_write(p, "w", 8, SAMPLEFORMAT_UINT, 1, PHOTOMETRIC_MINISBLACK, 0, 6, COMPRESSION_NONE,
                  "ImageJ=1.53t\nimages=6\nframes=6\nunit=micron\nfinterval=0.5\nloop=false\n");
    fl_image img;
    cr_assert_eq(fl_tiff_read(ctx, p, &img), FL_OK, "%s", fl_ctx_message(ctx));
    cr_expect_eq(img.frames, 6);
    cr_expect_eq(img.slices, 1);
    cr_expect_str_eq(img.unit, "micron");
    cr_expect_eq(img.frame_interval, 0.5);
    fl_image_free(&img);
    /* inconsistent description (2x2x2 != 6 pages): fall back to pages = slices */
    libtiff_write(p, "w", 8, SAMPLEFORMAT_UINT, 1, PHOTOMETRIC_MINISBLACK, 0, 6, COMPRESSION_NONE,
                  "ImageJ=1.53t\nimages=6\nchannels=2\nslices=2\nframes=2\n");
    cr_assert_eq(fl_tiff_read(ctx, p, &img), FL_OK, "%s", fl_ctx_message(ctx));
    cr_expect_eq(img.channels, 1);
    cr_expect_eq(img.slices, 6);
    fl_image_free(&img);
    /* more images announced than the file holds (not ImageJ's contiguous layout): truncated */
    libtiff_write(p, "w", 8, SAMPLEFORMAT_UINT, 1, PHOTOMETRIC_MINISBLACK, 0, 6, COMPRESSION_LZW,
                  "ImageJ=1.53t\nimages=8\nslices=8\n");
    cr_expect_eq(fl_tiff_read(ctx, p, &img), FL_EFORMAT);
    cr_expect_null(img.data);
    fl_ctx_free(ctx);
}

Test(tiff, rejects_rgb_and_palette)
{
    fl_ctx *ctx = fl_ctx_new();
    char p[300];
    pathf(p, "rgb.tif");
    libtiff_write(p, "w", 8, SAMPLEFORMAT_UINT, 3, PHOTOMETRIC_RGB, 0, 1, COMPRESSION_NONE, NULL);
    fl_image img;
    cr_expect_eq(fl_tiff_read(ctx, p, &img), FL_EUNSUPPORTED);
    cr_expect_eq(img.is_rgb, 1);
    cr_expect_null(img.data);
    cr_expect(strstr(fl_ctx_message(ctx), "RGB images are not supported") != NULL, "%s", fl_ctx_message(ctx));
    /* palette: one sample per pixel, but colour */
    TIFF *t = TIFFOpen(p, "w");
    uint16_t cmap[3][256] = {{0}};
    unsigned char row[4] = {0, 1, 2, 3};
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, 4);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, 1);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 8);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 1);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_PALETTE);
    TIFFSetField(t, TIFFTAG_COLORMAP, cmap[0], cmap[1], cmap[2]);
    TIFFWriteScanline(t, row, 0, 0);
    TIFFClose(t);
    cr_expect_eq(fl_tiff_read(ctx, p, &img), FL_EUNSUPPORTED);
    cr_expect_eq(img.is_rgb, 1);
    fl_ctx_free(ctx);
}

Test(tiff, rejects_pages_of_different_sizes)
{
    fl_ctx *ctx = fl_ctx_new();
    char p[300];
    pathf(p, "mixed.tif");
    TIFF *t = TIFFOpen(p, "w");
    float row[8] = {0};
    for (int pg = 0; pg < 2; pg++) {
        TIFFSetField(t, TIFFTAG_IMAGEWIDTH, pg ? 8 : 4);
        TIFFSetField(t, TIFFTAG_IMAGELENGTH, 2);
        TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 32);
        TIFFSetField(t, TIFFTAG_SAMPLEFORMAT, SAMPLEFORMAT_IEEEFP);
        TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 1);
        TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
        TIFFWriteScanline(t, row, 0, 0);
        TIFFWriteScanline(t, row, 1, 0);
        TIFFWriteDirectory(t);
    }
    TIFFClose(t);
    fl_image img;
    cr_expect_eq(fl_tiff_read(ctx, p, &img), FL_EUNSUPPORTED);
    cr_expect_null(img.data);
    fl_ctx_free(ctx);
}

static void write_bytes(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, n, f);
    fclose(f);
}

Test(tiff, rejects_truncated_garbage_and_non_tiff_files)
{
    fl_ctx *ctx = fl_ctx_new();
    fl_image a, img;
    make_stack(ctx, &a, 32, 32);
    char p[300];
    pathf(p, "t.tif");
    cr_assert_eq(fl_tiff_write(ctx, p, &a), FL_OK);
    struct stat sb;
    stat(p, &sb);
    /* cut inside the pixel data: the IFDs of later pages are gone too */
    long cuts[] = {(long)sb.st_size / 2, (long)sb.st_size / 3, 600, 100, 9, 4};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        cr_assert_eq(fl_tiff_write(ctx, p, &a), FL_OK);
        cr_assert_eq(truncate(p, cuts[i]), 0);
        fl_status st = fl_tiff_read(ctx, p, &img);
        cr_expect_eq(st, FL_EFORMAT, "cut at %ld: %d %s", cuts[i], st, fl_ctx_message(ctx));
        cr_expect_null(img.data);
    }
    /* a TIFF header pointing the first IFD far beyond the end */
    unsigned char bad_ifd[16] = {'I', 'I', 42, 0, 0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4, 5, 6, 7, 8};
    write_bytes(p, bad_ifd, sizeof bad_ifd);
    cr_expect_eq(fl_tiff_read(ctx, p, &img), FL_EFORMAT);
    /* random bytes after a valid magic */
    unsigned char junk[4096];
    junk[0] = 'M'; junk[1] = 'M'; junk[2] = 0; junk[3] = 42;
    for (size_t i = 4; i < sizeof junk; i++) junk[i] = (unsigned char)(i * 2654435761u >> 13);
    write_bytes(p, junk, sizeof junk);
    cr_expect_eq(fl_tiff_read(ctx, p, &img), FL_EFORMAT, "%s", fl_ctx_message(ctx));
    /* a PNG renamed .tif */
    unsigned char png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
    write_bytes(p, png, sizeof png);
    cr_expect_eq(fl_tiff_read(ctx, p, &img), FL_EFORMAT);
    cr_expect(strstr(fl_ctx_message(ctx), "PNG") != NULL, "%s", fl_ctx_message(ctx));
    /* a text file renamed .tif, and an empty file */
    write_bytes(p, "x,y\n1,2\n", 8);
    cr_expect_eq(fl_tiff_read(ctx, p, &img), FL_EFORMAT);
    write_bytes(p, "", 0);
    cr_expect_eq(fl_tiff_read(ctx, p, &img), FL_EFORMAT);
    pathf(p, "missing.tif");
    cr_expect_eq(fl_tiff_read(ctx, p, &img), FL_EIO);
    fl_image_free(&a);
    fl_ctx_free(ctx);
}

Test(tiff, budget_and_bad_arguments)
{
    fl_ctx *ctx = fl_ctx_new();
    fl_image a, img;
    make_stack(ctx, &a, 64, 64);
    char p[300];
    pathf(p, "b.tif");
    cr_assert_eq(fl_tiff_write(ctx, p, &a), FL_OK);
    fl_ctx_set_memory_budget(ctx, 64 * 64 * 4 * 6);
    cr_expect_eq(fl_tiff_read(ctx, p, &img), FL_ENOMEM);
    cr_expect_null(img.data);
    fl_ctx_set_memory_budget(ctx, 0);
    fl_image bad = a;
    bad.slices = 0;
    cr_expect_eq(fl_tiff_write(ctx, p, &bad), FL_EINVAL);
    bad = a;
    bad.data = NULL;
    cr_expect_eq(fl_tiff_write(ctx, p, &bad), FL_EINVAL);
    cr_expect_eq(fl_tiff_write(ctx, "/nonexistent-dir/x.tif", &a), FL_EIO);
    cr_expect_eq(fl_image_set_label(ctx, &a, 12, "x"), FL_EINVAL);
    cr_expect_eq(fl_image_alloc(ctx, &img, 1 << 30, 1 << 30, 1 << 20, 1, 1), FL_EINVAL);
    fl_image_free(&a);
    fl_ctx_free(ctx);
}

/* ---- ImageJ itself ---------------------------------------------------------------------------- */

#define IJ_JAR "/usr/share/java/ij.jar"

static const char *ij_tool_src =
    "import ij.*; import ij.process.*; import ij.measure.Calibration; import ij.io.FileSaver;\n"
    "public class IjTool {\n"
    "  public static void main(String[] a) {\n"
    "    if (a[0].equals(\"write\")) {\n"
    "      int w=6,h=4,c=2,z=3,t=2; ImageStack st=new ImageStack(w,h);\n"
    "      for (int p=0;p<c*z*t;p++){ FloatProcessor fp=new FloatProcessor(w,h);\n"
    "        for(int i=0;i<w*h;i++) fp.setf(i, p*100+i+0.5f);\n"
    "        st.addSlice(p==1?\"hello \\u00e9\":(p==4?\"five\":null), fp);}\n"
    "      ImagePlus imp=new ImagePlus(\"t\",st); imp.setDimensions(c,z,t); imp.setOpenAsHyperStack(true);\n"
    "      Calibration cal=imp.getCalibration(); cal.setUnit(\"\\u00B5m\"); cal.pixelWidth=0.5;\n"
    "      cal.pixelHeight=0.25; cal.pixelDepth=2; cal.frameInterval=1.5;\n"
    "      System.out.println(new FileSaver(imp).saveAsTiff(a[1]));\n"
    "    } else {\n"
    "      ImagePlus imp=IJ.openImage(a[1]); if (imp==null){System.out.println(\"null\");return;}\n"
    "      int[] d=imp.getDimensions(); Calibration cal=imp.getCalibration();\n"
    "      System.out.println(\"dims \"+d[0]+\" \"+d[1]+\" \"+d[2]+\" \"+d[3]+\" \"+d[4]+\" bits \"+imp.getBitDepth());\n"
    "      System.out.println(\"cal \"+cal.pixelWidth+\" \"+cal.pixelHeight+\" \"+cal.pixelDepth+\" \"+cal.frameInterval\n"
    "        +\" unit \"+cal.getUnit());\n"
    "      ImageStack st=imp.getStack(); int n=st.getWidth()*st.getHeight();\n"
    "      for(int i=1;i<=st.getSize();i++) System.out.println(\"plane \"+i+\" \"+st.getProcessor(i).getf(0)+\" \"\n"
    "        +st.getProcessor(i).getf(n-1)+\" label=\"+st.getSliceLabel(i));\n"
    "    }\n"
    "  }\n"
    "}\n";

/* Runs the Java tool; returns its stdout (malloc'd) or NULL when java/ij.jar are missing. */
static char *run_ij_tool(const char *mode, const char *tif)
{
    if (access(IJ_JAR, R_OK) != 0 || system("java -version >/dev/null 2>&1") != 0) return NULL;
    char src[300];
    pathf(src, "IjTool.java");
    FILE *f = fopen(src, "w");
    cr_assert_not_null(f);
    fputs(ij_tool_src, f);
    fclose(f);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "java -Djava.awt.headless=true -Dfile.encoding=UTF-8 -Dstdout.encoding=UTF-8 -cp %s %s %s %s 2>&1",
             IJ_JAR, src, mode, tif);
    FILE *pp = popen(cmd, "r");
    cr_assert_not_null(pp);
    size_t cap = 1 << 16, n = 0;
    char *out = calloc(cap, 1);
    size_t got;
    while ((got = fread(out + n, 1, cap - 1 - n, pp)) > 0) n += got;
    pclose(pp);
    unlink(src);
    return out;
}

Test(tiff, imagej_written_file_is_read, .timeout = 60)
{
    char p[300];
    pathf(p, "from_imagej.tif");
    char *out = run_ij_tool("write", p);
    if (!out) cr_skip_test("java or " IJ_JAR " not installed: ImageJ interoperability not tested");
    cr_assert(strncmp(out, "true", 4) == 0, "ImageJ could not save: %s", out);
    free(out);
    fl_ctx *ctx = fl_ctx_new();
    fl_image img;
    cr_assert_eq(fl_tiff_read(ctx, p, &img), FL_OK, "%s", fl_ctx_message(ctx));
    cr_expect_eq(img.width, 6);
    cr_expect_eq(img.height, 4);
    cr_expect_eq(img.channels, 2);
    cr_expect_eq(img.slices, 3);
    cr_expect_eq(img.frames, 2);
    cr_expect_float_eq(img.pixel_width, 0.5, 1e-7);
    cr_expect_float_eq(img.pixel_height, 0.25, 1e-7);
    cr_expect_eq(img.pixel_depth, 2.0);
    cr_expect_eq(img.frame_interval, 1.5);
    cr_expect_str_eq(img.unit, "\xc2\xb5m");
    cr_assert_not_null(img.labels);
    cr_expect_null(img.labels[0]);
    cr_expect_str_eq(img.labels[1], "hello \xc3\xa9");
    cr_expect_str_eq(img.labels[4], "five");
    cr_expect_null(img.labels[11]);
    for (int p2 = 0; p2 < 12; p2++) {
        cr_expect_eq(img.data[p2 * 24], p2 * 100 + 0.5f);
        cr_expect_eq(img.data[p2 * 24 + 23], p2 * 100 + 23.5f);
    }
    fl_image_free(&img);
    fl_ctx_free(ctx);
}

static void check_imagej_reads(int bigtiff)
{
    fl_ctx *ctx = fl_ctx_new();
    fl_image a;
    make_stack(ctx, &a, 7, 5);
    char p[300];
    pathf(p, "ours.tif");
    cr_assert_eq(fl_tiff_write_ex(ctx, p, &a, bigtiff), FL_OK, "%s", fl_ctx_message(ctx));
    char *out = run_ij_tool("read", p);
    if (!out) {
        fl_image_free(&a);
        fl_ctx_free(ctx);
        cr_skip_test("java or " IJ_JAR " not installed: ImageJ interoperability not tested");
    }
    cr_expect(strstr(out, "dims 7 5 2 3 2 bits 32\n") != NULL, "ImageJ says:\n%s", out);
    cr_expect(strstr(out, "cal 0.12345678") != NULL && strstr(out, " 0.25 2.5 1.5 unit \xc2\xb5m\n") != NULL,
              "ImageJ says:\n%s", out);
    cr_expect(strstr(out, "label=V = -1.25 V\n") != NULL, "ImageJ says:\n%s", out);
    cr_expect(strstr(out, "label=caf\xc3\xa9 \xf0\x9f\x98\x80 \"x\"\n") != NULL, "ImageJ says:\n%s", out);
    cr_expect(strstr(out, "plane 1 -3.0 14.0 label=null\n") != NULL, "ImageJ says:\n%s", out);
    /* last plane: first value (11*35)*0.5-3, last (12*35-1)*0.5-3: contiguous data read right */
    cr_expect(strstr(out, "plane 12 189.5 206.5 label=null\n") != NULL, "ImageJ says:\n%s", out);
    free(out);
    fl_image_free(&a);
    fl_ctx_free(ctx);
}

Test(tiff, imagej_reads_our_file, .timeout = 60) { check_imagej_reads(0); }

Test(tiff, imagej_single_ifd_layout_is_read)
{
    /* ImageJ's layout for stacks > 4 GiB: one IFD announcing images=N, planes contiguous. Our files
     * have the same layout with the later IFDs at the end, so cutting those off produces one. */
    fl_ctx *ctx = fl_ctx_new();
    fl_image a, b;
    make_stack(ctx, &a, 8, 8);
    char p[300];
    pathf(p, "single.tif");
    cr_assert_eq(fl_tiff_write(ctx, p, &a), FL_OK);
    TIFFSetWarningHandler(NULL);
    TIFF *t = TIFFOpen(p, "r");
    uint64_t data_end = TIFFGetStrileOffset(t, 0) + 8 * 8 * 4 * 12;
    TIFFClose(t);
    cr_assert_eq(truncate(p, (off_t)data_end), 0);
    cr_assert_eq(fl_tiff_read(ctx, p, &b), FL_OK, "%s", fl_ctx_message(ctx));
    expect_same(&a, &b);
    fl_image_free(&b);
    cr_assert_eq(truncate(p, (off_t)data_end - 1), 0);
    cr_expect_eq(fl_tiff_read(ctx, p, &b), FL_EFORMAT);
    fl_image_free(&a);
    fl_ctx_free(ctx);
}
