/* idx.c -- IDX (the MNIST container) reader, plain or gzip-compressed, and
 * the MNIST-style dataset loader built on it.
 *
 * IDX: bytes 0 0, a type code, the number of dimensions, that many
 * big-endian int32 sizes, then the data in C order. A file starting with
 * 1f 8b is a gzip stream (members may be concatenated) and is inflated by
 * zlib from memory; zlib's allocations go through octav_malloc. The header
 * is read first and the data buffer sized from it (for gzip grown by
 * doubling up to that size, so a corrupt header cannot demand much more
 * memory than the data that is really there); the data must be exactly as
 * long as the header says.
 * Leaves out (OCTAV_EUNSUPPORTED) every type but unsigned byte and more than
 * 4 dimensions; also streaming, memory mapping and zlib-format (78 9c)
 * streams. */
#define _POSIX_C_SOURCE 200809L

#include "half.h"

#define ZLIB_CONST
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define IDX_MAX_DIMS 4

static const char *idx_type_name(int code) {
    switch (code) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    }
    return "not an IDX type";
}

/* ---- byte source: a plain buffer or a gzip stream inflated from one ----- */

typedef struct {
    const unsigned char *buf;
    size_t len, pos;     /* plain: next byte; gzip: bytes given to zlib   */
    int gz;
    int zinit;           /* inflateInit2 succeeded                         */
    int ended;           /* no more bytes will come                        */
    int cut;             /* gzip: the input ended inside a member          */
    z_stream zs;
} source;

static voidpf z_alloc(voidpf opaque, uInt items, uInt size) {
    (void)opaque;
    if (size && items > SIZE_MAX / size) return Z_NULL;
    return octav_malloc((size_t)items * size);
}

static void z_free(voidpf opaque, voidpf p) {
    (void)opaque;
    octav_free(p);
}

static octav_status source_init(source *s, const unsigned char *buf, size_t len) {
    memset(s, 0, sizeof *s);
    s->buf = buf;
    s->len = len;
    s->gz = len >= 2 && buf[0] == 0x1f && buf[1] == 0x8b;
    if (!s->gz) return OCTAV_OK;
    s->zs.zalloc = z_alloc;
    s->zs.zfree = z_free;
    s->zs.opaque = Z_NULL;
    s->zs.next_in = Z_NULL;
    s->zs.avail_in = 0;
    int r = inflateInit2(&s->zs, 16 + MAX_WBITS); /* gzip wrapper only */
    if (r == Z_MEM_ERROR) return octav_set_error(OCTAV_ENOMEM, "idx: out of memory starting zlib");
    if (r != Z_OK) return octav_set_error(OCTAV_EFORMAT, "idx: zlib cannot start (error %d)", r);
    s->zinit = 1;
    return OCTAV_OK;
}

static void source_end(source *s) {
    if (s->zinit) inflateEnd(&s->zs);
    s->zinit = 0;
}

/* Reads up to n bytes into dst; *got < n only at the end of the data. */
static octav_status source_read(source *s, unsigned char *dst, size_t n, size_t *got) {
    *got = 0;
    if (!s->gz) {
        size_t k = s->len - s->pos < n ? s->len - s->pos : n;
        if (k) memcpy(dst, s->buf + s->pos, k);
        s->pos += k;
        *got = k;
        if (s->pos == s->len) s->ended = 1;
        return OCTAV_OK;
    }
    while (*got < n && !s->ended) {
        /* The unconsumed input is zs.next_in[0 .. avail_in) followed directly
         * by buf[pos .. len); zlib takes at most UINT_MAX bytes at a time. */
        if (s->zs.avail_in == 0 && s->pos < s->len) {
            size_t k = s->len - s->pos;
            if (k > UINT_MAX) k = UINT_MAX;
            s->zs.next_in = s->buf + s->pos;
            s->zs.avail_in = (uInt)k;
            s->pos += k;
        }
        size_t want = n - *got;
        if (want > (size_t)1 << 30) want = (size_t)1 << 30;
        s->zs.next_out = dst + *got;
        s->zs.avail_out = (uInt)want;
        int r = inflate(&s->zs, Z_NO_FLUSH);
        *got += want - s->zs.avail_out;
        if (r == Z_OK) continue;
        if (r == Z_STREAM_END) {
            size_t rest = s->zs.avail_in + (s->len - s->pos);
            if (rest == 0) {
                s->ended = 1;
            } else if (rest >= 2 && s->zs.next_in[0] == 0x1f && s->zs.next_in[1] == 0x8b) {
                if (inflateReset(&s->zs) != Z_OK)
                    return octav_set_error(OCTAV_EFORMAT, "idx: zlib cannot restart");
            } else {
                return octav_set_error(OCTAV_EFORMAT,
                                       "idx: %zu bytes after the end of the gzip stream are not gzip data",
                                       rest);
            }
            continue;
        }
        if (r == Z_BUF_ERROR && s->zs.avail_in == 0 && s->pos == s->len) {
            s->ended = 1;
            s->cut = 1;
            break;
        }
        if (r == Z_MEM_ERROR) return octav_set_error(OCTAV_ENOMEM, "idx: out of memory in zlib");
        return octav_set_error(OCTAV_EFORMAT, "idx: corrupt gzip data (%s)",
                               s->zs.msg ? s->zs.msg : "zlib error");
    }
    return OCTAV_OK;
}

