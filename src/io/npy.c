/* npy.c -- NumPy .npy reader and writer.
 *
 * Reader: format versions 1.0, 2.0 and 3.0; the header is parsed as the
 * Python dict literal it is (keys 'descr', 'fortran_order', 'shape' in any
 * order, either quote style, trailing commas, 1-tuples, () scalars, Python 2
 * 'L' suffixes in versions 1 and 2). Floating dtypes f2/f4/f8 in '<', '>',
 * '=' or '|' byte order ('=' and '|' mean the host's, as NumPy reads them);
 * Fortran-ordered data is transposed to C order. The data must be exactly
 * numel * itemsize bytes.
 * Writer: '<f4', C order, version 1.0 (2.0 if the header would not fit),
 * header padded with spaces and ended by '\n' so data starts at a multiple
 * of 64 bytes, as numpy.save does.
 * Leaves out (OCTAV_EUNSUPPORTED) structured, integer, complex, string and
 * object dtypes, more than OCTAV_MAX_DIMS dimensions, element counts beyond
 * int64 and other format versions; also memory mapping, pickles and
 * backslash escapes inside header strings (OCTAV_EFORMAT). */
#include "half.h"

#include <stdio.h>
#include <string.h>

static const unsigned char k_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

typedef struct {
    const char *p, *end;
    int allow_long; /* Python 2 "3L" integers (versions 1.0 and 2.0) */
} cursor;

static void skip_ws(cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' ||
                             *c->p == '\r' || *c->p == '\f' || *c->p == '\v'))
        c->p++;
}

static int at(cursor *c, char ch) { return c->p < c->end && *c->p == ch; }

static int is_ident(char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch >= '0' && ch <= '9') || ch == '_';
}

static octav_status parse_string(cursor *c, const char **s, size_t *n) {
    if (!at(c, '\'') && !at(c, '"'))
        return octav_set_error(OCTAV_EFORMAT, "npy header: expected a string");
    char q = *c->p++;
    const char *start = c->p;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || *c->p == '\n')
            return octav_set_error(OCTAV_EFORMAT, "npy header: unsupported string literal");
        c->p++;
    }
    if (c->p == c->end) return octav_set_error(OCTAV_EFORMAT, "npy header: unterminated string");
    *s = start;
    *n = (size_t)(c->p - start);
    c->p++;
    return OCTAV_OK;
}

static int match_word(cursor *c, const char *w) {
    size_t n = strlen(w);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, w, n) != 0) return 0;
    if (c->p + n < c->end && is_ident(c->p[n])) return 0;
    c->p += n;
    return 1;
}

static octav_status parse_bool(cursor *c, int *v) {
    if (match_word(c, "True")) *v = 1;
    else if (match_word(c, "False")) *v = 0;
    else return octav_set_error(OCTAV_EFORMAT, "npy header: 'fortran_order' is not True or False");
    return OCTAV_OK;
}

static octav_status parse_dim(cursor *c, int64_t *v) {
    if (at(c, '-')) return octav_set_error(OCTAV_EFORMAT, "npy header: negative dimension");
    if (!(c->p < c->end && *c->p >= '0' && *c->p <= '9'))
        return octav_set_error(OCTAV_EFORMAT, "npy header: 'shape' entry is not an integer");
    int64_t x = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        int d = *c->p++ - '0';
        if (x > (INT64_MAX - d) / 10)
            return octav_set_error(OCTAV_EFORMAT, "npy header: dimension too large");
        x = x * 10 + d;
    }
    if (c->allow_long && (at(c, 'L') || at(c, 'l'))) c->p++;
    if (c->p < c->end && is_ident(*c->p))
        return octav_set_error(OCTAV_EFORMAT, "npy header: 'shape' entry is not an integer");
    *v = x;
    return OCTAV_OK;
}

/* A Python tuple of non-negative ints: (), (n,), (n, m), (n, m,) ... */
static octav_status parse_shape(cursor *c, octav_shape *shape) {
    if (!at(c, '(')) return octav_set_error(OCTAV_EFORMAT, "npy header: 'shape' is not a tuple");
    c->p++;
    skip_ws(c);
    int n = 0, commas = 0;
    while (!at(c, ')')) {
        int64_t d = 0;
        octav_status st = parse_dim(c, &d);
        if (st) return st;
        if (n == OCTAV_MAX_DIMS)
            return octav_set_error(OCTAV_EUNSUPPORTED, "npy: more than %d dimensions",
                                   OCTAV_MAX_DIMS);
        shape->dim[n++] = d;
        skip_ws(c);
        if (at(c, ',')) {
            c->p++;
            commas++;
            skip_ws(c);
        } else if (!at(c, ')')) {
            return octav_set_error(OCTAV_EFORMAT, "npy header: bad 'shape' tuple");
        }
    }
    c->p++;
    if (n == 1 && commas == 0)
        return octav_set_error(OCTAV_EFORMAT, "npy header: 'shape' is not a tuple");
    shape->ndim = n;
    return OCTAV_OK;
}

