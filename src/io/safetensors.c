/* safetensors.c -- safetensors reader and writer.
 *
 * File: 8-byte little-endian header length N, N bytes of JSON (an object of
 * name -> {"dtype", "shape", "data_offsets": [begin, end]} plus an optional
 * "__metadata__" object of strings), then the data area that the offsets
 * index. The reader checks every entry (types, known dtype, non-negative
 * integer shape, begin <= end within the data area, end - begin equal to the
 * tensor's byte size, no two tensors overlapping, unique names) before it
 * loads anything. F32/F64/F16/BF16 tensors are loaded as float32 in offset
 * order; other known dtypes are counted in nskipped. Gaps between tensors
 * are tolerated. The JSON is parsed by cJSON, whose allocations do not go
 * through octav_malloc; cJSON running out of memory reads as a bad header.
 * A file is read in pieces: the header, then each loaded tensor's bytes
 * (pread), so loading one named tensor of a large file costs that tensor,
 * and memory holds the float32 copies only, not the raw file as well. A
 * file that is not a regular file (a pipe) is read whole first.
 * The writer emits F32 tensors contiguously in the given order, "__metadata__"
 * first, and pads the header with spaces to a multiple of 8 bytes.
 * Leaves out memory mapping and writing dtypes other than F32. */
#define _POSIX_C_SOURCE 200809L

#include "half.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define MAX_HEADER 100000000u /* the format's own limit on N */

typedef struct {
    const char *name;
    unsigned bits; /* bits per element */
    int fdt;       /* octav_dtype loaded, or -1 when skipped */
} dtype_info;

static const dtype_info k_dtypes[] = {
    {"F32", 32, OCTAV_DTYPE_F32}, {"F64", 64, OCTAV_DTYPE_F64},
    {"F16", 16, OCTAV_DTYPE_F16}, {"BF16", 16, OCTAV_DTYPE_BF16},
    {"BOOL", 8, -1},    {"U8", 8, -1},       {"I8", 8, -1},
    {"F8_E5M2", 8, -1}, {"F8_E4M3", 8, -1},  {"F8_E8M0", 8, -1},
    {"I16", 16, -1},    {"U16", 16, -1},     {"I32", 32, -1},
    {"U32", 32, -1},    {"I64", 64, -1},     {"U64", 64, -1},
    {"C64", 64, -1},    {"F4", 4, -1},       {"F6_E2M3", 6, -1},
    {"F6_E3M2", 6, -1},
};

typedef struct {
    const char *name;
    const dtype_info *dt;
    octav_shape shape; /* filled for loaded (floating) tensors */
    uint64_t begin, end;
    int index; /* position in the JSON object */
} entry;

/* Non-negative integer that a double represents exactly (at most 2^53). */
static int json_uint(const cJSON *j, uint64_t *v) {
    if (!cJSON_IsNumber(j)) return 0;
    double d = j->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || (double)(uint64_t)d != d) return 0;
    *v = (uint64_t)d;
    return 1;
}

static octav_status bad(const char *name, const char *what) {
    return octav_set_error(OCTAV_EFORMAT, "safetensors: tensor '%.64s': %s", name, what);
}

