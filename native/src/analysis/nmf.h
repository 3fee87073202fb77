/* Non-negative matrix factorisation (ferrolens/analysis.h: fl_nmf). */
#ifndef FL_ANALYSIS_NMF_H
#define FL_ANALYSIS_NMF_H

#include "fl_internal.h"
#include "ferrolens/analysis.h"

/* sklearn's EPSILON (float64 machine epsilon): replaces zero denominators of the updates. */
#define FL_NMF_EPSILON 2.220446049250313e-16

#endif
