/* test_safetensors.c -- safetensors reader/writer: a hand-built fixture with
 * every floating dtype and several skipped ones against NumPy/PyTorch-made
 * float32 expectations, round trips, header validation, corrupt and
 * truncated input, and allocation failures. */
#define _POSIX_C_SOURCE 200809L

#include "octav/io.h"
#include "test.h"
#include "test_io.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define FIX OCTAV_FIXTURES "/io/"


/* Floating tensors of st_mixed.safetensors in data-offset order. */
static const struct {
    const char *name;
    octav_dtype dtype;
    int ndim;
    int64_t dim[3];
} k_mixed[] = {
    {"a_f32", OCTAV_DTYPE_F32, 2, {2, 3}},    {"b_f64", OCTAV_DTYPE_F64, 1, {4}},
    {"m_f16", OCTAV_DTYPE_F16, 3, {2, 2, 2}}, {"scalar", OCTAV_DTYPE_F32, 0, {0}},
    {"empty", OCTAV_DTYPE_F32, 2, {0, 3}},    {"z_bf16", OCTAV_DTYPE_BF16, 2, {3, 5}},
};

static void test_mixed_fixture(void) {
    octav_safetensors st;
    octav_tensor e;
    octav_status s = octav_safetensors_read(FIX "st_mixed.safetensors", &st);
    CHECK_MSG(s == OCTAV_OK, "%s", octav_last_error());
    CHECK(octav_npy_read(FIX "st_mixed.expect.npy", &e) == OCTAV_OK);
    if (s != OCTAV_OK || !e.data) return;
    CHECK_EQ_INT(st.ntensors, 6);
    CHECK_EQ_INT(st.nskipped, 4);
    int64_t off = 0;
    for (int i = 0; i < st.ntensors && i < 6; i++) {
        const octav_tensor *t = &st.tensors[i];
        CHECK_MSG(!strcmp(t->name, k_mixed[i].name), "tensor %d is '%s'", i, t->name);
        CHECK_MSG(t->dtype == k_mixed[i].dtype, "%s: %s", t->name, octav_dtype_name(t->dtype));
        CHECK_EQ_INT(t->shape.ndim, k_mixed[i].ndim);
        for (int d = 0; d < t->shape.ndim && d < 3; d++) CHECK_EQ_INT(t->shape.dim[d], k_mixed[i].dim[d]);
        int64_t n = octav_shape_numel(&t->shape);
        CHECK(t->data != NULL);
        if (off + n <= e.shape.dim[0]) check_bits(t->data, e.data + off, n, t->name);
        off += n;
    }
    CHECK_EQ_INT(off, e.shape.dim[0]);
    CHECK_EQ_INT(st.nmeta, 2);
    if (st.nmeta == 2) {
        CHECK(!strcmp(st.meta[0].key, "format") && !strcmp(st.meta[0].value, "pt"));
        CHECK(!strcmp(st.meta[1].key, "note"));
        CHECK(!strcmp(st.meta[1].value, "quote \" backslash \\ tab \t caf\xc3\xa9"));
    }
    CHECK(octav_safetensors_find(&st, "m_f16") == &st.tensors[2]);
    CHECK(octav_safetensors_find(&st, "ints_i64") == NULL);
    CHECK(octav_safetensors_find(&st, "nope") == NULL);
    octav_safetensors_free(&st);
    CHECK(st.tensors == NULL && st.ntensors == 0 && st.meta == NULL);
    octav_tensor_free(&e);
}

static char g_dir[64];