static const char *cut_note(const source *s) {
    return s->cut ? " (the gzip stream is cut short)" : "";
}

/* ---- IDX ------------------------------------------------------------------ */

static void dims_str(char *b, size_t cap, const octav_idx *x) {
    size_t n = 0;
    b[0] = '\0';
    for (int i = 0; i < x->ndim && n < cap; i++)
        n += (size_t)snprintf(b + n, cap - n, i ? "x%lld" : "%lld", (long long)x->dim[i]);
}

static octav_status size_error(const octav_idx *x, int hdr, uint64_t expected, uint64_t found,
                               const source *s) {
    char dims[96];
    dims_str(dims, sizeof dims, x);
    if (found < expected)
        return octav_set_error(OCTAV_EFORMAT,
                               "idx: truncated: the header (%s) asks for %llu data bytes after its %d "
                               "bytes, found %llu%s",
                               dims, (unsigned long long)expected, hdr, (unsigned long long)found,
                               cut_note(s));
    return octav_set_error(OCTAV_EFORMAT,
                           "idx: trailing garbage: the header (%s) asks for %llu data bytes after its "
                           "%d bytes, found %llu",
                           dims, (unsigned long long)expected, hdr, (unsigned long long)found);
}

static octav_status parse_idx(source *s, octav_idx *out) {
    unsigned char hdr[4 + 4 * IDX_MAX_DIMS];
    size_t got;
    octav_status st = source_read(s, hdr, 4, &got);
    if (st) return st;
    if (got < 4)
        return octav_set_error(OCTAV_EFORMAT, "idx: truncated: expected a 4-byte magic, found %zu bytes%s",
                               got, cut_note(s));
    if (hdr[0] != 0 || hdr[1] != 0)
        return octav_set_error(OCTAV_EFORMAT,
                               "not an IDX file (magic %02x %02x %02x %02x; the first two bytes must be 0)",
                               hdr[0], hdr[1], hdr[2], hdr[3]);
    if (hdr[2] != 0x08)
        return octav_set_error(OCTAV_EUNSUPPORTED,
                               "idx: type code 0x%02x (%s) is not supported; only 0x08 (unsigned byte) is",
                               hdr[2], idx_type_name(hdr[2]));
    int ndim = hdr[3];
    if (ndim == 0) return octav_set_error(OCTAV_EFORMAT, "idx: the header says 0 dimensions");
    if (ndim > IDX_MAX_DIMS)
        return octav_set_error(OCTAV_EUNSUPPORTED, "idx: %d dimensions; at most %d are supported", ndim,
                               IDX_MAX_DIMS);
    int hlen = 4 + 4 * ndim;
    st = source_read(s, hdr + 4, (size_t)(4 * ndim), &got);
    if (st) return st;
    if (got < (size_t)(4 * ndim))
        return octav_set_error(OCTAV_EFORMAT, "idx: truncated: expected a %d-byte header, found %zu bytes%s",
                               hlen, 4 + got, cut_note(s));

    octav_idx x;
    memset(&x, 0, sizeof x);
    x.ndim = ndim;
    uint64_t numel = 1, limit = SIZE_MAX < INT64_MAX ? SIZE_MAX : INT64_MAX;
    int overflow = 0;
    for (int i = 0; i < ndim; i++) {
        uint32_t d = octav_io_ld32(hdr + 4 + 4 * i, 1);
        if (d > INT32_MAX)
            return octav_set_error(OCTAV_EFORMAT, "idx: size %d is %lu, negative as an int32", i,
                                   (unsigned long)d);
        x.dim[i] = d;
        if (d && numel > limit / d) overflow = 1;
        else numel *= d;
    }
    if (overflow) {
        char dims[96];
        dims_str(dims, sizeof dims, &x);
        return octav_set_error(OCTAV_EFORMAT, "idx: the size %s overflows", dims);
    }
    if (!s->gz && numel != s->len - s->pos) return size_error(&x, hlen, numel, s->len - s->pos, s);

    /* gzip: start near the compressed size (MNIST inflates ~2-5x) and double. */
    size_t cap = (size_t)numel;
    if (s->gz) {
        size_t guess = s->len < SIZE_MAX / 8 ? s->len * 8 : SIZE_MAX;
        if (guess < 65536) guess = 65536;
        if (cap > guess) cap = guess;
    }
    unsigned char *data = octav_malloc(cap);
    if (!data) return octav_set_error(OCTAV_ENOMEM, "idx: out of memory for %zu bytes", cap);
    size_t have = 0;
    for (;;) {
        st = source_read(s, data + have, cap - have, &got);
        have += got;
        if (st || have < cap || cap == numel) break;
        size_t ncap = cap <= (size_t)numel / 2 ? cap * 2 : (size_t)numel;
        unsigned char *q = octav_malloc(ncap);
        if (!q) {
            octav_free(data);
            return octav_set_error(OCTAV_ENOMEM, "idx: out of memory for %zu bytes", ncap);
        }
        memcpy(q, data, have);
        octav_free(data);
        data = q;
        cap = ncap;
    }
    if (!st && have < numel) st = size_error(&x, hlen, numel, have, s);
    if (!st) {
        uint64_t extra = 0;
        unsigned char scratch[4096];
        while (!s->ended) {
            st = source_read(s, scratch, sizeof scratch, &got);
            if (st) break;
            extra += got;
        }
        if (!st && extra) st = size_error(&x, hlen, numel, numel + extra, s);
        if (!st && s->cut)
            st = octav_set_error(OCTAV_EFORMAT,
                                 "idx: the gzip stream is cut short after the data (no end or check bytes)");
    }
    if (st) {
        octav_free(data);
        return st;
    }
    x.data = data;
    *out = x;
    return OCTAV_OK;
}

