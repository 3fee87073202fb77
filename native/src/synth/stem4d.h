/* Synthetic 4D-STEM data set of ferroelectric stripe domains (`ferrolens synth stem4d`).
 *
 * A toy model in the spirit of the 4D-STEM studies of charged domain walls (Ludacka et al. 2024):
 * polarisation-dependent intensity asymmetry of a systematic row of Bragg discs (Friedel's law broken
 * by dynamical scattering in a non-centrosymmetric crystal), so that the polar domains show up in the
 * centre of mass (COM) of the patterns and in the 004 vs 00-4 dark-field images.
 *
 * Scan (scan_x x scan_y positions, pixel centres at integer sx, sy):
 *   - polarisation P = +1 (pointing +ky / "down" the scan) or -1, in horizontal stripe domains stacked
 *     vertically; wall k runs along x at y_k(x) = y0 + k * period + A sin(2 pi x / scan_x + phi),
 *     y0 = U(0, period), phi = U(0, 2 pi), A = meander (1.0 scan px). P flips at every wall; the sign
 *     of the domain at the top is random (seeded);
 *   - crossing a wall downwards, +P above / -P below (both pointing at the wall) is head-to-head (HH),
 *     -P above / +P below is tail-to-tail (TT): the two kinds alternate;
 *   - d = vertical distance |y - y_k(x)| to the nearest wall (close to the perpendicular distance for
 *     the gentle meander); truth wall mask: d <= 1;
 *   - thickness t(x) = thick_min + (thick_max - thick_min) x / (scan_x - 1) (0.6 .. 1.4).
 *
 * Detector (det x det pixels, centre c = (det - 1) / 2 on both axes, kx = column, ky = row):
 *   - a row of Gaussian discs (sigma = disc_sigma, default 0.05 det) along ky at (c, c + n g + s),
 *     n = -2..2, g = spacing (default 0.19 det): 00-8, 00-4, 000, 004, 008 (n = 1 is "004");
 *   - amplitudes A_0 = 1, A_1 = 0.35, A_2 = 0.12, and for n != 0
 *       I(+n) = A_n (1 + a Pe),  I(-n) = A_n (1 - a Pe),  a = (ratio - 1) / (ratio + 1),
 *     so I(004) / I(00-4) = ratio (1.6) in a +P domain and 1 / ratio in a -P domain;
 *   - Pe = P min(d / 1 px, 1): the polarisation fades linearly to 0 (symmetric pattern) at the wall;
 *   - disc shift s = wall_shift (0.5 det px) (1 - min(d, 1)) along +ky at HH walls, -ky at TT walls
 *     (the deflection by the bound-charge field, toy sign convention);
 *   - diffuse background b(k) = background exp(-|k - c|^2 / (2 (det / 4)^2)) (background 0.05);
 *   - expected counts lambda(k) = dose t [ sum_n I_n G_n(k) + t b(k) ] (dose 200 = counts at the
 *     peak of the central disc for t = 1): the thickness scales the overall intensity, and the diffuse
 *     background once more;
 *   - counts ~ Poisson(lambda) (dose > 0; Knuth's method for lambda < 30, else round(lambda +
 *     sqrt(lambda) N(0,1)) clipped at 0); dose = 0 gives the noise-free intensities lambda with dose 1.
 *   COM: the +P / -P asymmetry moves the COM along +ky / -ky by ~ a (A_1 g + 2 A_2 g) / sum A
 *   (about 0.3 det px at the defaults), the wall shift by up to s.
 *
 * Randomness: counter-based RNG, geometry from stream 0, the noise of pattern p from stream 1 + p:
 * the result depends only on the parameters and the seed, never on the thread count.
 *
 * Outputs: data = det x det x scan_x slices x scan_y frames (32-bit float, pattern p = sx + scan_x sy
 * is plane p); truth = scan_x x scan_y x 4 slices "polarisation" (+1/-1), "wall" (1 where d <= 1),
 * "wall type" (+1 head-to-head, -1 tail-to-tail where wall = 1, else 0), "thickness" (t).
 */
#ifndef FL_SYNTH_STEM4D_H
#define FL_SYNTH_STEM4D_H

#include "fl_internal.h"
#include "io/tiff.h"

typedef struct fl_synth_stem4d_params {
    int64_t scan_x, scan_y;   /* 32 x 32 */
    int64_t det;              /* detector det x det, 32 */
    double period;            /* domain height in scan rows, 8 */
    double meander;           /* wall meander amplitude in scan px, 1 */
    double ratio;             /* I(004) / I(00-4) in a +P domain, 1.6 */
    double wall_shift;        /* disc shift on walls in detector px, 0.5 */
    double thick_min, thick_max; /* 0.6, 1.4 */
    double background;        /* diffuse background relative to the central disc peak, 0.05 */
    double dose;              /* counts at the central disc peak (t = 1); 0: no noise, 200 */
    double spacing;           /* disc spacing g in detector px; 0: 0.19 det */
    double disc_sigma;        /* Gaussian disc sigma in detector px; 0: 0.05 det */
    uint64_t seed;            /* 1 */
} fl_synth_stem4d_params;

void fl_synth_stem4d_params_default(fl_synth_stem4d_params *p);

/* data and truth are initialised here; on failure both are left empty. */
fl_status fl_synth_stem4d(fl_ctx *ctx, const fl_synth_stem4d_params *p, fl_image *data, fl_image *truth);

#endif
