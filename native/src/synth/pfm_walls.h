/* Synthetic band-excitation PFM amplitude images of ferroelectric domain walls, with one-pixel-wide
 * wall masks (`ferrolens synth pfm-walls`): the toy data of the wall-segmentation family (issue 5).
 *
 * Coordinates: pixel centres at integers, image size x size (default 128), amplitudes in arbitrary
 * units with the domain amplitude A0 ~ 1. Every image i of a set is drawn from its own counter-based
 * RNG streams keyed by (seed, set, i, purpose), so image i does not depend on count or threads.
 *
 * Geometry (walls are analytic curves, sampled as polylines every 0.25 px):
 *  - "180 walls" (up/down c domains; kind 180, even images of a mixed set): 1-2 open walls crossing
 *    the image, y' = c + sum_{m=1..3} a_m sin(2 pi m s / Lb + phi_m) in a frame rotated by a random
 *    angle (c in +-0.3 size, Lb = U(1, 2) size, a_m = U(0, 0.05) size / m), and 1-3 closed bubble
 *    domains r(t) = r0 (1 + e2 cos(2t + p2) + e3 cos(3t + p3)), r0 = U(0.06, 0.18) size, e_m = U(0, 0.12),
 *    fully inside the image. Walls keep >= 8 px apart (placements that come closer are redrawn, at
 *    most 30 times, then dropped). PFM amplitude is |P|: A = A0 tanh(d / w), d = distance from the
 *    pixel centre to the nearest wall, w = U(0.5, 0.9) px: a dark line, ~0 on the wall, >= 0.6 A0 at
 *    1 px, over ~1-2 px.
 *  - "a/c stripes" (ferroelastic; kind ac, odd images): in the frame (u, v) rotated by theta = U(0, pi)
 *    about the centre, g = u + A sin(2 pi v / lambda + phi) - off; walls at g = k P and g = k P + fa P
 *    (period P = U(0.16, 0.28) size, a-domain fraction fa = U(0.3, 0.5), meander A = U(0, 0.03) size,
 *    lambda = U(0.4, 0.8) size). The c domains (mod(g, P) >= fa P) have amplitude A0, the a domains
 *    A_a = r A0 with r = U(0.35, 0.6); across a wall the level steps smoothly:
 *    A = mid + (level - mid) tanh(d / w_ac), mid = (A0 + A_a) / 2, w_ac = U(0.8, 1.5) px.
 *
 * Truth mask (one per image): grid-intersection digitisation of every wall curve: where the curve
 * crosses a pixel column x = k (a row y = k) the pixel of that column (row) nearest to the crossing is
 * marked, so every mask pixel lies within 0.5 px of the analytic curve; marks follow each other
 * 8-adjacently along the curve and the chain is thinned on the fly to one pixel wide (a pixel is
 * dropped when its predecessor and successor touch; closed walls across their seam too). Empty for
 * images with no walls. On clean 180-wall images >= 98 % of the mask pixels are amplitude minima
 * along x or y and every pixel darker than 0.2 A0 touches the mask (tests/unit/test_walls.c).
 *
 * Acquisition conditions, in-distribution (FL_PFM_IN; any override in the params >= 0 replaces the
 * draw): A0 = U(0.8, 1.2); blur: Gaussian sigma U(0.4, 1.0) px (edge pixels repeated); background tilt:
 * plane rising U(0, 0.3) A0 across the image width in a random direction; scan-line offsets: one
 * N(0, lines A0) offset per row (fast scan along x), lines = U(0, 0.06); 0-2 streaks (tip changes):
 * a run of 20-100 % of a row shifted by +-U(0.15, 0.3) A0; Gaussian noise sigma U(0.02, 0.08) A0.
 * FL_PFM_CLEAN: the same geometry and A0 = 1, nothing else.
 *
 * Out-of-distribution set (FL_PFM_OOD), image i is variant i mod 4:
 *   0 "blobs": no walls at all; granular topography crosstalk: a uniform domain modulated by 40
 *     Gaussian grains (radius U(1.5, 4) px, amplitude U(-0.5, 0.3) A0). Mask empty.
 *   1 "checkerboard": 180 domains in a checkerboard of cell U(6, 9) px (training walls are >= 8 px
 *     apart and never cross): dark lines on a square grid with 4-way junctions.
 *   2 "inverted": 180-wall geometry with inverted contrast: bright walls (A0) on a dark background
 *     (0.35 A0).
 *   3 "large noise": in-distribution geometry (180 walls for i mod 8 == 3, a/c stripes for 7) with
 *     Gaussian noise U(0.3, 0.5) A0 and scan-line offsets U(0.1, 0.2) A0.
 *   The other acquisition conditions are drawn as in-distribution.
 * Why these four (each is a shift a PFM user meets between the training scans and a new session):
 *   0 topography crosstalk on a region without walls (grains leak into the amplitude through the tip-surface
 *     contact): a false-positive control. There is no wall to be unsure about, so an ensemble that agrees on
 *     "no wall" is legitimately LESS uncertain here than on in-distribution walls (measured ~0.4-0.6x the
 *     in-distribution mean variance, in Ferrolens and in PyTorch alike). It stays in the set and pulls the
 *     set's ratio down; the per-variant ratios are reported beside it.
 *   1 another domain geometry and scale (a film with a finer, crossing pattern, or a smaller scan step): walls
 *     closer than the training minimum (8 px) with 4-way junctions never seen in training.
 *   2 contrast inversion (another channel or a sample whose walls respond more strongly than the domains).
 *   3 heavy noise (low drive amplitude or a fast scan): noise 4-25x the training level, scan-line offsets
 *     above the training range.
 * The wall ensemble's criterion (issue 5: mean uncertainty on "out-of-distribution images" >= 2x
 * in-distribution) is evaluated on this set as a whole, with the per-variant ratios reported
 * (tests/unit/test_reshednet.c prints them; bench/README.md "Family 4 uncertainty" has the figures, and
 * bench/torch_walls_ood.py the same measurement with an ensemble trained in PyTorch).
 */
#ifndef FL_SYNTH_PFM_WALLS_H
#define FL_SYNTH_PFM_WALLS_H

#include "fl_internal.h"
#include "ferrolens/walls.h"
#include "io/tiff.h"

/* images_out: size x size x count slices (Z), labelled with fl_synth_pfm_label; masks_out (may be
 * NULL): the same with 0/1 wall masks. Both are initialised here; on failure both are left empty. */
fl_status fl_synth_pfm_walls_stack(fl_ctx *ctx, const fl_synth_pfm_params *p, fl_image *images_out,
                                   fl_image *masks_out);

#endif