static octav_status parse_entry(const cJSON *item, int index, uint64_t data_len, entry *e) {
    const char *name = item->string;
    const cJSON *dtype = NULL, *shape = NULL, *offs = NULL, *f;
    if (!cJSON_IsObject(item)) return bad(name, "entry is not an object");
    cJSON_ArrayForEach(f, item) {
        const cJSON **slot = !strcmp(f->string, "dtype") ? &dtype
                           : !strcmp(f->string, "shape") ? &shape
                           : !strcmp(f->string, "data_offsets") ? &offs : NULL;
        if (!slot) continue;
        if (*slot) return bad(name, "repeated field");
        *slot = f;
    }
    if (!cJSON_IsString(dtype)) return bad(name, "'dtype' is missing or not a string");
    if (!cJSON_IsArray(shape)) return bad(name, "'shape' is missing or not an array");
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2)
        return bad(name, "'data_offsets' is not an array of two integers");

    e->dt = NULL;
    for (size_t i = 0; i < sizeof k_dtypes / sizeof k_dtypes[0]; i++)
        if (!strcmp(dtype->valuestring, k_dtypes[i].name)) e->dt = &k_dtypes[i];
    if (!e->dt)
        return octav_set_error(OCTAV_EFORMAT, "safetensors: tensor '%.64s': unknown dtype '%.32s'",
                               name, dtype->valuestring);

    const uint64_t big = (uint64_t)1 << 56; /* any count above this is too large */
    uint64_t numel = 1, d;
    int ndim = 0;
    cJSON_ArrayForEach(f, shape) {
        if (!json_uint(f, &d)) return bad(name, "'shape' entry is not a non-negative integer");
        numel = d == 0 || numel == 0 ? 0 : numel > big / d ? big + 1 : numel * d;
        ndim++;
    }
    if (!json_uint(offs->child, &e->begin) || !json_uint(offs->child->next, &e->end))
        return bad(name, "'data_offsets' is not an array of two integers");
    if (e->begin > e->end || e->end > data_len)
        return bad(name, "'data_offsets' are outside the data area");
    if (numel > big || (numel * e->dt->bits) % 8 != 0 ||
        numel * e->dt->bits / 8 != e->end - e->begin)
        return bad(name, "byte size does not match dtype and shape");
    if (e->dt->fdt >= 0) {
        if (ndim > OCTAV_MAX_DIMS)
            return octav_set_error(OCTAV_EUNSUPPORTED,
                                   "safetensors: tensor '%.64s' has more than %d dimensions",
                                   name, OCTAV_MAX_DIMS);
        e->shape.ndim = 0;
        cJSON_ArrayForEach(f, shape) e->shape.dim[e->shape.ndim++] = (int64_t)f->valuedouble;
        if (octav_shape_numel(&e->shape) < 0)
            return octav_set_error(OCTAV_EUNSUPPORTED, "safetensors: tensor '%.64s': shape overflows",
                                   name);
    }
    e->name = name;
    e->index = index;
    return OCTAV_OK;
}

/* Where the tensors' bytes come from: the data area in memory, or a file
 * descriptor at offset base. */
typedef struct {
    const unsigned char *mem;
    int fd;
    uint64_t base;
} data_src;

/* Reads len bytes at off into p. Fails with EIO, or with EFORMAT naming
 * `what` when the file ends first. */