static int in_set(char ch, const char *set) { return ch != '\0' && strchr(set, ch) != NULL; }

static octav_status parse_descr(const char *s, size_t n, octav_dtype *dt, int *big) {
    int shown = n > 40 ? 40 : (int)n;
    char order = '=';
    size_t i = 0;
    if (n && in_set(s[0], "<>=|")) order = s[i++];
    char kind = i < n ? s[i++] : '\0';
    if (kind == 'f' && n - i == 1 && in_set(s[i], "248")) {
        *dt = s[i] == '2' ? OCTAV_DTYPE_F16 : s[i] == '4' ? OCTAV_DTYPE_F32 : OCTAV_DTYPE_F64;
        *big = order == '>' || (order != '<' && octav_io_host_big());
        return OCTAV_OK;
    }
    if (in_set(kind, "biufcmMOSUVa?"))
        return octav_set_error(OCTAV_EUNSUPPORTED, "npy: unsupported dtype '%.*s'", shown, s);
    return octav_set_error(OCTAV_EFORMAT, "npy header: invalid dtype '%.*s'", shown, s);
}

typedef struct {
    octav_shape shape;
    octav_dtype dtype;
    int big, fortran;
} npy_header;

static octav_status parse_header(cursor *c, npy_header *h) {
    int have_descr = 0, have_fortran = 0, have_shape = 0;
    const char *descr = NULL;
    size_t dlen = 0;
    skip_ws(c);
    if (!at(c, '{')) return octav_set_error(OCTAV_EFORMAT, "npy header: not a dict");
    c->p++;
    for (;;) {
        skip_ws(c);
        if (at(c, '}')) break;
        const char *key;
        size_t klen;
        octav_status st = parse_string(c, &key, &klen);
        if (st) return st;
        skip_ws(c);
        if (!at(c, ':')) return octav_set_error(OCTAV_EFORMAT, "npy header: expected ':'");
        c->p++;
        skip_ws(c);
        int *seen;
        if (klen == 5 && !memcmp(key, "descr", 5)) {
            seen = &have_descr;
            if (at(c, '[') || at(c, '{') || at(c, '('))
                return octav_set_error(OCTAV_EUNSUPPORTED, "npy: structured dtypes are not supported");
            st = parse_string(c, &descr, &dlen);
        } else if (klen == 13 && !memcmp(key, "fortran_order", 13)) {
            seen = &have_fortran;
            st = parse_bool(c, &h->fortran);
        } else if (klen == 5 && !memcmp(key, "shape", 5)) {
            seen = &have_shape;
            st = parse_shape(c, &h->shape);
        } else {
            return octav_set_error(OCTAV_EFORMAT, "npy header: unexpected key '%.*s'",
                                   klen > 40 ? 40 : (int)klen, key);
        }
        if (st) return st;
        if (*seen) return octav_set_error(OCTAV_EFORMAT, "npy header: repeated key '%.*s'",
                                          (int)klen, key);
        *seen = 1;
        skip_ws(c);
        if (at(c, ',')) c->p++;
        else if (!at(c, '}')) return octav_set_error(OCTAV_EFORMAT, "npy header: expected ',' or '}'");
    }
    c->p++;
    skip_ws(c);
    if (c->p != c->end) return octav_set_error(OCTAV_EFORMAT, "npy header: text after the dict");
    if (!have_descr || !have_fortran || !have_shape)
        return octav_set_error(OCTAV_EFORMAT, "npy header: missing '%s'",
                               !have_descr ? "descr" : !have_fortran ? "fortran_order" : "shape");
    return parse_descr(descr, dlen, &h->dtype, &h->big);
}

static void fortran_to_c(float *dst, const unsigned char *src, const npy_header *h, size_t numel) {
    const octav_shape *s = &h->shape;
    size_t isz = octav_io_dtype_size(h->dtype), cstride[OCTAV_MAX_DIMS];
    int64_t idx[OCTAV_MAX_DIMS] = {0};
    for (int d = s->ndim - 1; d >= 0; d--)
        cstride[d] = d == s->ndim - 1 ? 1 : cstride[d + 1] * (size_t)s->dim[d + 1];
    size_t c = 0;
    for (size_t f = 0; f < numel; f++) {
        dst[c] = octav_io_load(src + f * isz, h->dtype, h->big);
        for (int d = 0; d < s->ndim; d++) {
            if (++idx[d] < s->dim[d]) {
                c += cstride[d];
                break;
            }
            idx[d] = 0;
            c -= cstride[d] * (size_t)(s->dim[d] - 1);
        }
    }
}

