/* io.h -- file formats: NumPy .npy, safetensors, and the IDX (MNIST) and
 * CIFAR-10 dataset files.
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
/* As octav_safetensors_read, but loads only the floating tensor `name`
 * (NULL: all of them); the whole header is still checked. Only the header
 * and that tensor's bytes are read, so one tensor of a large file costs what
 * the tensor costs. A file without a floating tensor of that name gives
 * OCTAV_OK with ntensors 0. */
octav_status octav_safetensors_read_named(const char *path, const char *name, octav_safetensors *out);
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

/* ---- Datasets: IDX (MNIST) and CIFAR-10 binary ----------------------------
 * Readers for the image classification sets the training engine uses. Every
 * reader validates the whole file (magic, type, dimensions, exact byte
 * counts, label ranges) and returns OCTAV_EFORMAT with a message naming the
 * file for a corrupt, truncated or overlong one; a file that does not exist
 * gives OCTAV_ENOTFOUND naming the path. Images come out as float32 NCHW in
 * [0, 1] (byte / 255), labels as int32.
 *
 *   octav_dataset ds;
 *   if (octav_dataset_load_mnist_dir("/usr/share/datasets/fashion-mnist", 0, &ds) == OCTAV_OK) {
 *       ... ds.images[((i * ds.c + ch) * ds.h + y) * ds.w + x], ds.labels[i],
 *           for i < ds.n; ds.nclasses ...
 *       octav_dataset_free(&ds);
 *   }
 */

/* An IDX file (the MNIST container): big-endian header "00 00 TT NN", NN
 * big-endian int32 sizes, then the data in C order. Only type TT = 0x08
 * (unsigned byte) is loaded, so data holds dim[0] * ... * dim[ndim-1] bytes. */
typedef struct {
    int ndim;          /* 1..4 */
    int64_t dim[4];
    uint8_t *data;     /* owned */
} octav_idx;

/* Reads an IDX file, plain or gzip-compressed (recognised by its first two
 * bytes 1f 8b; concatenated gzip members are read as one stream).
 * OCTAV_EFORMAT: bad magic, 0 dimensions, a dimension >= 2^31, a size that
 * overflows, data shorter or longer than the header says (the message names
 * the file and both byte counts), a corrupt or cut gzip stream, bytes after
 * it. OCTAV_EUNSUPPORTED: any type code but 0x08 (the message names the
 * code: 0x09 signed byte, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
 * or one IDX does not define) and more than 4 dimensions. On failure *out is
 * zeroed. */
octav_status octav_idx_read(const char *path, octav_idx *out);
/* The same from memory (the bytes of a plain or gzip-compressed file). */
octav_status octav_idx_read_mem(const void *buf, size_t len, octav_idx *out);
void octav_idx_free(octav_idx *idx);  /* frees data, zeroes idx */

typedef struct {
    int64_t n, c, h, w;  /* images is n x c x h x w                            */
    float *images;       /* owned; NCHW, values in [0, 1]                      */
    int32_t *labels;     /* owned; n labels in [0, nclasses)                   */
    int nclasses;        /* CIFAR-10: 10; IDX: the largest label + 1           */
} octav_dataset;

void octav_dataset_free(octav_dataset *ds);  /* frees images and labels, zeroes ds */

/* Images from an IDX file of 3 dimensions (N, H, W) as (N, 1, H, W), labels
 * from one of 1 dimension (N) whose bytes are the labels 0..255. Either file
 * may be gzip-compressed. OCTAV_EFORMAT if the dimensions are not so or the
 * two counts differ (the message names both files and both counts);
 * OCTAV_EEMPTY if there are no images or they have no pixels. */
octav_status octav_dataset_load_idx(const char *images_path, const char *labels_path,
                                    octav_dataset *out);

/* MNIST-layout directory: train-images-idx3-ubyte and train-labels-idx1-ubyte
 * (train != 0) or t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte
 * (train == 0), each plain or with ".gz" (the plain file is preferred when
 * both exist). OCTAV_ENOTFOUND naming the path if neither form exists. */
octav_status octav_dataset_load_mnist_dir(const char *dir, int train, octav_dataset *out);

/* CIFAR-10 binary batches ("data_batch_1.bin" ... "test_batch.bin"):
 * records of 1 label byte (0..9) and 3072 pixel bytes (3 x 32 x 32: the red
 * plane, then green, then blue, each row-major), concatenated in the order
 * of files[0 .. nfiles). Output (N, 3, 32, 32), nclasses 10.
 * OCTAV_EFORMAT if a file's length is not a multiple of 3073 (the message
 * names the file and its length) or a label is >= 10; OCTAV_EEMPTY if the
 * files hold no records; OCTAV_EINVAL for nfiles < 1 or a NULL name. */
octav_status octav_dataset_load_cifar10(const char *const *files, int nfiles,
                                        octav_dataset *out);

#ifdef __cplusplus
}
#endif
#endif
