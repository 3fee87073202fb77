/* Synthetic I(V)-spectroscopy grid at charged ferroelectric domain walls (`ferrolens synth iv-grid`).
 *
 * A toy model of the conductive-AFM I(V) grids of Holstad et al. 2020 ((Er,Zr)MnO3, (110) surface,
 * in-plane polarisation): a grid of curves whose spatial structure is known exactly, so that the
 * spectral autoencoder can be tested on "does one latent channel recover each contribution".
 *
 * Geometry (pixel centres at integer x, y; lengths in pixels):
 *   - polarisation is in-plane, P = +1 (pointing +x, "->") or P = -1 ("<-");
 *   - domains are meandering stripes separated by K walls running roughly along y. Wall k sits at
 *       x_k(y) = x0_k + A_k sin(2 pi y / lambda + phi_k) + xi_k(y),
 *     x0_k = s + k * period (s uniform in [0, period) so the first wall lies left of x = 0 or near it),
 *     A_k = meander_amplitude * U(0.7, 1.3), phi_k = U(0, 2 pi),
 *     xi_k(y) = Gaussian white noise smoothed along y with a Gaussian kernel of sigma 4 rows, rescaled
 *     to standard deviation `wiggle`. Walls never touch: x_{k+1}(y) >= x_k(y) + period / 4 (clamped).
 *   - a pixel is right of wall k when x > x_k(y); the domain sign flips at every wall. The sign of
 *     the leftmost domain is random (seeded). Crossing a wall from left to right:
 *       +P | -P  (-> <-)  head-to-head (HH): positive bound charge; in p-type ErMnO3 the holes are
 *                         depleted there: insulating wall, suppressed current;
 *       -P | +P  (<- ->)  tail-to-tail (TT): negative bound charge screened by accumulated holes:
 *                         conducting wall, strongly enhanced current.
 *     so TT and HH walls alternate across the image.
 *   - proximity maps m_tt(x,y) = exp(-d_tt^2 / (2 w^2)) and m_hh likewise, d = Euclidean distance
 *     from the pixel centre to the nearest TT (HH) wall polyline, w = wall_width (1.5 px).
 *
 * Curves. T points, V_j = -vmax + 2 vmax j / (T - 1). Shapes are defined on the reduced bias
 * u = V / vmax, so changing vmax relabels the axis without changing the curves:
 *     I_bulk(u) = exp(u / 0.25) - exp(-u / 0.32)                   asymmetric Schottky/diode-like
 *                                                                   (54.6 at u = 1, -22.8 at u = -1)
 *     R         = I_bulk(1) - I_bulk(-1)                            (~77.4; the curve range)
 *     D(u)      = tanh(u / 0.2)                                     domain contrast, inverts with sign(V)
 *     f_tt(u)   = [h(u - 0.15) - 0.6 h(-u - 0.15)] / h(0.85),       h(x) = 0.08 ln(1 + exp(x / 0.08))
 *                                                                   near-ohmic TT conduction with a low
 *                                                                   onset (|u| ~ 0.15), ~1 at u = 1
 *     S(u)      = |I_bulk(u)| / (0.1 R + |I_bulk(u)|)               HH wall: a depleted barrier in series
 *                                                                   limits the current to about 0.1 R, so
 *                                                                   the removed fraction S is small at low
 *                                                                   bias and large at high bias
 *   I(x,y,V) = g * [ I_loc + a_tt m_tt R f_tt - a_hh m_hh I_loc S ] + offset + noise * R * N(0,1),
 *   I_loc = I_bulk (1 + c_dom P D)  (the local domain current; the HH term I_hh = I_loc S removes a
 *   fraction a_hh m_hh S < 1 of it, so the current never flows against the bias)
 *   with per-pixel tip-contact gain g = exp(gain_jitter * N(0,1)) (lognormal), per-pixel offset
 *   offset_jitter * R * N(0,1), and independent Gaussian noise per point.
 *   Defaults: c_dom = 0.3, a_tt = 0.8, a_hh = 1.0, gain_jitter = 0.05, offset_jitter = 0.005,
 *   noise = 0.02. So +P conducts more than -P at V > 0 (|I| larger) and less at V < 0: the sign of the
 *   domain contrast inverts with the bias, as in Holstad et al. Fig. 3/5 (in signed current the
 *   difference 2 c_dom I_bulk D is >= 0 at both polarities; it is |I|, the conductance, that inverts);
 *   the TT wall adds up to ~0.8 R of current already at low bias; on an HH wall (a_hh = 1) the current
 *   is the series-limited I_loc * 0.1 R / (0.1 R + |I_bulk|): no difference at low bias (regime 1 of
 *   the paper), 88 % (V > 0) and 75 % (V < 0) less current than the bulk at |V| = vmax (regime 2).
 *   A saturating shape, not a gain, so it is separable from the tip-contact gain jitter: a linear
 *   read-out of the default stack recovers the three maps with held-out Pearson r 0.975 (domain),
 *   0.995 (TT), 0.971 (HH). Current in arbitrary units (read as pA).
 *
 * Randomness: counter-based RNG streams keyed by (seed, purpose, wall/pixel index): the result depends
 * only on the parameters, never on the thread count.
 */
#ifndef FL_SYNTH_IV_GRID_H
#define FL_SYNTH_IV_GRID_H

#include "fl_internal.h"
#include "io/tiff.h"

typedef struct fl_synth_iv_params {
    int64_t width, height;     /* pixels (64 x 64) */
    int32_t points;            /* T, points per curve (64), >= 8 */
    double vmax;               /* bias range [-vmax, vmax] in volts (5) */
    double noise;              /* additive Gaussian noise, fraction of the curve range R (0.02) */
    uint64_t seed;             /* (1) */
    double period;             /* wall spacing in pixels (16) */
    double meander_amplitude;  /* A in pixels (3) */
    double meander_wavelength; /* lambda in pixels (48) */
    double wiggle;             /* std of the smoothed random wall displacement, pixels (0.8) */
    double wall_width;         /* w of the proximity maps and of the wall currents, pixels (1.5) */
    double domain_contrast;    /* c_dom (0.3) */
    double tt_amplitude;       /* a_tt (0.8) */
    double hh_suppression;     /* a_hh (1.0) */
    double gain_jitter;        /* sigma of ln g (0.05) */
    double offset_jitter;      /* offset sigma, fraction of R (0.005) */
    double pixel_size;         /* spatial calibration in micrometres (0.05) */
} fl_synth_iv_params;

void fl_synth_iv_params_default(fl_synth_iv_params *p);

/* Ground-truth slices of truth_out. */
enum { FL_SYNTH_IV_TRUTH_DOMAIN = 0, FL_SYNTH_IV_TRUTH_TT = 1, FL_SYNTH_IV_TRUTH_HH = 2 };

/* curves_out: width x height x T slices (Z), slice k labelled with its bias ("-5.000 V"), spatial
 * calibration pixel_size um, pixel_depth = the bias step (ImageJ has one unit for x, y, z: the labels
 * carry the volts). truth_out: width x height x 3 slices "domain P", "tail-to-tail wall",
 * "head-to-head wall". Both are initialised here (any previous content is not freed); on failure
 * both are left empty (fl_image_init state). */
fl_status fl_synth_iv_grid(fl_ctx *ctx, const fl_synth_iv_params *p, fl_image *curves_out, fl_image *truth_out);

#endif