static void test_round_trip(void) {
    trng r = {99, 0, 0};
    float a[12], b[1], c[1] = {0}, d[24];
    for (int i = 0; i < 12; i++) a[i] = (float)trng_gauss(&r);
    for (int i = 0; i < 24; i++) d[i] = (float)trng_laplace(&r);
    a[3] = -0.0f;
    a[4] = -INFINITY;
    a[5] = NAN;
    b[0] = 3.0f;
    octav_tensor ts[4] = {
        {"weight \"q\"\n", {2, {3, 4}}, OCTAV_DTYPE_F32, a},
        {"b", {0, {0}}, OCTAV_DTYPE_F32, b},
        {"a_empty", {3, {2, 0, 5}}, OCTAV_DTYPE_F32, c},
        {"caf\xc3\xa9.w", {8, {2, 1, 3, 1, 2, 1, 2, 1}}, OCTAV_DTYPE_F16, d},
    };
    octav_kv meta[2] = {{"z", "last"}, {"format", "octav \\ \x01"}};
    char path[256];
    snprintf(path, sizeof path, "%s/rt.safetensors", g_dir);
    CHECK_MSG(octav_safetensors_write(path, ts, 4, meta, 2) == OCTAV_OK, "%s", octav_last_error());

    size_t len;
    unsigned char *raw = slurp(path, &len);
    if (raw) {
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--) n = n << 8 | raw[i];
        CHECK(n % 8 == 0 && raw[8] == '{' && 8 + n + 4 * (12 + 1 + 24) == len);
        char *hdr = calloc(1, (size_t)n + 1);
        memcpy(hdr, raw + 8, (size_t)n);
        char *pm = strstr(hdr, "\"__metadata__\""), *p0 = strstr(hdr, "\"weight"),
             *p1 = strstr(hdr, "\"b\""), *p2 = strstr(hdr, "\"a_empty\""), *p3 = strstr(hdr, "caf");
        CHECK(pm && p0 && p1 && p2 && p3 && pm < p0 && p0 < p1 && p1 < p2 && p2 < p3);
        CHECK(strstr(hdr, "\"dtype\":\"F32\"") != NULL && strstr(hdr, "F16") == NULL);
        free(hdr);
    }
    free(raw);

    octav_safetensors st;
    CHECK_MSG(octav_safetensors_read(path, &st) == OCTAV_OK, "%s", octav_last_error());
    CHECK_EQ_INT(st.ntensors, 4);
    CHECK_EQ_INT(st.nskipped, 0);
    /* Zero-size "a_empty" shares its offset with the next tensor and still comes first. */
    for (int i = 0; i < st.ntensors && i < 4; i++) {
        const octav_tensor *t = &st.tensors[i], *w = &ts[i];
        CHECK_MSG(!strcmp(t->name, w->name), "tensor %d is '%s'", i, t->name);
        CHECK(t->dtype == OCTAV_DTYPE_F32);
        CHECK_EQ_INT(t->shape.ndim, w->shape.ndim);
        for (int k = 0; k < w->shape.ndim; k++) CHECK_EQ_INT(t->shape.dim[k], w->shape.dim[k]);
        check_bits(t->data, w->data, octav_shape_numel(&w->shape), w->name);
    }
    CHECK_EQ_INT(st.nmeta, 2);
    if (st.nmeta == 2) {
        CHECK(!strcmp(st.meta[0].key, "z") && !strcmp(st.meta[0].value, "last"));
        CHECK(!strcmp(st.meta[1].key, "format") && !strcmp(st.meta[1].value, "octav \\ \x01"));
    }
    octav_safetensors_free(&st);

    CHECK(octav_safetensors_write(path, NULL, 0, NULL, 0) == OCTAV_OK);
    CHECK(octav_safetensors_read(path, &st) == OCTAV_OK);
    CHECK(st.ntensors == 0 && st.nmeta == 0 && st.nskipped == 0);
    octav_safetensors_free(&st);
    unlink(path);
}

