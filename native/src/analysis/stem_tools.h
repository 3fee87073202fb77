/* 4D-STEM reciprocal-space tools (COM, virtual detectors, mean patterns, NCC comparison): the engine
 * side of native/include/ferrolens/stem.h. Internal helpers shared with tests and the diffraction AE. */
#ifndef FL_ANALYSIS_STEM_TOOLS_H
#define FL_ANALYSIS_STEM_TOOLS_H

#include "fl_internal.h"
#include "ferrolens/stem.h"

/* Centre of mass of one binned pattern (bw x bh) in ORIGINAL detector pixels, with the threshold and
 * circular mask of fl_stem_com_params (bin taken from there). *cx, *cy are NaN when no intensity is
 * left. */
void fl_stem_pattern_com(const float *pattern, int64_t bw, int64_t bh, const fl_stem_com_params *p, double *cx,
                         double *cy);

/* FFTW planning is not thread-safe (execution is): every fftw(f)_plan_* and destroy_plan call in the
 * engine must hold one process-wide lock. This one is local to the STEM tools until core/ offers a
 * shared one (fl_fftw_lock) that every FFTW user takes. */
void fl_stem_fftw_lock(void);
void fl_stem_fftw_unlock(void);

#endif
