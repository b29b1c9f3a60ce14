/* octav.h -- common definitions of liboctav: status codes, error messages,
 * threading and version.
 *
 * Every fallible liboctav call returns an octav_status. On failure a
 * human-readable message describing the cause is kept per thread and can be
 * read with octav_last_error() until the next failing call on that thread.
 * The library never prints and never exits.
 *
 *   octav_status st = octav_npy_read("w.npy", &t);
 *   if (st != OCTAV_OK) fprintf(stderr, "octav: %s\n", octav_last_error());
 */
#ifndef OCTAV_OCTAV_H
#define OCTAV_OCTAV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define OCTAV_VERSION_MAJOR 0
#define OCTAV_VERSION_MINOR 1
#define OCTAV_VERSION_PATCH 0
#define OCTAV_VERSION_STRING "0.1.0"

typedef enum {
    OCTAV_OK = 0,
    OCTAV_EINVAL,       /* an argument is out of range or inconsistent      */
    OCTAV_ENOMEM,       /* an allocation failed                             */
    OCTAV_EIO,          /* the operating system refused a read or write     */
    OCTAV_EFORMAT,      /* a file is corrupt, truncated or not of its kind  */
    OCTAV_EUNSUPPORTED, /* valid input that octav does not handle (dtype..) */
    OCTAV_ENONFINITE,   /* a NaN or Inf was found in the data               */
    OCTAV_EEMPTY,       /* an empty tensor or group where data is required  */
    OCTAV_ENOTFOUND     /* a named item (tensor in a file) does not exist   */
} octav_status;

/* Short fixed name of a status ("invalid argument", ...). */
const char *octav_status_str(octav_status st);

/* Message of the last failure on the calling thread ("" if none). */
const char *octav_last_error(void);

/* Used by the library (and usable by callers) to set the message; returns st. */
octav_status octav_set_error(octav_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void octav_clear_error(void);

/* Threads used by liboctav's OpenMP loops, BLIS and oneDNN (0 = OpenMP default;
 * n > 0 also sets the OpenMP default team size of the process). Returns the
 * number that will be used. The quantization functions (quant.h) give the
 * same bits for any thread count; training (BLIS GEMM, oneDNN convolution)
 * is reproducible for a given thread count only. */
int octav_set_threads(int n);
int octav_get_threads(void);

/* Allocation hook so that tests can inject failures. NULL restores malloc. */
typedef void *(*octav_alloc_fn)(size_t size, void *user);
typedef void (*octav_free_fn)(void *ptr, void *user);
void octav_set_allocator(octav_alloc_fn alloc, octav_free_fn release, void *user);
void *octav_malloc(size_t size);
void *octav_calloc(size_t n, size_t size);
void octav_free(void *p);

/* Dimensions of a dense row-major (C-order) float tensor. */
#define OCTAV_MAX_DIMS 8
typedef struct {
    int ndim;                       /* 0 (scalar) .. OCTAV_MAX_DIMS */
    int64_t dim[OCTAV_MAX_DIMS];
} octav_shape;

/* Number of elements (1 for ndim == 0); -1 on overflow or negative dims. */
int64_t octav_shape_numel(const octav_shape *s);

#ifdef __cplusplus
}
#endif
#endif