static void test_writer_rejects_bad_arguments(void) {
    char path[256];
    snprintf(path, sizeof path, "%s/bad.safetensors", g_dir);
    float x[2] = {1, 2};
    octav_tensor good = {"w", {1, {2}}, OCTAV_DTYPE_F32, x};
    octav_tensor dup[2] = {good, good};
    octav_tensor noname = good, empty = good, reserved = good, negative = good, nodata = good;
    noname.name = NULL;
    empty.name = "";
    reserved.name = "__metadata__";
    negative.shape.dim[0] = -2;
    nodata.data = NULL;
    octav_kv mdup[2] = {{"k", "1"}, {"k", "2"}}, mnull[1] = {{"k", NULL}};
    CHECK(octav_safetensors_write(path, dup, 2, NULL, 0) == OCTAV_EINVAL);
    CHECK(strstr(octav_last_error(), "'w'") != NULL);
    CHECK(octav_safetensors_write(path, &noname, 1, NULL, 0) == OCTAV_EINVAL);
    CHECK(octav_safetensors_write(path, &empty, 1, NULL, 0) == OCTAV_EINVAL);
    CHECK(octav_safetensors_write(path, &reserved, 1, NULL, 0) == OCTAV_EINVAL);
    CHECK(octav_safetensors_write(path, &negative, 1, NULL, 0) == OCTAV_EINVAL);
    CHECK(octav_safetensors_write(path, &nodata, 1, NULL, 0) == OCTAV_EINVAL);
    CHECK(octav_safetensors_write(path, &good, -1, NULL, 0) == OCTAV_EINVAL);
    CHECK(octav_safetensors_write(path, &good, 1, mdup, 2) == OCTAV_EINVAL);
    CHECK(octav_safetensors_write(path, &good, 1, mnull, 1) == OCTAV_EINVAL);
    CHECK(octav_safetensors_write(path, &good, 1, NULL, 1) == OCTAV_EINVAL);
    CHECK(octav_safetensors_write(NULL, &good, 1, NULL, 0) == OCTAV_EINVAL);
    struct stat sb;
    CHECK(stat(path, &sb) != 0);
    CHECK(octav_safetensors_write("/tmp/octav_no_such_dir_xq/a.safetensors", &good, 1, NULL, 0) == OCTAV_EIO);
    CHECK(stat("/tmp/octav_no_such_dir_xq", &sb) != 0);
}

/* A safetensors file in memory: header length, header text, then dlen bytes 0..dlen-1. */
static unsigned char *make_st(const char *hdr, size_t dlen, size_t *len) {
    size_t n = strlen(hdr);
    unsigned char *b = malloc(8 + n + dlen + 1);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)n >> 8 * i);
    memcpy(b + 8, hdr, n);
    for (size_t i = 0; i < dlen; i++) b[8 + n + i] = (unsigned char)i;
    *len = 8 + n + dlen;
    return b;
}

static octav_status read_st_text(const char *hdr, size_t dlen, octav_safetensors *st) {
    size_t len;
    unsigned char *b = make_st(hdr, dlen, &len);
    octav_status s = octav_safetensors_read_mem(b, len, st);
    free(b);
    return s;
}

