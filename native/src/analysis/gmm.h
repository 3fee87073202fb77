/* k-means, Gaussian mixture (full covariances, EM) and nearest samples (ferrolens/analysis.h). */
#ifndef FL_ANALYSIS_GMM_H
#define FL_ANALYSIS_GMM_H

#include "fl_internal.h"
#include "ferrolens/analysis.h"

#endif