static octav_status pread_all(int fd, unsigned char *p, uint64_t len, uint64_t off, const char *what) {
    uint64_t got = 0;
    while (got < len) {
        ssize_t r = pread(fd, p + got, (size_t)(len - got), (off_t)(off + got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            char head[160];
            snprintf(head, sizeof head, "safetensors: cannot read %s", what);
            return octav_io_errno(head, NULL, errno);
        }
        if (r == 0) return octav_set_error(OCTAV_EFORMAT, "safetensors: the file ends inside %s", what);
        got += (uint64_t)r;
    }
    return OCTAV_OK;
}

/* Points *p at entry e's bytes; from a file they are read into *tmp (the
 * caller frees it). */
static octav_status src_bytes(const data_src *src, const entry *e, const unsigned char **p,
                              unsigned char **tmp) {
    *tmp = NULL;
    if (src->mem) {
        *p = src->mem + e->begin;
        return OCTAV_OK;
    }
    const uint64_t len = e->end - e->begin;
    if (len > (uint64_t)SIZE_MAX / 2)
        return octav_set_error(OCTAV_ENOMEM, "safetensors: tensor '%.64s' is too large to read", e->name);
    *tmp = octav_malloc(len ? (size_t)len : 1);
    if (!*tmp) return octav_set_error(OCTAV_ENOMEM, "safetensors: out of memory");
    char what[96];
    snprintf(what, sizeof what, "tensor '%.64s'", e->name);
    octav_status st = pread_all(src->fd, *tmp, len, src->base + e->begin, what);
    *p = *tmp;
    return st;
}

static int cmp_offset(const void *a, const void *b) {
    const entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* 1 if the n strings have a repeat (sorts the array); *dup gets it. */
static int has_duplicate(const char **s, size_t n, const char **dup) {
    if (n < 2) return 0;
    qsort(s, n, sizeof *s, cmp_str);
    for (size_t i = 1; i < n; i++)
        if (!strcmp(s[i - 1], s[i])) {
            *dup = s[i];
            return 1;
        }
    return 0;
}

/* Checks every entry, then loads the floating tensors (only the one named
 * `only` when that is not NULL). */
static octav_status load(const cJSON *root, const data_src *src, uint64_t data_len, const char *only,
                         octav_safetensors *out) {
    int count = cJSON_GetArraySize(root), n = 0, index = 0, nfloat = 0;
    const cJSON *meta = NULL, *item;
    entry *ents = octav_calloc((size_t)count + 1, sizeof *ents);
    const char **names = octav_calloc((size_t)count + 1, sizeof *names);
    octav_status st = OCTAV_OK;
    if (!ents || !names) {
        st = octav_set_error(OCTAV_ENOMEM, "safetensors: out of memory");
        goto done;
    }
    cJSON_ArrayForEach(item, root) {
        if (!strcmp(item->string, "__metadata__")) {
            if (meta) {
                st = octav_set_error(OCTAV_EFORMAT, "safetensors: repeated '__metadata__'");
                goto done;
            }
            meta = item;
            const cJSON *kv;
            if (!cJSON_IsObject(meta)) {
                st = octav_set_error(OCTAV_EFORMAT, "safetensors: '__metadata__' is not an object");
                goto done;
            }
            cJSON_ArrayForEach(kv, meta) {
                if (!cJSON_IsString(kv)) {
                    st = octav_set_error(OCTAV_EFORMAT, "safetensors: metadata '%.64s' is not a string",
                                         kv->string);
                    goto done;
                }
            }
        } else {
            st = parse_entry(item, index, data_len, &ents[n]);
            if (st) goto done;
            names[n] = ents[n].name;
            nfloat += ents[n].dt->fdt >= 0;
            n++;
        }
        index++;
    }
    const char *dup;
    if (has_duplicate(names, (size_t)n, &dup)) {
        st = octav_set_error(OCTAV_EFORMAT, "safetensors: repeated tensor name '%.64s'", dup);
        goto done;
    }
    int nm = meta ? cJSON_GetArraySize(meta) : 0;
    if (nm > 1) {
        const char **mk = octav_calloc((size_t)nm, sizeof *mk);
        if (!mk) {
            st = octav_set_error(OCTAV_ENOMEM, "safetensors: out of memory");
            goto done;
        }
        int i = 0;
        cJSON_ArrayForEach(item, meta) mk[i++] = item->string;
        int rep = has_duplicate(mk, (size_t)nm, &dup);
        octav_free(mk);
        if (rep) {
            st = octav_set_error(OCTAV_EFORMAT, "safetensors: repeated metadata key '%.64s'", dup);
            goto done;
        }
    }
    qsort(ents, (size_t)n, sizeof *ents, cmp_offset);
    for (int i = 1; i < n; i++)
        if (ents[i].begin < ents[i - 1].end) {
            st = octav_set_error(OCTAV_EFORMAT, "safetensors: tensors '%.64s' and '%.64s' overlap",
                                 ents[i - 1].name, ents[i].name);
            goto done;
        }

    out->tensors = octav_calloc((size_t)nfloat + 1, sizeof *out->tensors);
    out->meta = octav_calloc((size_t)nm + 1, sizeof *out->meta);
    if (!out->tensors || !out->meta) goto oom;
    out->nskipped = n - nfloat;
    for (int i = 0; i < n; i++) {
        const entry *e = &ents[i];
        if (e->dt->fdt < 0 || (only && strcmp(e->name, only) != 0)) continue;
        octav_tensor *t = &out->tensors[out->ntensors];
        octav_dtype dt = (octav_dtype)e->dt->fdt;
        size_t numel = (size_t)((e->end - e->begin) / octav_io_dtype_size(dt));
        t->name = octav_io_strndup(e->name, strlen(e->name));
        t->data = octav_malloc(numel * sizeof(float));
        out->ntensors++;
        if (!t->name || !t->data) goto oom;
        t->dtype = dt;
        t->shape = e->shape;
        const unsigned char *bytes = NULL;
        unsigned char *tmp;
        st = src_bytes(src, e, &bytes, &tmp);
        if (!st) octav_io_convert(t->data, bytes, numel, dt, 0);
        octav_free(tmp);
        if (st) goto done;
    }
    if (meta) {
        cJSON_ArrayForEach(item, meta) {
            octav_kv *kv = &out->meta[out->nmeta++];
            kv->key = octav_io_strndup(item->string, strlen(item->string));
            kv->value = octav_io_strndup(item->valuestring, strlen(item->valuestring));
            if (!kv->key || !kv->value) goto oom;
        }
    }
    goto done;
oom:
    st = octav_set_error(OCTAV_ENOMEM, "safetensors: out of memory");
done:
    octav_free(ents);
    octav_free(names);
    return st;
}

/* The 8-byte header length of a file of `len` bytes, checked. */
static octav_status header_length(const unsigned char *b8, uint64_t len, uint64_t *n) {
    if (len < 8) return octav_set_error(OCTAV_EFORMAT, "safetensors: file shorter than 8 bytes");
    *n = octav_io_ld64(b8, 0);
    if (*n > MAX_HEADER || *n > len - 8)
        return octav_set_error(OCTAV_EFORMAT,
                               "safetensors: header length %llu exceeds the file or the format's limit",
                               (unsigned long long)*n);
    return OCTAV_OK;
}

/* Parses the n-byte JSON header h, checks it and loads from src. */
static octav_status parse_and_load(const unsigned char *h, uint64_t n, const data_src *src, uint64_t data_len,
                                   const char *only, octav_safetensors *out) {
    if (n < 2 || h[0] != '{')
        return octav_set_error(OCTAV_EFORMAT, "safetensors: header is not a JSON object");
    if (memchr(h, 0, (size_t)n))
        return octav_set_error(OCTAV_EFORMAT, "safetensors: NUL byte in the header");
    char *text = octav_io_strndup((const char *)h, (size_t)n);
    if (!text) return octav_set_error(OCTAV_ENOMEM, "safetensors: out of memory");
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, (size_t)n, &end, 0);
    octav_status st = OCTAV_OK;
    if (!root) {
        st = octav_set_error(OCTAV_EFORMAT, "safetensors: invalid JSON header near byte %td",
                             end ? end - text : (ptrdiff_t)0);
    } else {
        while (end < text + n && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
            end++;
        if (end != text + n || !cJSON_IsObject(root))
            st = octav_set_error(OCTAV_EFORMAT, "safetensors: header is not one JSON object");
        else
            st = load(root, src, data_len, only, out);
    }
    cJSON_Delete(root);
    octav_free(text);
    if (st) octav_safetensors_free(out);
    return st;
}

static octav_status read_mem(const void *buf, size_t len, const char *only, octav_safetensors *out) {
    const unsigned char *b = buf;
    uint64_t n;
    octav_status st = header_length(b, len, &n);
    if (st) return st;
    const data_src src = {b + 8 + n, -1, 0};
    return parse_and_load(b + 8, n, &src, len - 8 - n, only, out);
}

octav_status octav_safetensors_read_mem(const void *buf, size_t len, octav_safetensors *out) {
    if (!out) return octav_set_error(OCTAV_EINVAL, "octav_safetensors_read_mem: NULL output");
    memset(out, 0, sizeof *out);
    if (!buf && len) return octav_set_error(OCTAV_EINVAL, "octav_safetensors_read_mem: NULL buffer");
    return read_mem(buf, len, NULL, out);
}

static octav_status read_fd(int fd, uint64_t size, const char *only, octav_safetensors *out) {
    unsigned char b8[8] = {0};
    uint64_t n;
    octav_status st = size >= 8 ? pread_all(fd, b8, 8, 0, "the header length") : OCTAV_OK;
    if (st || (st = header_length(b8, size, &n))) return st;
    unsigned char *h = octav_malloc(n ? (size_t)n : 1);
    if (!h) return octav_set_error(OCTAV_ENOMEM, "safetensors: out of memory");
    st = pread_all(fd, h, n, 8, "the header");
    if (!st) {
        const data_src src = {NULL, fd, 8 + n};
        st = parse_and_load(h, n, &src, size - 8 - n, only, out);
    }
    octav_free(h);
    return st;
}

octav_status octav_safetensors_read_named(const char *path, const char *name, octav_safetensors *out) {
    if (!out) return octav_set_error(OCTAV_EINVAL, "octav_safetensors_read: NULL output");
    memset(out, 0, sizeof *out);
    if (!path) return octav_set_error(OCTAV_EINVAL, "octav_safetensors_read: NULL path");
    int fd;
    octav_status st = octav_io_open_read(path, &fd);
    if (st) return st;
    struct stat sb;
    if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode)) {
        st = read_fd(fd, (uint64_t)sb.st_size, name, out);
        close(fd);
    } else {
        /* a pipe or device: read it whole (from this descriptor: a pipe
         * cannot be opened twice) */
        unsigned char *buf;
        size_t len;
        st = octav_io_read_fd(fd, path, &buf, &len);
        if (st) return st;
        st = read_mem(buf, len, name, out);
        octav_free(buf);
    }
    if (st) octav_safetensors_free(out);
    return st ? octav_io_prefix_error(st, path) : OCTAV_OK;
}