octav_status octav_npy_read_mem(const void *buf, size_t len, octav_tensor *out) {
    if (!out) return octav_set_error(OCTAV_EINVAL, "octav_npy_read_mem: NULL output");
    memset(out, 0, sizeof *out);
    if (!buf && len) return octav_set_error(OCTAV_EINVAL, "octav_npy_read_mem: NULL buffer");
    const unsigned char *b = buf;
    if (len < 10 || memcmp(b, k_magic, sizeof k_magic) != 0)
        return octav_set_error(OCTAV_EFORMAT, "not a .npy file (bad magic)");
    int major = b[6], minor = b[7];
    if (major < 1 || major > 3 || minor != 0)
        return octav_set_error(OCTAV_EUNSUPPORTED, "npy: unsupported format version %d.%d",
                               major, minor);
    size_t pre = major == 1 ? 10 : 12;
    if (len < pre) return octav_set_error(OCTAV_EFORMAT, "npy: truncated header");
    size_t hlen = major == 1 ? octav_io_ld16(b + 8, 0) : octav_io_ld32(b + 8, 0);
    if (hlen > len - pre)
        return octav_set_error(OCTAV_EFORMAT, "npy: header of %zu bytes runs past the end of the file",
                               hlen);

    npy_header h;
    memset(&h, 0, sizeof h);
    cursor c = {(const char *)b + pre, (const char *)b + pre + hlen, major < 3};
    octav_status st = parse_header(&c, &h);
    if (st) return st;

    int64_t numel = octav_shape_numel(&h.shape);
    if (numel < 0) return octav_set_error(OCTAV_EUNSUPPORTED, "npy: element count of the shape overflows");
    size_t isz = octav_io_dtype_size(h.dtype), avail = len - pre - hlen;
    if (avail % isz != 0 || (uint64_t)numel != avail / isz)
        return octav_set_error(OCTAV_EFORMAT,
                               "npy: data is %zu bytes, expected %lld elements of %zu bytes",
                               avail, (long long)numel, isz);
    float *data = octav_malloc((size_t)numel * sizeof(float));
    if (!data) return octav_set_error(OCTAV_ENOMEM, "npy: out of memory");
    const unsigned char *src = b + pre + hlen;
    if (h.fortran && h.shape.ndim > 1) fortran_to_c(data, src, &h, (size_t)numel);
    else octav_io_convert(data, src, (size_t)numel, h.dtype, h.big);
    out->shape = h.shape;
    out->dtype = h.dtype;
    out->data = data;
    return OCTAV_OK;
}

octav_status octav_npy_read(const char *path, octav_tensor *out) {
    if (!out) return octav_set_error(OCTAV_EINVAL, "octav_npy_read: NULL output");
    memset(out, 0, sizeof *out);
    unsigned char *buf;
    size_t len;
    octav_status st = octav_read_file(path, &buf, &len);
    if (st) return st;
    st = octav_npy_read_mem(buf, len, out);
    octav_free(buf);
    return st ? octav_io_prefix_error(st, path) : OCTAV_OK;
}

octav_status octav_npy_write(const char *path, const octav_shape *shape, const float *data) {
    if (!path || !shape) return octav_set_error(OCTAV_EINVAL, "octav_npy_write: NULL argument");
    int64_t numel = octav_shape_numel(shape);
    if (numel < 0) return octav_set_error(OCTAV_EINVAL, "octav_npy_write: invalid shape");
    if (numel > 0 && !data) return octav_set_error(OCTAV_EINVAL, "octav_npy_write: NULL data");

    char dict[64 + OCTAV_MAX_DIMS * 24];
    int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int i = 0; i < shape->ndim; i++)
        n += snprintf(dict + n, sizeof dict - (size_t)n, i ? ", %lld" : "%lld",
                      (long long)shape->dim[i]);
    n += snprintf(dict + n, sizeof dict - (size_t)n, "%s), }", shape->ndim == 1 ? "," : "");

    size_t pre = 10, total = ((pre + (size_t)n + 1) + 63) / 64 * 64;
    if (total - pre > 65535) {
        pre = 12;
        total = ((pre + (size_t)n + 1) + 63) / 64 * 64;
    }
    if ((uint64_t)numel > (SIZE_MAX - total) / 4)
        return octav_set_error(OCTAV_ENOMEM, "octav_npy_write: tensor too large");
    size_t size = total + (size_t)numel * 4;
    unsigned char *buf = octav_malloc(size);
    if (!buf) return octav_set_error(OCTAV_ENOMEM, "octav_npy_write: out of memory");
    memcpy(buf, k_magic, sizeof k_magic);
    buf[6] = pre == 10 ? 1 : 2;
    buf[7] = 0;
    size_t hlen = total - pre;
    if (pre == 10) {
        buf[8] = (unsigned char)(hlen & 0xff);
        buf[9] = (unsigned char)(hlen >> 8);
    } else {
        octav_io_st32le(buf + 8, (uint32_t)hlen);
    }
    memcpy(buf + pre, dict, (size_t)n);
    memset(buf + pre + n, ' ', total - 1 - pre - (size_t)n);
    buf[total - 1] = '\n';
    for (size_t i = 0; i < (size_t)numel; i++)
        octav_io_st32le(buf + total + 4 * i, octav_io_f32_bits(data[i]));
    octav_status st = octav_write_file_atomic(path, buf, size);
    octav_free(buf);
    return st;
}
