/* Writers for tiny Keras-style HDF5 files, shared by tests/unit/test_keras.c and tests/fuzz/gen_seeds.c.
 * Header-only (static functions, plain libhdf5); each returns 0 on success and -1 when libhdf5 refused
 * a step, so the caller decides how to fail (cr_assert in a test, exit in the seed generator). */
#ifndef FL_KERAS_H5_WRITER_H
#define FL_KERAS_H5_WRITER_H

#if __has_include(<hdf5.h>)
#include <hdf5.h>
#else
#include <hdf5/serial/hdf5.h> /* Debian's serial headers (unit_tests gets no HDF5 include dir) */
#endif
#include <stdlib.h>
#include <string.h>

/* A Keras-style string list attribute: fixed-length, NULLPAD, STRSIZE = longest name (so the longest
 * has no NUL, as in Keras files); n == 0 writes an empty float64 array like Keras does for layers
 * without weights. */
static int h5w_put_names(hid_t obj, const char *attr, const char *const *names, int n)
{
    hsize_t dim = (hsize_t)n;
    hid_t sp = H5Screate_simple(1, &dim, NULL);
    if (n == 0) {
        hid_t a = H5Acreate2(obj, attr, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
        if (a >= 0) H5Aclose(a);
        H5Sclose(sp);
        return a >= 0 ? 0 : -1;
    }
    size_t w = 1;
    for (int i = 0; i < n; i++) w = strlen(names[i]) > w ? strlen(names[i]) : w;
    char *buf = calloc((size_t)n, w);
    for (int i = 0; i < n; i++) memcpy(buf + (size_t)i * w, names[i], strlen(names[i]));
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, w);
    H5Tset_strpad(t, H5T_STR_NULLPAD);
    hid_t a = H5Acreate2(obj, attr, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    int ok = a >= 0 && H5Awrite(a, t, buf) >= 0;
    if (a >= 0) H5Aclose(a);
    H5Tclose(t);
    H5Sclose(sp);
    free(buf);
    return ok ? 0 : -1;
}

/* Dataset `name` under g (intermediate groups created), file type ftype, shape dims[0..rank), values
 * base + 0.01 i; compact != 0 stores it with the compact layout. */
static int h5w_put_data(hid_t g, const char *name, int rank, const hsize_t *dims, float base, hid_t ftype,
                        int compact)
{
    hsize_t n = 1;
    for (int i = 0; i < rank; i++) n *= dims[i];
    float *v = malloc(n * sizeof *v);
    for (hsize_t i = 0; i < n; i++) v[i] = base + 0.01f * (float)i;
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (compact) H5Pset_layout(dcpl, H5D_COMPACT);
    hid_t d = H5Dcreate2(g, name, ftype, sp, lcpl, dcpl, H5P_DEFAULT);
    int ok = d >= 0 && H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0;
    if (d >= 0) H5Dclose(d);
    H5Pclose(dcpl);
    H5Pclose(lcpl);
    H5Sclose(sp);
    free(v);
    return ok ? 0 : -1;
}

#endif
