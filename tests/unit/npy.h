/* Tiny NumPy .npy reader for the tests (golden comparisons): format v1/v2/v3 headers, dtype '<f4' or
 * '<f8' (little-endian), C order, 1 or 2 dimensions. Not part of the engine. */
#ifndef FL_TEST_NPY_H
#define FL_TEST_NPY_H

#include <stddef.h>
#include <stdint.h>

typedef struct npy_array {
    float *data;       /* malloc'd, numel values (float64 files are converted) */
    int ndim;          /* 1 or 2 */
    int64_t shape[2];  /* shape[1] = 1 for 1-D arrays */
    int64_t numel;
    int src_f64;       /* 1 if the file stored float64 */
} npy_array;

/* Returns 0 on success; -1 on failure with a sentence in err (if err != NULL). On failure `a` is
 * zeroed. Free with npy_free. */
int npy_read(const char *path, npy_array *a, char *err, size_t errcap);
void npy_free(npy_array *a);

#endif
