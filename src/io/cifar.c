/* cifar.c -- CIFAR-10 binary batches ("data_batch_N.bin", "test_batch.bin").
 *
 * A batch is records of 3073 bytes: the label (0..9), then the 3 x 32 x 32
 * image as the red plane, the green plane and the blue plane, each
 * row-major -- already CHW, so record i becomes images[i] byte / 255 in
 * order. The files are first sized with stat() so that the output is
 * allocated once, then read one at a time (peak memory: the output plus one
 * file); a file whose length changes in between is an I/O error.
 * Leaves out CIFAR-100 (two label bytes), the Python pickle batches and
 * gzip-compressed batches. */
#define _POSIX_C_SOURCE 200809L

#include "half.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define CIFAR_SIDE 32
#define CIFAR_PIXELS (3 * CIFAR_SIDE * CIFAR_SIDE)
#define CIFAR_RECORD (1 + CIFAR_PIXELS)
#define CIFAR_CLASSES 10

static octav_status file_size(const char *path, uint64_t *size) {
    struct stat sb;
    if (stat(path, &sb) != 0) {
        int err = errno;
        if (err == ENOENT || err == ENOTDIR)
            return octav_set_error(OCTAV_ENOTFOUND, "'%s' does not exist", path);
        char msg[160];
        if (strerror_r(err, msg, sizeof msg) != 0) snprintf(msg, sizeof msg, "error %d", err);
        return octav_set_error(OCTAV_EIO, "cannot stat '%s': %s", path, msg);
    }
    if (!S_ISREG(sb.st_mode))
        return octav_set_error(OCTAV_EFORMAT, "%s: not a regular file", path);
    *size = (uint64_t)sb.st_size;
    return OCTAV_OK;
}

static octav_status length_error(const char *path, uint64_t len) {
    return octav_set_error(OCTAV_EFORMAT,
                           "%s: length %llu is not a multiple of the CIFAR-10 record size %d "
                           "(%llu whole records and %llu bytes over)",
                           path, (unsigned long long)len, CIFAR_RECORD,
                           (unsigned long long)(len / CIFAR_RECORD),
                           (unsigned long long)(len % CIFAR_RECORD));
}

octav_status octav_dataset_load_cifar10(const char *const *files, int nfiles, octav_dataset *out) {
    if (!out) return octav_set_error(OCTAV_EINVAL, "octav_dataset_load_cifar10: NULL output");
    memset(out, 0, sizeof *out);
    if (!files || nfiles < 1)
        return octav_set_error(OCTAV_EINVAL, "octav_dataset_load_cifar10: no files given");
    uint64_t total = 0;
    for (int f = 0; f < nfiles; f++) {
        if (!files[f])
            return octav_set_error(OCTAV_EINVAL, "octav_dataset_load_cifar10: file %d is NULL", f);
        uint64_t len = 0;
        octav_status st = file_size(files[f], &len);
        if (st) return st;
        if (len % CIFAR_RECORD) return length_error(files[f], len);
        total += len / CIFAR_RECORD;
    }
    if (total == 0)
        return octav_set_error(OCTAV_EEMPTY, "CIFAR-10: the %d file(s) hold no records (first: %s)",
                               nfiles, files[0]);
    if (total > INT64_MAX / CIFAR_PIXELS || total > SIZE_MAX / CIFAR_PIXELS / sizeof(float))
        return octav_set_error(OCTAV_ENOMEM, "CIFAR-10: %llu records do not fit in memory",
                               (unsigned long long)total);

    octav_dataset ds;
    memset(&ds, 0, sizeof ds);
    ds.images = octav_malloc((size_t)total * CIFAR_PIXELS * sizeof(float));
    ds.labels = octav_malloc((size_t)total * sizeof(int32_t));
    if (!ds.images || !ds.labels) {
        octav_dataset_free(&ds);
        return octav_set_error(OCTAV_ENOMEM, "CIFAR-10: out of memory for %llu images",
                               (unsigned long long)total);
    }
    float lut[256];
    for (int i = 0; i < 256; i++) lut[i] = (float)i / 255.0f;

    size_t rec = 0;
    for (int f = 0; f < nfiles; f++) {
        unsigned char *buf;
        size_t len;
        octav_status st = octav_read_file(files[f], &buf, &len);
        if (!st && (len % CIFAR_RECORD || rec + len / CIFAR_RECORD > total)) {
            st = octav_set_error(OCTAV_EIO, "%s: changed size while it was being read (now %zu bytes)",
                                 files[f], len);
            octav_free(buf);
        }
        if (st) {
            octav_dataset_free(&ds);
            return st;
        }
        for (size_t r = 0; r < len / CIFAR_RECORD; r++, rec++) {
            const unsigned char *p = buf + r * CIFAR_RECORD;
            if (p[0] >= CIFAR_CLASSES) {
                st = octav_set_error(OCTAV_EFORMAT, "%s: record %zu (byte offset %zu) has label %d, not 0..9",
                                     files[f], r, r * CIFAR_RECORD, p[0]);
                octav_free(buf);
                octav_dataset_free(&ds);
                return st;
            }
            ds.labels[rec] = p[0];
            float *img = ds.images + rec * CIFAR_PIXELS;
            for (int i = 0; i < CIFAR_PIXELS; i++) img[i] = lut[p[1 + i]];
        }
        octav_free(buf);
    }
    if (rec != total) {
        octav_dataset_free(&ds);
        return octav_set_error(OCTAV_EIO, "CIFAR-10: the files changed size while being read");
    }
    ds.n = (int64_t)total;
    ds.c = 3;
    ds.h = CIFAR_SIDE;
    ds.w = CIFAR_SIDE;
    ds.nclasses = CIFAR_CLASSES;
    *out = ds;
    return OCTAV_OK;
}