static void test_header_variants(void) {
    static const struct {
        const char *hdr;
        size_t dlen;
        int ntensors, nskipped, nmeta;
    } ok[] = {
        {"{}", 0, 0, 0, 0},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}     ", 8, 1, 0, 0},
        {"{\"a\":{\"shape\":[2],\"data_offsets\":[0,8],\"dtype\":\"F32\",\"x\":1}}\n", 8, 1, 0, 0},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0e0],\"data_offsets\":[4,12]}}", 16, 1, 0, 0},
        {"{\"i\":{\"dtype\":\"I32\",\"shape\":[1,1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, 0, 1, 0},
        {"{\"f\":{\"dtype\":\"F4\",\"shape\":[6],\"data_offsets\":[0,3]},"
         "\"g\":{\"dtype\":\"F6_E3M2\",\"shape\":[4],\"data_offsets\":[3,6]},"
         "\"__metadata__\":{}}", 6, 0, 2, 0},
        {"{\"__metadata__\":{\"k\":\"v\",\"k2\":\"\"},"
         "\"h\":{\"dtype\":\"BF16\",\"shape\":[3,0],\"data_offsets\":[2,2]},"
         "\"g\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,2]}}", 2, 2, 0, 2},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        octav_safetensors st;
        octav_status s = read_st_text(ok[i].hdr, ok[i].dlen, &st);
        CHECK_MSG(s == OCTAV_OK, "case %zu: %s", i, octav_last_error());
        CHECK_EQ_INT(st.ntensors, ok[i].ntensors);
        CHECK_EQ_INT(st.nskipped, ok[i].nskipped);
        CHECK_EQ_INT(st.nmeta, ok[i].nmeta);
        octav_safetensors_free(&st);
    }
    octav_safetensors st;
    CHECK(read_st_text("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, &st) == OCTAV_OK);
    if (st.ntensors == 1) {
        float want;
        uint32_t u = 4u | 5u << 8 | 6u << 16 | 7u << 24;
        memcpy(&want, &u, 4);
        check_bits(st.tensors[0].data, &want, 1, "offset 4");
    }
    octav_safetensors_free(&st);
}

/* Every bfloat16 bit pattern against arithmetic decoding. */
static void test_all_bfloat16_patterns(void) {
    char hdr[128];
    snprintf(hdr, sizeof hdr, "{\"x\":{\"dtype\":\"BF16\",\"shape\":[256,256],\"data_offsets\":[0,131072]}}");
    size_t len;
    unsigned char *b = make_st(hdr, 131072, &len);
    size_t off = len - 131072;
    for (unsigned h = 0; h < 65536; h++) {
        b[off + 2 * h] = (unsigned char)h;
        b[off + 2 * h + 1] = (unsigned char)(h >> 8);
    }
    octav_safetensors st;
    CHECK(octav_safetensors_read_mem(b, len, &st) == OCTAV_OK);
    free(b);
    if (st.ntensors != 1) return;
    float *ref = malloc(65536 * sizeof *ref);
    for (unsigned h = 0; h < 65536; h++) {
        unsigned e = (h >> 7) & 255, m = h & 127;
        double v = e == 0 ? ldexp(m, -133) : e == 255 ? (m ? NAN : INFINITY) : ldexp(128 + m, (int)e - 134);
        ref[h] = (float)(h & 0x8000 ? -v : v);
    }
    check_bits(st.tensors[0].data, ref, 65536, "bfloat16");
    free(ref);
    octav_safetensors_free(&st);
}

static void test_bad_headers(void) {
    static const struct {
        const char *hdr;
        size_t dlen;
        octav_status want;
        const char *needle;
    } bad[] = {
        {"", 0, OCTAV_EFORMAT, NULL},
        {"{", 0, OCTAV_EFORMAT, NULL},
        {"{bad}", 0, OCTAV_EFORMAT, "JSON"},
        {"[]", 0, OCTAV_EFORMAT, NULL},
        {"{} {}", 0, OCTAV_EFORMAT, NULL},
        {"{}x", 0, OCTAV_EFORMAT, NULL},
        {" {}", 0, OCTAV_EFORMAT, NULL},
        {"{\"a\":1}", 0, OCTAV_EFORMAT, "'a'"},
        {"{\"a\":{\"dtype\":7,\"shape\":[],\"data_offsets\":[0,4]}}", 4, OCTAV_EFORMAT, "dtype"},
        {"{\"a\":{\"dtype\":\"F33\",\"shape\":[],\"data_offsets\":[0,4]}}", 4, OCTAV_EFORMAT, "F33"},
        {"{\"a\":{\"dtype\":\"f32\",\"shape\":[],\"data_offsets\":[0,4]}}", 4, OCTAV_EFORMAT, "f32"},
        {"{\"a\":{\"shape\":[],\"data_offsets\":[0,4]}}", 4, OCTAV_EFORMAT, "dtype"},
        {"{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, OCTAV_EFORMAT, "shape"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[]}}", 4, OCTAV_EFORMAT, "data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":{},\"data_offsets\":[0,4]}}", 4, OCTAV_EFORMAT, "shape"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, OCTAV_EFORMAT, "shape"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, OCTAV_EFORMAT, "shape"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", 4, OCTAV_EFORMAT, "shape"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1e30],\"data_offsets\":[0,4]}}", 4, OCTAV_EFORMAT, "shape"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, OCTAV_EFORMAT, "data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8, OCTAV_EFORMAT, "data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4, OCTAV_EFORMAT, "data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,-4]}}", 4, OCTAV_EFORMAT, "data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 3, OCTAV_EFORMAT, "data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, OCTAV_EFORMAT, "byte size"},
        {"{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, OCTAV_EFORMAT, "byte size"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", 4,
         OCTAV_EFORMAT, "byte size"},
        {"{\"a\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,1]}}", 4, OCTAV_EFORMAT, "byte size"},
        {"{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
         OCTAV_EFORMAT, "repeated"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, OCTAV_EFORMAT, "overlap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, OCTAV_EFORMAT, "repeated"},
        {"{\"__metadata__\":[]}", 0, OCTAV_EFORMAT, "__metadata__"},
        {"{\"__metadata__\":{\"k\":1}}", 0, OCTAV_EFORMAT, "'k'"},
        {"{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, OCTAV_EFORMAT, "'k'"},
        {"{\"__metadata__\":{},\"__metadata__\":{}}", 0, OCTAV_EFORMAT, "__metadata__"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
         OCTAV_EUNSUPPORTED, "dimensions"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,0],\"data_offsets\":[0,0]}}", 0,
         OCTAV_EUNSUPPORTED, "overflows"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        octav_safetensors st;
        octav_clear_error();
        octav_status s = read_st_text(bad[i].hdr, bad[i].dlen, &st);
        CHECK_MSG(s == bad[i].want, "case %zu: status %d (%s)", i, s, octav_last_error());
        CHECK_MSG(octav_last_error()[0] != '\0', "case %zu: empty message", i);
        if (bad[i].needle)
            CHECK_MSG(strstr(octav_last_error(), bad[i].needle) != NULL, "case %zu: message '%s'", i,
                      octav_last_error());
        CHECK(st.tensors == NULL && st.ntensors == 0);
    }
}

static void test_bad_framing(void) {
    octav_safetensors st;
    size_t len;
    unsigned char *b = make_st("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, &len);
    CHECK(octav_safetensors_read_mem(b, len, &st) == OCTAV_OK);
    octav_safetensors_free(&st);
    b[7] = 0x80; /* N = 2^63 + ... */
    CHECK(octav_safetensors_read_mem(b, len, &st) == OCTAV_EFORMAT);
    b[7] = 0;
    b[0] = (unsigned char)(b[0] + 5); /* header runs past the file */
    CHECK(octav_safetensors_read_mem(b, len, &st) == OCTAV_EFORMAT);
    b[0] = (unsigned char)(b[0] - 5);
    b[12] = 0; /* NUL inside the header */
    CHECK(octav_safetensors_read_mem(b, len, &st) == OCTAV_EFORMAT);
    free(b);
    CHECK(octav_safetensors_read_mem("\x02\0\0\0\0\0\0", 7, &st) == OCTAV_EFORMAT);
    CHECK(octav_safetensors_read_mem(NULL, 0, &st) == OCTAV_EFORMAT);
    CHECK(octav_safetensors_read_mem(NULL, 9, &st) == OCTAV_EINVAL);
    CHECK(octav_safetensors_read_mem("", 0, NULL) == OCTAV_EINVAL);
    octav_clear_error();
    CHECK(octav_safetensors_read("/nonexistent/m.safetensors", &st) == OCTAV_EIO);
    CHECK(strstr(octav_last_error(), "/nonexistent/m.safetensors") != NULL);
}

static void test_truncations_fail(void) {
    size_t len;
    unsigned char *b = slurp(FIX "st_mixed.safetensors", &len);
    for (size_t n = 0; b && n < len; n++) {
        unsigned char *c = malloc(n + 1);
        memcpy(c, b, n);
        octav_safetensors st;
        octav_status s = octav_safetensors_read_mem(c, n, &st);
        CHECK_MSG(s != OCTAV_OK, "cut to %zu bytes was accepted", n);
        if (s == OCTAV_OK) octav_safetensors_free(&st);
        free(c);
    }
    free(b);
}

/* One named tensor read from the file equals the same tensor of a full
 * read; other names load nothing; the metadata comes along. */
static void test_read_named(void) {
    octav_safetensors all;
    CHECK(octav_safetensors_read(FIX "st_mixed.safetensors", &all) == OCTAV_OK);
    for (int i = 0; i < all.ntensors; i++) {
        octav_safetensors one;
        const octav_tensor *a = &all.tensors[i];
        octav_status s = octav_safetensors_read_named(FIX "st_mixed.safetensors", a->name, &one);
        CHECK_MSG(s == OCTAV_OK, "%s: %s", a->name, octav_last_error());
        CHECK_EQ_INT(one.ntensors, 1);
        CHECK_EQ_INT(one.nmeta, 2);
        if (s == OCTAV_OK && one.ntensors == 1) {
            const octav_tensor *t = &one.tensors[0];
            CHECK(!strcmp(t->name, a->name) && t->dtype == a->dtype && t->shape.ndim == a->shape.ndim);
            check_bits(t->data, a->data, octav_shape_numel(&a->shape), a->name);
        }
        octav_safetensors_free(&one);
    }
    const char *none[] = {"ints_i64", "nope", ""};
    for (int i = 0; i < 3; i++) {
        octav_safetensors st;
        CHECK(octav_safetensors_read_named(FIX "st_mixed.safetensors", none[i], &st) == OCTAV_OK);
        CHECK_EQ_INT(st.ntensors, 0);
        octav_safetensors_free(&st);
    }
    octav_safetensors_free(&all);
}

/* Files cut at every length, read from disk (all tensors and one named
 * tensor): every cut is an error, never a crash or a partial result. */
static void test_file_truncations_fail(void) {
    size_t len;
    unsigned char *b = slurp(FIX "st_mixed.safetensors", &len);
    char path[256];
    snprintf(path, sizeof path, "%s/cut.safetensors", g_dir);
    for (size_t n = 0; b && n < len; n++) {
        FILE *f = fopen(path, "wb");
        CHECK(f != NULL);
        if (!f) break;
        CHECK(fwrite(b, 1, n, f) == n);
        fclose(f);
        octav_safetensors st;
        octav_status s = octav_safetensors_read(path, &st);
        CHECK_MSG(s != OCTAV_OK && st.tensors == NULL, "cut to %zu bytes was accepted", n);
        if (s == OCTAV_OK) octav_safetensors_free(&st);
        s = octav_safetensors_read_named(path, "a_f32", &st);
        CHECK_MSG(s != OCTAV_OK && st.tensors == NULL, "cut to %zu bytes was accepted (named)", n);
        CHECK(strstr(octav_last_error(), path) != NULL);
        if (s == OCTAV_OK) octav_safetensors_free(&st);
    }
    unlink(path);
    free(b);
}

/* A pipe is not a regular file: it is read whole, with the same result. */
static void test_read_from_pipe(void) {
    size_t len;
    unsigned char *b = slurp(FIX "st_mixed.safetensors", &len);
    char path[256];
    snprintf(path, sizeof path, "%s/pipe.safetensors", g_dir);
    CHECK(b && mkfifo(path, 0600) == 0);
    if (!b) return;
    for (int named = 0; named <= 1; named++) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            FILE *f = fopen(path, "wb");
            size_t w = f ? fwrite(b, 1, len, f) : 0;
            if (f) fclose(f);
            _exit(w == len ? 0 : 1);
        }
        octav_safetensors st;
        octav_status s = named ? octav_safetensors_read_named(path, "m_f16", &st) : octav_safetensors_read(path, &st);
        int status = 0;
        waitpid(pid, &status, 0);
        CHECK_MSG(s == OCTAV_OK, "%s", octav_last_error());
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        CHECK_EQ_INT(st.ntensors, named ? 1 : 6);
        if (s == OCTAV_OK && named && st.ntensors == 1) CHECK(!strcmp(st.tensors[0].name, "m_f16"));
        octav_safetensors_free(&st);
    }
    unlink(path);
    free(b);
}

static void test_random_byte_flips(void) {
    size_t len;
    unsigned char *b = slurp(FIX "st_mixed.safetensors", &len);
    unsigned char *c = malloc(len);
    trng r = {4242, 0, 0};
    int ok = 0, total = 0;
    for (int it = 0; b && it < 4000; it++) {
        memcpy(c, b, len);
        int nflip = 1 + (int)(trng_u64(&r) % 3);
        for (int k = 0; k < nflip; k++) {
            size_t at = trng_u64(&r) % len;
            c[at] = it % 2 ? (unsigned char)trng_u64(&r) : (unsigned char)(c[at] ^ 1u << (trng_u64(&r) % 8));
        }
        octav_safetensors st;
        octav_status s = octav_safetensors_read_mem(c, len, &st);
        if (s == OCTAV_OK) {
            ok++;
            for (int i = 0; i < st.ntensors; i++)
                CHECK(st.tensors[i].name && st.tensors[i].data && octav_shape_numel(&st.tensors[i].shape) >= 0);
            octav_safetensors_free(&st);
        } else {
            CHECK(st.tensors == NULL && octav_last_error()[0] != '\0');
        }
        total++;
    }
    CHECK(ok > 0 && ok < total);
    free(c);
    free(b);
}

static void test_allocation_failures(void) {
    size_t len;
    unsigned char *b = slurp(FIX "st_mixed.safetensors", &len);
    int reached_ok = 0;
    for (g_fail_at = 0; b && g_fail_at < 100 && !reached_ok; g_fail_at++) {
        g_count = 0;
        octav_set_allocator(failing_alloc, counting_free, NULL);
        octav_safetensors st;
        octav_status s = octav_safetensors_read_mem(b, len, &st);
        octav_set_allocator(NULL, NULL, NULL);
        CHECK_MSG(s == OCTAV_OK || s == OCTAV_ENOMEM, "read, failing allocation %d: %d", g_fail_at, s);
        reached_ok = s == OCTAV_OK;
        octav_safetensors_free(&st);
    }
    CHECK(reached_ok);
    free(b);
    reached_ok = 0;
    for (g_fail_at = 0; g_fail_at < 100 && !reached_ok; g_fail_at++) {
        g_count = 0;
        octav_set_allocator(failing_alloc, counting_free, NULL);
        octav_safetensors st;
        octav_status s = octav_safetensors_read(FIX "st_mixed.safetensors", &st);
        octav_set_allocator(NULL, NULL, NULL);
        CHECK_MSG(s == OCTAV_OK || s == OCTAV_ENOMEM, "file read, failing allocation %d: %d", g_fail_at, s);
        reached_ok = s == OCTAV_OK;
        octav_safetensors_free(&st);
    }
    CHECK(reached_ok);

    float x[3] = {1, 2, 3};
    octav_tensor ts[2] = {{"x", {1, {3}}, OCTAV_DTYPE_F32, x}, {"y", {1, {2}}, OCTAV_DTYPE_F32, x}};
    octav_kv meta[1] = {{"k", "v"}};
    char path[256];
    snprintf(path, sizeof path, "%s/oom.safetensors", g_dir);
    reached_ok = 0;
    for (g_fail_at = 0; g_fail_at < 100 && !reached_ok; g_fail_at++) {
        g_count = 0;
        octav_set_allocator(failing_alloc, counting_free, NULL);
        octav_status s = octav_safetensors_write(path, ts, 2, meta, 1);
        octav_set_allocator(NULL, NULL, NULL);
        CHECK_MSG(s == OCTAV_OK || s == OCTAV_ENOMEM, "write, failing allocation %d: %d", g_fail_at, s);
        struct stat sb;
        CHECK((s == OCTAV_OK) == (stat(path, &sb) == 0));
        reached_ok = s == OCTAV_OK;
    }
    CHECK(reached_ok);
    unlink(path);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/octav_test_st.XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_mixed_fixture);
    RUN(test_round_trip);
    RUN(test_writer_rejects_bad_arguments);
    RUN(test_header_variants);
    RUN(test_all_bfloat16_patterns);
    RUN(test_bad_headers);
    RUN(test_bad_framing);
    RUN(test_truncations_fail);
    RUN(test_read_named);
    RUN(test_file_truncations_fail);
    RUN(test_read_from_pipe);
    RUN(test_random_byte_flips);
    RUN(test_allocation_failures);
    rmdir(g_dir);
    return TEST_SUMMARY();
}