octav_status octav_safetensors_read(const char *path, octav_safetensors *out) {
    return octav_safetensors_read_named(path, NULL, out);
}

void octav_safetensors_free(octav_safetensors *st) {
    if (!st) return;
    for (int i = 0; st->tensors && i < st->ntensors; i++) octav_tensor_free(&st->tensors[i]);
    for (int i = 0; st->meta && i < st->nmeta; i++) {
        octav_free(st->meta[i].key);
        octav_free(st->meta[i].value);
    }
    octav_free(st->tensors);
    octav_free(st->meta);
    memset(st, 0, sizeof *st);
}

const octav_tensor *octav_safetensors_find(const octav_safetensors *st, const char *name) {
    if (!st || !name) return NULL;
    for (int i = 0; i < st->ntensors; i++)
        if (st->tensors[i].name && !strcmp(st->tensors[i].name, name)) return &st->tensors[i];
    return NULL;
}

/* Output buffer of the header writer; with p == NULL it only counts bytes. */
typedef struct {
    char *p;
    size_t n;
} sbuf;

static void put(sbuf *b, const char *s, size_t n) {
    if (b->p) memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void put_str(sbuf *b, const char *s) { put(b, s, strlen(s)); }

static void put_json_string(sbuf *b, const char *s) {
    put(b, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        char esc[8];
        if (*c == '"' || *c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*c;
            put(b, esc, 2);
        } else if (*c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *c);
            put(b, esc, 6);
        } else {
            put(b, (const char *)c, 1);
        }
    }
    put(b, "\"", 1);
}

