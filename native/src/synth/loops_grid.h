/* Synthetic BEPS hysteresis-loop grid over a/c ferroelastic domain stripes (`ferrolens synth loops`).
 *
 * A toy model of the PFM switching-spectroscopy data of the im2spec/spec2im paper (Kalinin et al.,
 * PbTiO3/PZT films with a/c domains): a grid of piezoresponse loops whose shape depends on the local
 * domain structure, plus a separate PFM-amplitude-like STRUCTURE image of the same field of view, so
 * that a model which sees the local structure (im2spec) can predict the loop while a global mean loop
 * cannot. Every parameter and the exact descriptors of every noise-free loop are known.
 *
 * Geometry (pixel centres at integer x, y; lengths in pixels). Rotated coordinates about the image
 * centre (cx, cy) = ((W-1)/2, (H-1)/2), with the stripes running along the angle theta (degrees from
 * the +x axis towards +y, i.e. clockwise on screen since y points down):
 *     u =  (x - cx) cos theta + (y - cy) sin theta     (along the stripes)
 *     s = -(x - cx) sin theta + (y - cy) cos theta     (across the stripes)
 *   - the background is c-domain (out-of-plane polarisation); a-domain lamellae (in-plane) of width
 *     wa = a_fraction * period are centred on the meandering lines
 *       s = c_k + M_k(u),  c_k = s0 + k period,  M_k(u) = A_k sin(2 pi u / lambda + phi_k),
 *     s0 = U(0, period), A_k = meander_amplitude * U(0.7, 1.3), phi_k = U(0, 2 pi) (seeded per lamella);
 *     a pixel is a-domain when |s - c_k - M_k(u)| < wa / 2 for some k. Each lamella has two parallel
 *     a/c walls, s = c_k + M_k(u) -+ wa / 2. The meander amplitude is limited so walls never touch.
 *   - d = Euclidean distance from the pixel centre to the nearest a/c wall (curve, not pixel, distance:
 *     dense sampling + golden-section refinement, error < 1e-6 px);
 *   - omega = orientation of that wall: the angle of its normal pointing from the a side to the c side,
 *     measured from the +s axis (towards -u), in (-180, 180] degrees. The right wall of a lamella has
 *     omega = -tau, the left wall 180 - tau, tau = atan(M_k'(u*)) the local tilt of the wall against
 *     the stripe direction at the nearest wall point u*. So omega encodes both the tilt and which side
 *     of the lamella (a to the left or to the right of the wall) the wall is.
 *   - wall proximity m = exp(-d^2 / (2 l^2)), l = wall_width (2 px).
 *
 * Loops. BEPS triangle waveform of P points (P a multiple of 4): with phase f = j / P,
 *     u_j = 4 f (f <= 1/4),  2 - 4 f (1/4 < f <= 3/4),  4 f - 4 (f > 3/4),   V_j = vmax u_j,
 * i.e. 0 -> +vmax -> -vmax -> 0 (the closing 0 is the next period's first point); step 4 vmax / P.
 * Point j is on the forward branch when u_j > u_{j-1} (cyclically: u_{-1} = u_{P-1}), else reverse:
 *     r_f(u) = off + A [ rho tanh((u - u_plus) / sigma)  + (1 - rho) tanh(u / 0.3) ]
 *     r_r(u) = off + A [ rho tanh((u - u_minus) / sigma) + (1 - rho) tanh(u / 0.3) ]
 *     u_plus = imp + Vc, u_minus = imp - Vc           (reduced bias u = V / vmax: vmax only relabels)
 * (switching part with coercive half-width Vc, imprint imp, nucleation sharpness sigma, saturation
 * amplitude A, remanent fraction rho; a reversible field-induced part; vertical offset off), plus
 * Gaussian noise `noise` * N(0,1) per point. The six parameters blend smoothly from the domain values
 * to the wall values:  p = (1 - m) p_domain + m p_wall(omega):
 *                 Vc     imp                         A                  sigma   rho    off
 *     c-domain   0.40   +0.04                       1.00                0.06   0.90   0.00
 *     a-domain   0.55   -0.06                       0.40                0.10   0.75   0.05
 *     a/c wall   0.22   0.10 cos w + 0.45 sin w     0.65 + 0.15 cos w   0.15   0.60  -0.05 + 0.08 cos w
 * (w = omega): walls are nucleation sites (lower coercive bias, broader, less remanent switching) and
 * their imprint and amplitude depend on the wall orientation and on which side the a-domain lies.
 *
 * Structure image (one slice, PFM-amplitude-like): b (1 - 0.6 exp(-d^2 / (2 * 0.8^2))) +
 * structure_noise N(0,1), b = 1 in c-domains and 0.45 in a-domains (dark wall lines).
 *
 * Truth image slices: "distance to wall (px)" d, "wall orientation (deg)" omega, "domain (1 = c, 0 = a)",
 * then the FL_LOOP_NDESC true descriptors of the noise-free continuous loop (labels of
 * fl_loop_desc_label, definitions in ferrolens/loops.h): V+, V- = vmax * root of r_f, r_r (bisection);
 * imprint, width from them; area = vmax * integral_{-1}^{1} (r_r - r_f) du (closed form); nucleation
 * biases = argmax of r_f'' on u < u(V+) and of -r_r'' on u > u(V-) (analytic derivatives on a grid of
 * 401 points, refined by golden-section search); R+ = r_f(0), R- = r_r(0); saturation and offset
 * from the mean of both branches over the top and bottom 10 % of the bias range (u in [0.8, 1] and
 * [-1, -0.8]). The descriptors measured
 * on the sampled noise-free loops agree with these within the sampling error (tests/unit/test_loops.c).
 *
 * Randomness: counter-based RNG streams keyed by (seed, purpose, lamella/pixel index): the result
 * depends only on the parameters, never on the thread count.
 */