octav_status octav_idx_read_mem(const void *buf, size_t len, octav_idx *out) {
    if (!out) return octav_set_error(OCTAV_EINVAL, "octav_idx_read_mem: NULL output");
    memset(out, 0, sizeof *out);
    if (!buf && len) return octav_set_error(OCTAV_EINVAL, "octav_idx_read_mem: NULL buffer");
    static const unsigned char empty[1] = {0};
    source s;
    octav_status st = source_init(&s, buf ? buf : empty, len);
    if (!st) st = parse_idx(&s, out);
    source_end(&s);
    return st;
}

/* OCTAV_ENOTFOUND for a path that does not exist; other failures are left to
 * the reader, which names them. */
static octav_status check_exists(const char *path) {
    struct stat sb;
    if (stat(path, &sb) != 0 && (errno == ENOENT || errno == ENOTDIR))
        return octav_set_error(OCTAV_ENOTFOUND, "'%s' does not exist", path);
    return OCTAV_OK;
}

octav_status octav_idx_read(const char *path, octav_idx *out) {
    if (!out) return octav_set_error(OCTAV_EINVAL, "octav_idx_read: NULL output");
    memset(out, 0, sizeof *out);
    if (!path) return octav_set_error(OCTAV_EINVAL, "octav_idx_read: NULL path");
    octav_status st = check_exists(path);
    if (st) return st;
    unsigned char *buf;
    size_t len;
    st = octav_read_file(path, &buf, &len);
    if (st) return st;
    st = octav_idx_read_mem(buf, len, out);
    octav_free(buf);
    return st ? octav_io_prefix_error(st, path) : OCTAV_OK;
}

void octav_idx_free(octav_idx *idx) {
    if (!idx) return;
    octav_free(idx->data);
    memset(idx, 0, sizeof *idx);
}

void octav_dataset_free(octav_dataset *ds) {
    if (!ds) return;
    octav_free(ds->images);
    octav_free(ds->labels);
    memset(ds, 0, sizeof *ds);
}

/* ---- MNIST-style datasets ------------------------------------------------- */