static void put_u64(sbuf *b, uint64_t v) {
    char num[24];
    put(b, num, (size_t)snprintf(num, sizeof num, "%llu", (unsigned long long)v));
}

static void put_header(sbuf *b, const octav_tensor *t, int nt, const octav_kv *meta, int nmeta) {
    put(b, "{", 1);
    if (nmeta > 0) {
        put_str(b, "\"__metadata__\":{");
        for (int i = 0; i < nmeta; i++) {
            if (i) put(b, ",", 1);
            put_json_string(b, meta[i].key);
            put(b, ":", 1);
            put_json_string(b, meta[i].value);
        }
        put(b, "}", 1);
    }
    uint64_t off = 0;
    for (int i = 0; i < nt; i++) {
        if (i || nmeta > 0) put(b, ",", 1);
        put_json_string(b, t[i].name);
        put_str(b, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < t[i].shape.ndim; d++) {
            if (d) put(b, ",", 1);
            put_u64(b, (uint64_t)t[i].shape.dim[d]);
        }
        put_str(b, "],\"data_offsets\":[");
        put_u64(b, off);
        off += (uint64_t)octav_shape_numel(&t[i].shape) * 4;
        put(b, ",", 1);
        put_u64(b, off);
        put_str(b, "]}");
    }
    put(b, "}", 1);
}