#ifndef FL_SYNTH_LOOPS_GRID_H
#define FL_SYNTH_LOOPS_GRID_H

#include "fl_internal.h"
#include "io/tiff.h"

typedef struct fl_synth_loops_params {
    int64_t width, height;     /* pixels (64 x 64) */
    int32_t points;            /* P, points per loop (64); a multiple of 4, >= 8 */
    double vmax;               /* bias amplitude in volts (5) */
    double noise;              /* Gaussian noise on the response, c-domain saturation = 1 (0.03) */
    double period;             /* a/c stripe period in pixels (16) */
    double angle;              /* stripe direction in degrees from +x towards +y (30) */
    double a_fraction;         /* a-lamella width / period (0.4) */
    double meander_amplitude;  /* A in pixels (2) */
    double meander_wavelength; /* lambda in pixels (40) */
    double wall_width;         /* l of the wall proximity m, pixels (2) */
    double structure_noise;    /* noise of the structure image (0.05) */
    double pixel_size;         /* spatial calibration in micrometres (0.05) */
    uint64_t seed;             /* (1) */
} fl_synth_loops_params;

void fl_synth_loops_params_default(fl_synth_loops_params *p);

/* Truth slices before the descriptors. */
enum { FL_SYNTH_LOOPS_TRUTH_DISTANCE = 0, FL_SYNTH_LOOPS_TRUTH_ORIENTATION = 1, FL_SYNTH_LOOPS_TRUTH_DOMAIN = 2,
       FL_SYNTH_LOOPS_TRUTH_DESC0 = 3 };

/* loops_out: W x H x P slices labelled with the bias ("1.250 V"), structure_out: W x H x 1 slice
 * "PFM amplitude", truth_out: W x H x (3 + FL_LOOP_NDESC) slices. Spatial calibration pixel_size um.
 * All three are initialised here; on failure all are left empty (fl_image_init state). */
fl_status fl_synth_loops(fl_ctx *ctx, const fl_synth_loops_params *p, fl_image *loops_out, fl_image *structure_out,
                         fl_image *truth_out);

#endif
