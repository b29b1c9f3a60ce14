/* io.h -- tensor file formats: NumPy .npy and safetensors.
 *
 * Readers validate everything they read (magic, header syntax, dtype, shape,
 * byte counts, offsets) and return OCTAV_EFORMAT with a message naming the
 * problem for corrupt or truncated files; they never read out of bounds.
 * Floating data of any supported dtype (float16, bfloat16 (safetensors),
 * float32, float64; little or big endian for .npy; C or Fortran order) is
 * converted to float32 in C order. Writers write float32 little-endian and
 * are atomic: data goes to "PATH.tmp.XXXXXX" in the same directory, is
 * flushed, and renamed over PATH, so a failed write leaves PATH untouched.
 *
 *   octav_tensor t;
 *   if (octav_npy_read("w.npy", &t) == OCTAV_OK) {
 *       ... t.data[0 .. octav_shape_numel(&t.shape)) ...
 *       octav_tensor_free(&t);
 *   }
 */
#ifndef OCTAV_IO_H
#define OCTAV_IO_H

#include "octav/octav.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Element type a tensor had in its file (data is always float32 in memory). */
typedef enum {
    OCTAV_DTYPE_F32 = 0,
    OCTAV_DTYPE_F64,
    OCTAV_DTYPE_F16,
    OCTAV_DTYPE_BF16
} octav_dtype;

const char *octav_dtype_name(octav_dtype dt); /* "float32", ... */

typedef struct {
    char *name;         /* owned; NULL for .npy, the key for safetensors */
    octav_shape shape;
    octav_dtype dtype;  /* dtype in the file it came from                 */
    float *data;        /* owned; numel floats, C order                  */
} octav_tensor;

void octav_tensor_free(octav_tensor *t);  /* frees name and data, zeroes t */

/* ---- NumPy .npy (format versions 1.0, 2.0 and 3.0) ---------------------- */
octav_status octav_npy_read(const char *path, octav_tensor *out);
octav_status octav_npy_read_mem(const void *buf, size_t len, octav_tensor *out);
/* Writes float32 ('<f4'), C order, format 1.0 (2.0 if the header needs it). */
octav_status octav_npy_write(const char *path, const octav_shape *shape,
                             const float *data);

/* ---- safetensors ---------------------------------------------------------- */
/* Metadata ("__metadata__") string pairs. */
typedef struct {
    char *key;
    char *value;
} octav_kv;

typedef struct {
    octav_tensor *tensors;  /* floating tensors, in file (offset) order */
    int ntensors;
    int nskipped;           /* non-floating tensors (ints, bool) not loaded */
    octav_kv *meta;
    int nmeta;
} octav_safetensors;

/* Reads every floating tensor. Integer/bool tensors are validated, counted
 * in nskipped and not loaded. */
octav_status octav_safetensors_read(const char *path, octav_safetensors *out);
octav_status octav_safetensors_read_mem(const void *buf, size_t len,
                                        octav_safetensors *out);
void octav_safetensors_free(octav_safetensors *st);
/* Find a tensor by name; NULL if absent. */
const octav_tensor *octav_safetensors_find(const octav_safetensors *st,
                                           const char *name);

/* Writes tensors as float32 with optional metadata (nmeta may be 0).
 * Tensor names must be unique and non-empty. */
octav_status octav_safetensors_write(const char *path,
                                     const octav_tensor *tensors, int ntensors,
                                     const octav_kv *meta, int nmeta);

/* Reads a whole file into memory (helper shared by the readers). */
octav_status octav_read_file(const char *path, unsigned char **buf, size_t *len);
/* Atomically replaces path with the given bytes (temp file + fsync + rename). */
octav_status octav_write_file_atomic(const char *path, const void *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