static int names_unique(const char **s, int n, octav_status *st, const char *what) {
    const char *dup;
    if (has_duplicate(s, (size_t)n, &dup)) {
        *st = octav_set_error(OCTAV_EINVAL, "octav_safetensors_write: repeated %s '%.64s'", what, dup);
        return 0;
    }
    return 1;
}

static octav_status check_args(const octav_tensor *t, int nt, const octav_kv *meta, int nmeta,
                               uint64_t *data_bytes) {
    if (nt < 0 || nmeta < 0 || (nt && !t) || (nmeta && !meta))
        return octav_set_error(OCTAV_EINVAL, "octav_safetensors_write: bad tensor or metadata list");
    uint64_t total = 0;
    for (int i = 0; i < nt; i++) {
        int64_t numel = octav_shape_numel(&t[i].shape);
        if (!t[i].name || !*t[i].name || !strcmp(t[i].name, "__metadata__"))
            return octav_set_error(OCTAV_EINVAL, "octav_safetensors_write: tensor %d has no valid name", i);
        if (numel < 0 || (uint64_t)numel > (SIZE_MAX - total) / 4)
            return octav_set_error(OCTAV_EINVAL, "octav_safetensors_write: tensor '%.64s' has a bad shape",
                                   t[i].name);
        if (numel && !t[i].data)
            return octav_set_error(OCTAV_EINVAL, "octav_safetensors_write: tensor '%.64s' has no data",
                                   t[i].name);
        total += (uint64_t)numel * 4;
    }
    for (int i = 0; i < nmeta; i++)
        if (!meta[i].key || !meta[i].value)
            return octav_set_error(OCTAV_EINVAL, "octav_safetensors_write: metadata %d is NULL", i);
    const char **s = octav_calloc((size_t)(nt > nmeta ? nt : nmeta) + 1, sizeof *s);
    if (!s) return octav_set_error(OCTAV_ENOMEM, "octav_safetensors_write: out of memory");
    octav_status st = OCTAV_OK;
    for (int i = 0; i < nt; i++) s[i] = t[i].name;
    if (names_unique(s, nt, &st, "tensor name")) {
        for (int i = 0; i < nmeta; i++) s[i] = meta[i].key;
        names_unique(s, nmeta, &st, "metadata key");
    }
    octav_free(s);
    *data_bytes = total;
    return st;
}

octav_status octav_safetensors_write(const char *path, const octav_tensor *tensors, int ntensors,
                                     const octav_kv *meta, int nmeta) {
    if (!path) return octav_set_error(OCTAV_EINVAL, "octav_safetensors_write: NULL path");
    uint64_t data_bytes = 0;
    octav_status st = check_args(tensors, ntensors, meta, nmeta, &data_bytes);
    if (st) return st;
    sbuf count = {NULL, 0};
    put_header(&count, tensors, ntensors, meta, nmeta);
    size_t hlen = (count.n + 7) / 8 * 8;
    if (hlen > MAX_HEADER || data_bytes > SIZE_MAX - 8 - hlen)
        return octav_set_error(OCTAV_EINVAL, "octav_safetensors_write: header or data too large");
    size_t size = 8 + hlen + (size_t)data_bytes;
    unsigned char *buf = octav_malloc(size);
    if (!buf) return octav_set_error(OCTAV_ENOMEM, "octav_safetensors_write: out of memory");
    octav_io_st64le(buf, hlen);
    sbuf hdr = {(char *)buf + 8, 0};
    put_header(&hdr, tensors, ntensors, meta, nmeta);
    memset(buf + 8 + hdr.n, ' ', hlen - hdr.n);
    unsigned char *p = buf + 8 + hlen;
    for (int i = 0; i < ntensors; i++) {
        size_t numel = (size_t)octav_shape_numel(&tensors[i].shape);
        for (size_t j = 0; j < numel; j++, p += 4)
            octav_io_st32le(p, octav_io_f32_bits(tensors[i].data[j]));
    }
    st = octav_write_file_atomic(path, buf, size);
    octav_free(buf);
    return st;
}
