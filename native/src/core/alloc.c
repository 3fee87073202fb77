/* Aligned allocation with overflow checks and a test-only fault injector (FL_FAULT_ALLOC=N makes the
 * N-th allocation of the process fail, so tests can prove every allocation failure is handled). */
#include "fl_internal.h"

#include <stdlib.h>
#include <string.h>

static atomic_long fault_countdown = -2; /* -2: not yet read from the environment, -1: off */

static bool fault_injected(void)
{
    long c = atomic_load(&fault_countdown);
    if (c == -2) {
        const char *e = getenv("FL_FAULT_ALLOC");
        long v = e ? strtol(e, NULL, 10) : -1;
        long expected = -2;
        atomic_compare_exchange_strong(&fault_countdown, &expected, v > 0 ? v : -1);
        c = atomic_load(&fault_countdown);
    }
    if (c < 0) return false;
    long now = atomic_fetch_sub(&fault_countdown, 1);
    return now == 1;
}

bool fl_mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a) return false;
    *out = a * b;
    return true;
}

void *fl_alloc(size_t bytes)
{
    if (bytes == 0) bytes = 1;
    if (bytes > SIZE_MAX - 64) return NULL;
    if (fault_injected()) return NULL;
    size_t rounded = (bytes + 63) & ~(size_t)63;
    return aligned_alloc(64, rounded);
}

void *fl_calloc(size_t count, size_t size)
{
    size_t bytes;
    if (!fl_mul_size(count, size, &bytes)) return NULL;
    void *p = fl_alloc(bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

void fl_free(void *p) { free(p); }
