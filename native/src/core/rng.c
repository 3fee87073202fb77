/* Philox-4x32-10 counter-based RNG (Salmon et al. 2011): the value depends only on (seed, stream,
 * counter), so results are reproducible whatever the thread count or the order work is done in. */
#include "fl_internal.h"

#include <math.h>

static void philox4x32_10(uint32_t ctr[4], const uint32_t key_in[2])
{
    uint32_t k0 = key_in[0], k1 = key_in[1];
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)0xD2511F53u * ctr[0];
        uint64_t p1 = (uint64_t)0xCD9E8D57u * ctr[2];
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        uint32_t n0 = hi1 ^ ctr[1] ^ k0;
        uint32_t n2 = hi0 ^ ctr[3] ^ k1;
        ctr[0] = n0;
        ctr[1] = lo1;
        ctr[2] = n2;
        ctr[3] = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
}

/* The four 32-bit words of counter block `block` of (seed, stream). */
static void rng_block(uint64_t seed, uint64_t stream, uint64_t block, uint32_t out[4])
{
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    out[0] = (uint32_t)block;
    out[1] = (uint32_t)(block >> 32);
    out[2] = (uint32_t)stream;
    out[3] = (uint32_t)(stream >> 32);
    philox4x32_10(out, key);
}

void fl_rng_init(fl_rng *r, uint64_t seed, uint64_t stream)
{
    r->seed = seed;
    r->stream = stream;
    r->counter = 0;
}

static uint32_t word_at(uint64_t seed, uint64_t stream, uint64_t i)
{
    uint32_t w[4];
    rng_block(seed, stream, i >> 2, w);
    return w[i & 3];
}

uint32_t fl_rng_u32(fl_rng *r) { return word_at(r->seed, r->stream, r->counter++); }


float fl_rng_uniform(fl_rng *r) { return (float)(fl_rng_u32(r) >> 8) * (1.0f / 16777216.0f); }


float fl_rng_normal(fl_rng *r)
{
    /* Box-Muller in double; u1 in (0,1] so log is finite. */
    double u1 = ((double)(fl_rng_u32(r) >> 8) + 1.0) / 16777216.0;
    double u2 = (double)(fl_rng_u32(r) >> 8) / 16777216.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void fl_rng_shuffle(fl_rng *r, int64_t *idx, int64_t n)
{
    for (int64_t i = n - 1; i > 0; i--) {
        uint64_t x = ((uint64_t)fl_rng_u32(r) << 32) | fl_rng_u32(r);
        int64_t j = (int64_t)(x % (uint64_t)(i + 1));
        int64_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}