octav_status octav_dataset_load_idx(const char *images_path, const char *labels_path,
                                    octav_dataset *out) {
    if (!out) return octav_set_error(OCTAV_EINVAL, "octav_dataset_load_idx: NULL output");
    memset(out, 0, sizeof *out);
    if (!images_path || !labels_path)
        return octav_set_error(OCTAV_EINVAL, "octav_dataset_load_idx: NULL path");
    octav_idx lab, img;
    memset(&img, 0, sizeof img);
    octav_status st = octav_idx_read(labels_path, &lab);
    if (st) return st;
    if (lab.ndim != 1) {
        st = octav_set_error(OCTAV_EFORMAT, "%s: labels must have 1 dimension (N), found %d",
                             labels_path, lab.ndim);
        goto done;
    }
    st = octav_idx_read(images_path, &img);
    if (st) goto done;
    if (img.ndim != 3) {
        st = octav_set_error(OCTAV_EFORMAT, "%s: images must have 3 dimensions (N, H, W), found %d",
                             images_path, img.ndim);
        goto done;
    }
    if (img.dim[0] != lab.dim[0]) {
        st = octav_set_error(OCTAV_EFORMAT, "%s holds %lld images but %s holds %lld labels",
                             images_path, (long long)img.dim[0], labels_path, (long long)lab.dim[0]);
        goto done;
    }
    int64_t n = img.dim[0], h = img.dim[1], w = img.dim[2];
    if (n == 0 || h == 0 || w == 0) {
        st = octav_set_error(OCTAV_EEMPTY, "%s: no image data (%lld images of %lldx%lld)", images_path,
                             (long long)n, (long long)h, (long long)w);
        goto done;
    }
    size_t numel = (size_t)n * (size_t)h * (size_t)w; /* fits: the bytes were read */
    if (numel > SIZE_MAX / sizeof(float)) {
        st = octav_set_error(OCTAV_ENOMEM, "%s: too many pixels for memory", images_path);
        goto done;
    }
    out->images = octav_malloc(numel * sizeof(float));
    out->labels = octav_malloc((size_t)n * sizeof(int32_t));
    if (!out->images || !out->labels) {
        octav_dataset_free(out);
        st = octav_set_error(OCTAV_ENOMEM, "out of memory loading %s", images_path);
        goto done;
    }
    float lut[256];
    for (int i = 0; i < 256; i++) lut[i] = (float)i / 255.0f;
    for (size_t i = 0; i < numel; i++) out->images[i] = lut[img.data[i]];
    int maxl = -1;
    for (int64_t i = 0; i < n; i++) {
        out->labels[i] = lab.data[i];
        if (lab.data[i] > maxl) maxl = lab.data[i];
    }
    out->n = n;
    out->c = 1;
    out->h = h;
    out->w = w;
    out->nclasses = maxl + 1;
done:
    octav_idx_free(&img);
    octav_idx_free(&lab);
    return st;
}

/* dir/base, or dir/base.gz when only that exists, in *path (octav_malloc). */
static octav_status find_idx(const char *dir, const char *base, char **path) {
    *path = NULL;
    size_t dlen = strlen(dir), blen = strlen(base);
    int slash = dlen > 0 && dir[dlen - 1] != '/';
    size_t cap = dlen + (size_t)slash + blen + 4;
    char *p = octav_malloc(cap);
    if (!p) return octav_set_error(OCTAV_ENOMEM, "out of memory");
    snprintf(p, cap, "%s%s%s", dir, slash ? "/" : "", base);
    struct stat sb;
    if (stat(p, &sb) != 0) {
        size_t plain = strlen(p);
        memcpy(p + plain, ".gz", 4);
        if (stat(p, &sb) != 0) {
            p[plain] = '\0';
            octav_status st = octav_set_error(OCTAV_ENOTFOUND, "neither %s nor %s.gz exists", p, p);
            octav_free(p);
            return st;
        }
    }
    *path = p;
    return OCTAV_OK;
}

octav_status octav_dataset_load_mnist_dir(const char *dir, int train, octav_dataset *out) {
    if (!out) return octav_set_error(OCTAV_EINVAL, "octav_dataset_load_mnist_dir: NULL output");
    memset(out, 0, sizeof *out);
    if (!dir) return octav_set_error(OCTAV_EINVAL, "octav_dataset_load_mnist_dir: NULL directory");
    char *ipath = NULL, *lpath = NULL;
    octav_status st = find_idx(dir, train ? "train-images-idx3-ubyte" : "t10k-images-idx3-ubyte", &ipath);
    if (!st)
        st = find_idx(dir, train ? "train-labels-idx1-ubyte" : "t10k-labels-idx1-ubyte", &lpath);
    if (!st) st = octav_dataset_load_idx(ipath, lpath, out);
    octav_free(ipath);
    octav_free(lpath);
    return st;
}
