#include "stats.h"

#include <math.h>

double fl_pearson(const float *a, int64_t sa, const float *b, int64_t sb, int64_t n)
{
    double ma = 0, mb = 0;
    for (int64_t i = 0; i < n; i++) ma += a[i * sa], mb += b[i * sb];
    ma /= (double)n, mb /= (double)n;
    double sab = 0, saa = 0, sbb = 0;
    for (int64_t i = 0; i < n; i++) {
        double da = a[i * sa] - ma, db = b[i * sb] - mb;
        sab += da * db, saa += da * da, sbb += db * db;
    }
    return (saa > 0 && sbb > 0) ? sab / sqrt(saa * sbb) : NAN;
}

double fl_r_squared(const float *pred, const float *truth, int64_t n)
{
    double m = 0, sse = 0, sst = 0;
    for (int64_t i = 0; i < n; i++) m += truth[i];
    m /= (double)n;
    for (int64_t i = 0; i < n; i++) {
        sse += ((double)pred[i] - truth[i]) * ((double)pred[i] - truth[i]);
        sst += ((double)truth[i] - m) * ((double)truth[i] - m);
    }
    return sst > 0 ? 1.0 - sse / sst : NAN;
}
