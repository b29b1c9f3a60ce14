/* test_npy.c -- .npy reader/writer and the atomic file layer: NumPy-made
 * fixtures of every dtype, byte order and memory order against their
 * float32 expectations, header syntax variants, corrupt and truncated input,
 * allocation failures, and atomic replacement of files. */
#define _POSIX_C_SOURCE 200809L

#include "octav/io.h"
#include "test.h"
#include "test_io.h"

#include <dirent.h>
#include <float.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIX OCTAV_FIXTURES "/io/"


static void check_shape(const octav_shape *got, const octav_shape *ref) {
    CHECK_EQ_INT(got->ndim, ref->ndim);
    for (int i = 0; i < got->ndim && i < ref->ndim; i++) CHECK_EQ_INT(got->dim[i], ref->dim[i]);
}

static const struct {
    const char *name;
    octav_dtype dtype;
} k_readable[] = {
    {"npy_f4_le", OCTAV_DTYPE_F32},          {"npy_f4_be", OCTAV_DTYPE_F32},
    {"npy_f8_le", OCTAV_DTYPE_F64},          {"npy_f8_be", OCTAV_DTYPE_F64},
    {"npy_f2_le", OCTAV_DTYPE_F16},          {"npy_f2_be", OCTAV_DTYPE_F16},
    {"npy_f4_le_fortran", OCTAV_DTYPE_F32},  {"npy_f8_be_fortran", OCTAV_DTYPE_F64},
    {"npy_f2_le_fortran", OCTAV_DTYPE_F16},  {"npy_f4_be_fortran_8d", OCTAV_DTYPE_F32},
    {"npy_scalar", OCTAV_DTYPE_F32},         {"npy_vec_f8", OCTAV_DTYPE_F64},
    {"npy_empty", OCTAV_DTYPE_F32},          {"npy_v2", OCTAV_DTYPE_F32},
    {"npy_v3_f2be", OCTAV_DTYPE_F16},
};
#define NREADABLE (int)(sizeof k_readable / sizeof k_readable[0])

/* The expectation files are '<f4' C order: their data is the file's last bytes. */
static void test_expect_files_match_raw_bytes(void) {
    for (int i = 0; i < NREADABLE; i++) {
        char path[512];
        snprintf(path, sizeof path, FIX "%s.expect.npy", k_readable[i].name);
        octav_tensor t;
        CHECK_MSG(octav_npy_read(path, &t) == OCTAV_OK, "%s", octav_last_error());
        size_t len;
        unsigned char *raw = slurp(path, &len);
        int64_t n = octav_shape_numel(&t.shape);
        CHECK(raw && n >= 0 && (size_t)n * 4 <= len);
        if (raw && n >= 0 && (size_t)n * 4 <= len) {
            float *ref = malloc((size_t)n * 4 + 4);
            for (int64_t j = 0; j < n; j++) {
                const unsigned char *p = raw + len - (size_t)n * 4 + 4 * (size_t)j;
                uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                             (uint32_t)p[3] << 24;
                memcpy(&ref[j], &u, 4);
            }
            check_bits(t.data, ref, n, path);
            free(ref);
        }
        free(raw);
        octav_tensor_free(&t);
    }
}

static void test_fixtures_match_expected(void) {
    for (int i = 0; i < NREADABLE; i++) {
        char path[512], epath[512];
        snprintf(path, sizeof path, FIX "%s.npy", k_readable[i].name);
        snprintf(epath, sizeof epath, FIX "%s.expect.npy", k_readable[i].name);
        octav_tensor t, e;
        octav_status st = octav_npy_read(path, &t);
        CHECK_MSG(st == OCTAV_OK, "%s", octav_last_error());
        CHECK(octav_npy_read(epath, &e) == OCTAV_OK);
        if (st == OCTAV_OK) {
            CHECK(t.name == NULL);
            CHECK_MSG(t.dtype == k_readable[i].dtype, "%s: dtype %s", path, octav_dtype_name(t.dtype));
            check_shape(&t.shape, &e.shape);
            if (t.shape.ndim == e.shape.ndim)
                check_bits(t.data, e.data, octav_shape_numel(&e.shape), path);
        }
        octav_tensor_free(&t);
        octav_tensor_free(&e);
        CHECK(t.data == NULL && e.data == NULL);
    }
}

static void test_fixture_shapes(void) {
    octav_tensor t;
    CHECK(octav_npy_read(FIX "npy_scalar.npy", &t) == OCTAV_OK);
    CHECK_EQ_INT(t.shape.ndim, 0);
    CHECK(t.data && t.data[0] == 2.5f);
    octav_tensor_free(&t);
    CHECK(octav_npy_read(FIX "npy_f4_be_fortran_8d.npy", &t) == OCTAV_OK);
    octav_shape s8 = {8, {2, 1, 3, 1, 2, 1, 2, 2}};
    check_shape(&t.shape, &s8);
    octav_tensor_free(&t);
    CHECK(octav_npy_read(FIX "npy_empty.npy", &t) == OCTAV_OK);
    octav_shape s0 = {2, {0, 3}};
    check_shape(&t.shape, &s0);
    CHECK(t.data != NULL);
    octav_tensor_free(&t);
}

static void test_unsupported_fixtures(void) {
    static const struct {
        const char *file, *needle;
    } cases[] = {
        {"npy_i4.npy", "<i4"},   {"npy_c8.npy", "<c8"}, {"npy_bool.npy", "|b1"},
        {"npy_obj.npy", "|O"},   {"npy_f16.npy", "<f16"}, {"npy_struct.npy", "structured"},
        {"npy_9d.npy", "dimensions"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, FIX "%s", cases[i].file);
        octav_tensor t;
        octav_status st = octav_npy_read(path, &t);
        CHECK_MSG(st == OCTAV_EUNSUPPORTED, "%s: status %d", cases[i].file, st);
        CHECK_MSG(strstr(octav_last_error(), cases[i].needle) != NULL, "%s: message '%s'",
                  cases[i].file, octav_last_error());
        CHECK(strstr(octav_last_error(), cases[i].file) != NULL);
        CHECK(t.data == NULL);
    }
}

/* A .npy in memory: magic, version, header text as given, then data. */
static unsigned char *make_npy(int major, const char *hdr, const void *data, size_t dlen,
                               size_t *len) {
    size_t pre = major == 1 ? 10 : 12, hlen = strlen(hdr);
    unsigned char *b = malloc(pre + hlen + dlen + 1);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (unsigned char)major;
    b[7] = 0;
    for (size_t i = 0; i < pre - 8; i++) b[8 + i] = (unsigned char)(hlen >> 8 * i);
    memcpy(b + pre, hdr, hlen);
    if (dlen) memcpy(b + pre + hlen, data, dlen);
    *len = pre + hlen + dlen;
    return b;
}

static octav_status read_npy_text(int major, const char *hdr, size_t nfloats, octav_tensor *t) {
    float data[64] = {0};
    for (size_t i = 0; i < 64; i++) data[i] = (float)i;
    size_t len;
    unsigned char *b = make_npy(major, hdr, data, nfloats * 4, &len);
    octav_status st = octav_npy_read_mem(b, len, t);
    free(b);
    return st;
}

static void test_header_variants(void) {
    static const struct {
        int major;
        const char *hdr;
        int ndim;
        int64_t d0, d1;
        size_t n;
    } ok[] = {
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n", 2, 2, 3, 6},
        {1, "{\"shape\": (2,3), \"descr\": \"<f4\", \"fortran_order\": False}", 2, 2, 3, 6},
        {1, "  {'fortran_order':False,'shape':(5,),'descr':'<f4'}  \n\n", 1, 5, 0, 5},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 0, 0, 0, 1},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': ( 2 , 3 , ), }", 2, 2, 3, 6},
        {1, "{'descr': '<f4',\n 'fortran_order': True,\n 'shape': (3L, 2L), }", 2, 3, 2, 6},
        {2, "{'descr': '=f4', 'fortran_order': False, 'shape': (4,), }", 1, 4, 0, 4},
        {3, "{'descr': '|f4', 'fortran_order': False, 'shape': (0, 7), }", 2, 0, 7, 0},
        {1, "{'descr': 'f4', 'fortran_order': False, 'shape': (1,), }", 1, 1, 0, 1},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        octav_tensor t;
        octav_status st = read_npy_text(ok[i].major, ok[i].hdr, ok[i].n, &t);
        CHECK_MSG(st == OCTAV_OK, "case %zu: %s", i, octav_last_error());
        CHECK_EQ_INT(t.shape.ndim, ok[i].ndim);
        if (ok[i].ndim > 0) CHECK_EQ_INT(t.shape.dim[0], ok[i].d0);
        if (ok[i].ndim > 1) CHECK_EQ_INT(t.shape.dim[1], ok[i].d1);
        octav_tensor_free(&t);
    }
    /* Fortran order (3, 2): file holds columns; C order is rows. */
    octav_tensor t;
    CHECK(read_npy_text(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (3, 2), }", 6, &t) == OCTAV_OK);
    static const float rows[6] = {0, 3, 1, 4, 2, 5};
    if (t.data) CHECK_ARRAYS(t.data, rows, 6, 0.0, 0.0);
    octav_tensor_free(&t);
}

/* Every float16 bit pattern against arithmetic decoding of sign, exponent, mantissa. */
static void test_all_float16_patterns(void) {
    static unsigned char data[65536 * 2];
    for (unsigned h = 0; h < 65536; h++) {
        data[2 * h] = (unsigned char)(h >> 8);
        data[2 * h + 1] = (unsigned char)h;
    }
    char hdr[128];
    snprintf(hdr, sizeof hdr, "{'descr': '>f2', 'fortran_order': False, 'shape': (65536,), }\n");
    size_t len;
    unsigned char *b = make_npy(1, hdr, data, sizeof data, &len);
    octav_tensor t;
    CHECK(octav_npy_read_mem(b, len, &t) == OCTAV_OK);
    free(b);
    if (!t.data) return;
    float *ref = malloc(65536 * sizeof *ref);
    for (unsigned h = 0; h < 65536; h++) {
        unsigned e = (h >> 10) & 31, m = h & 1023;
        double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, (int)e - 25);
        ref[h] = (float)(h & 0x8000 ? -v : v);
    }
    check_bits(t.data, ref, 65536, "float16");
    free(ref);
    octav_tensor_free(&t);
}

/* float64 -> float32 at the overflow boundary: ties and above go to inf. */
static void test_f64_rounding_boundary(void) {
    const double half = 0x1.ffffffp127;
    double in[8] = {half, nextafter(half, 0), -half, -nextafter(half, 0), 0x1p-150,
                    nextafter(0x1p-150, 1), 0x1.000001p0, 0x1.000003p0};
    float want[8] = {INFINITY, FLT_MAX, -INFINITY, -FLT_MAX, 0.0f, 0x1p-149f, 1.0f, 0x1.000004p0f};
    unsigned char data[64];
    for (int i = 0; i < 8; i++) {
        uint64_t u;
        memcpy(&u, &in[i], 8);
        for (int k = 0; k < 8; k++) data[8 * i + k] = (unsigned char)(u >> 8 * k);
    }
    size_t len;
    unsigned char *b = make_npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (8,), }", data, 64, &len);
    octav_tensor t;
    CHECK(octav_npy_read_mem(b, len, &t) == OCTAV_OK);
    free(b);
    if (t.data) check_bits(t.data, want, 8, "float64 rounding");
    octav_tensor_free(&t);
}

static void test_bad_headers(void) {
    static const struct {
        int major;
        const char *hdr;
        size_t n;
        octav_status want;
    } bad[] = {
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3), }", 3, OCTAV_EFORMAT},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': [3], }", 3, OCTAV_EFORMAT},
        {1, "{'descr': '<f4', 'fortran_order': False}", 1, OCTAV_EFORMAT},
        {1, "{'descr': '<f4', 'shape': (1,)}", 1, OCTAV_EFORMAT},
        {1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", 1, OCTAV_EFORMAT},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", 1, OCTAV_EFORMAT},
        {1, "{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}", 1, OCTAV_EFORMAT},
        {1, "{'descr': '<f4, 'fortran_order': False, 'shape': (1,)}", 1, OCTAV_EFORMAT},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}", 1, OCTAV_EFORMAT},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} x", 1, OCTAV_EFORMAT},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)", 1, OCTAV_EFORMAT},
        {1, "'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", 1, OCTAV_EFORMAT},
        {1, "{'descr': '<f4' 'fortran_order': False, 'shape': (1,)}", 1, OCTAV_EFORMAT},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1 2,)}", 1, OCTAV_EFORMAT},
        {1, "{'descr': '<f4', 'fortran_order': Falsey, 'shape': (1,)}", 1, OCTAV_EFORMAT},
        {1, "{'descr': '<x4', 'fortran_order': False, 'shape': (1,)}", 1, OCTAV_EFORMAT},
        {1, "{'descr': '', 'fortran_order': False, 'shape': (1,)}", 1, OCTAV_EFORMAT},
        {3, "{'descr': '<f4', 'fortran_order': False, 'shape': (3L,)}", 3, OCTAV_EFORMAT},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", 1, OCTAV_EFORMAT},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4),}", 1,
         OCTAV_EUNSUPPORTED},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 0),}", 0,
         OCTAV_EUNSUPPORTED},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", 2, OCTAV_EFORMAT},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", 4, OCTAV_EFORMAT},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", 5, OCTAV_EFORMAT},
        {1, "", 0, OCTAV_EFORMAT},
        {1, "{'descr': '<u2', 'fortran_order': False, 'shape': (2,), }", 1, OCTAV_EUNSUPPORTED},
        {1, "{'descr': '>i8', 'fortran_order': False, 'shape': (1,), }", 2, OCTAV_EUNSUPPORTED},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", 1,
         OCTAV_EUNSUPPORTED},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        octav_tensor t;
        octav_clear_error();
        octav_status st = read_npy_text(bad[i].major, bad[i].hdr, bad[i].n, &t);
        CHECK_MSG(st == bad[i].want, "case %zu: status %d (%s)", i, st, octav_last_error());
        CHECK_MSG(octav_last_error()[0] != '\0', "case %zu: empty message", i);
        CHECK(t.data == NULL);
    }
}

static void test_bad_magic_and_version(void) {
    size_t len;
    unsigned char *b = slurp(FIX "npy_f4_le.npy", &len);
    octav_tensor t;
    b[1] = 'M';
    octav_clear_error();
    CHECK(octav_npy_read_mem(b, len, &t) == OCTAV_EFORMAT);
    CHECK(strstr(octav_last_error(), "magic") != NULL);
    b[1] = 'N';
    b[6] = 4;
    octav_clear_error();
    CHECK(octav_npy_read_mem(b, len, &t) == OCTAV_EUNSUPPORTED);
    CHECK(octav_last_error()[0] != '\0');
    b[6] = 1;
    b[8] = 0xff; /* header length past the end */
    CHECK(octav_npy_read_mem(b, len, &t) == OCTAV_EFORMAT);
    CHECK(octav_npy_read_mem(NULL, 0, &t) == OCTAV_EFORMAT);
    CHECK(octav_npy_read_mem(NULL, 5, &t) == OCTAV_EINVAL);
    CHECK(octav_npy_read_mem(b, len, NULL) == OCTAV_EINVAL);
    free(b);
    octav_clear_error();
    CHECK(octav_npy_read("/nonexistent/dir/x.npy", &t) == OCTAV_EIO);
    CHECK(strstr(octav_last_error(), "/nonexistent/dir/x.npy") != NULL);
}

static void test_truncations_fail(void) {
    static const char *files[] = {"npy_f4_le.npy", "npy_f2_be.npy", "npy_f8_be_fortran.npy",
                                  "npy_v2.npy", "npy_v3_f2be.npy", "npy_scalar.npy",
                                  "npy_empty.npy"};
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        char path[512];
        snprintf(path, sizeof path, FIX "%s", files[f]);
        size_t len;
        unsigned char *b = slurp(path, &len);
        for (size_t n = 0; b && n < len; n++) {
            unsigned char *c = malloc(n + 1);
            memcpy(c, b, n);
            octav_tensor t;
            octav_status st = octav_npy_read_mem(c, n, &t);
            CHECK_MSG(st != OCTAV_OK, "%s cut to %zu bytes was accepted", files[f], n);
            if (st == OCTAV_OK) octav_tensor_free(&t);
            free(c);
        }
        free(b);
    }
}

static void test_random_byte_flips(void) {
    static const char *files[] = {"npy_f4_le.npy", "npy_f2_le_fortran.npy", "npy_v3_f2be.npy"};
    trng r = {12345, 0, 0};
    int ok = 0, total = 0;
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        char path[512];
        snprintf(path, sizeof path, FIX "%s", files[f]);
        size_t len;
        unsigned char *b = slurp(path, &len);
        unsigned char *c = malloc(len);
        for (int it = 0; b && it < 1500; it++) {
            memcpy(c, b, len);
            size_t span = it % 2 ? len : (len < 140 ? len : 140); /* half the flips hit the header */
            int nflip = 1 + (int)(trng_u64(&r) % 4);
            for (int k = 0; k < nflip; k++) c[trng_u64(&r) % span] = (unsigned char)trng_u64(&r);
            octav_tensor t;
            octav_status st = octav_npy_read_mem(c, len, &t);
            if (st == OCTAV_OK) {
                ok++;
                int64_t n = octav_shape_numel(&t.shape);
                CHECK(n >= 0 && t.data != NULL);
                octav_tensor_free(&t);
            } else {
                CHECK(t.data == NULL && octav_last_error()[0] != '\0');
            }
            total++;
        }
        free(c);
        free(b);
    }
    CHECK(ok > 0 && ok < total);
}

static void test_allocation_failures(void) {
    size_t len;
    unsigned char *b = slurp(FIX "npy_f2_le_fortran.npy", &len);
    int reached_ok = 0;
    for (g_fail_at = 0; b && g_fail_at < 20 && !reached_ok; g_fail_at++) {
        g_count = 0;
        octav_set_allocator(failing_alloc, counting_free, NULL);
        octav_tensor t;
        octav_status st = octav_npy_read_mem(b, len, &t);
        octav_set_allocator(NULL, NULL, NULL);
        CHECK_MSG(st == OCTAV_OK || st == OCTAV_ENOMEM, "failing allocation %d: status %d",
                  g_fail_at, st);
        if (st == OCTAV_OK) reached_ok = 1;
        octav_tensor_free(&t);
    }
    CHECK(reached_ok);
    free(b);
}

static char g_dir[64];

static void make_tmpdir(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/octav_test_npy.XXXXXX");
    CHECK(mkdtemp(g_dir) != NULL);
}

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void remove_tmpdir(void) {
    DIR *d = opendir(g_dir);
    struct dirent *e;
    char path[512];
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s", g_dir, e->d_name);
        if (rmdir(path) != 0) unlink(path);
    }
    if (d) closedir(d);
    CHECK(rmdir(g_dir) == 0);
}

static void test_round_trip(void) {
    static const octav_shape shapes[] = {{0, {0}}, {1, {5}}, {2, {3, 4}}, {2, {0, 3}},
                                         {8, {2, 1, 2, 1, 3, 1, 1, 2}}};
    trng r = {7, 0, 0};
    char path[256];
    snprintf(path, sizeof path, "%s/rt.npy", g_dir);
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int64_t n = octav_shape_numel(&shapes[i]);
        float *x = malloc((size_t)n * 4 + 4);
        for (int64_t j = 0; j < n; j++) x[j] = (float)trng_gauss(&r);
        if (n > 2) {
            x[0] = -0.0f;
            x[1] = INFINITY;
            x[2] = NAN;
        }
        CHECK_MSG(octav_npy_write(path, &shapes[i], x) == OCTAV_OK, "%s", octav_last_error());
        size_t len;
        unsigned char *b = slurp(path, &len);
        if (b) {
            size_t hlen = (size_t)b[8] | (size_t)b[9] << 8;
            CHECK(b[6] == 1 && b[7] == 0);
            CHECK((10 + hlen) % 64 == 0 && b[9 + hlen] == '\n');
            CHECK_EQ_INT(len, 10 + hlen + (size_t)n * 4);
        }
        free(b);
        octav_tensor t;
        CHECK(octav_npy_read(path, &t) == OCTAV_OK);
        check_shape(&t.shape, &shapes[i]);
        CHECK(t.dtype == OCTAV_DTYPE_F32);
        check_bits(t.data, x, n, "round trip");
        octav_tensor_free(&t);
        free(x);
    }
    CHECK_EQ_INT(count_entries(g_dir), 1);
    unlink(path);
}

/* What numpy.save wrote for a float32 C-order array, octav writes byte for byte. */
static void test_writer_matches_numpy(void) {
    static const char *names[] = {"npy_f4_le", "npy_scalar", "npy_empty", "npy_vec_f8",
                                  "npy_f4_be_fortran_8d"};
    char path[256], ref[512];
    snprintf(path, sizeof path, "%s/same.npy", g_dir);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(ref, sizeof ref, FIX "%s.expect.npy", names[i]);
        octav_tensor t;
        CHECK(octav_npy_read(ref, &t) == OCTAV_OK);
        CHECK(octav_npy_write(path, &t.shape, t.data) == OCTAV_OK);
        size_t la, lb;
        unsigned char *a = slurp(ref, &la), *b = slurp(path, &lb);
        CHECK_MSG(a && b && la == lb && !memcmp(a, b, la), "%s differs from numpy's file", names[i]);
        free(a);
        free(b);
        octav_tensor_free(&t);
    }
    unlink(path);
}

static void test_writer_rejects_bad_arguments(void) {
    char path[256];
    snprintf(path, sizeof path, "%s/bad.npy", g_dir);
    octav_shape neg = {1, {-1}}, big = {9, {1}}, two = {1, {2}};
    float x[2] = {1, 2};
    CHECK(octav_npy_write(path, &neg, x) == OCTAV_EINVAL);
    CHECK(octav_npy_write(path, &big, x) == OCTAV_EINVAL);
    CHECK(octav_npy_write(path, &two, NULL) == OCTAV_EINVAL);
    CHECK(octav_npy_write(NULL, &two, x) == OCTAV_EINVAL);
    CHECK(octav_npy_write(path, NULL, x) == OCTAV_EINVAL);
    CHECK_EQ_INT(count_entries(g_dir), 0);
}

static void test_atomic_write(void) {
    char path[256];
    octav_shape s = {1, {2}};
    float x[2] = {1, 2};
    octav_clear_error();
    CHECK(octav_npy_write("/tmp/octav_no_such_dir_xq/a.npy", &s, x) == OCTAV_EIO);
    CHECK(strstr(octav_last_error(), "/tmp/octav_no_such_dir_xq/a.npy") != NULL);
    struct stat sb;
    CHECK(stat("/tmp/octav_no_such_dir_xq", &sb) != 0);

    snprintf(path, sizeof path, "%s/over.bin", g_dir);
    static unsigned char big[10000], small[3] = {7, 8, 9};
    memset(big, 0xab, sizeof big);
    CHECK(octav_write_file_atomic(path, big, sizeof big) == OCTAV_OK);
    CHECK(octav_write_file_atomic(path, small, sizeof small) == OCTAV_OK);
    size_t len;
    unsigned char *b = slurp(path, &len);
    CHECK(b && len == 3 && !memcmp(b, small, 3));
    free(b);
    CHECK(stat(path, &sb) == 0);
    mode_t mask = umask(022);
    umask(mask);
    CHECK_EQ_INT(sb.st_mode & 0777, 0666 & ~mask);
    CHECK(chmod(path, 0640) == 0);
    CHECK(octav_write_file_atomic(path, big, 5) == OCTAV_OK);
    CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0640 && sb.st_size == 5);
    CHECK(octav_write_file_atomic(path, NULL, 0) == OCTAV_OK);
    CHECK(stat(path, &sb) == 0 && sb.st_size == 0);
    CHECK(octav_write_file_atomic(path, NULL, 3) == OCTAV_EINVAL);
    CHECK(octav_write_file_atomic("", small, 3) == OCTAV_EINVAL);
    unlink(path);

    /* rename over a directory fails: the directory stays and no temp file is left. */
    snprintf(path, sizeof path, "%s/adir", g_dir);
    CHECK(mkdir(path, 0755) == 0);
    octav_clear_error();
    CHECK(octav_write_file_atomic(path, small, 3) == OCTAV_EIO);
    CHECK(strstr(octav_last_error(), path) != NULL);
    CHECK(stat(path, &sb) == 0 && S_ISDIR(sb.st_mode));
    CHECK_EQ_INT(count_entries(g_dir), 1);
    unsigned char *buf = NULL;
    CHECK(octav_read_file(path, &buf, &len) == OCTAV_EIO && buf == NULL);
    rmdir(path);
}

int main(void) {
    RUN(test_expect_files_match_raw_bytes);
    RUN(test_fixtures_match_expected);
    RUN(test_fixture_shapes);
    RUN(test_unsupported_fixtures);
    RUN(test_header_variants);
    RUN(test_all_float16_patterns);
    RUN(test_f64_rounding_boundary);
    RUN(test_bad_headers);
    RUN(test_bad_magic_and_version);
    RUN(test_truncations_fail);
    RUN(test_random_byte_flips);
    RUN(test_allocation_failures);
    make_tmpdir();
    RUN(test_round_trip);
    RUN(test_writer_matches_numpy);
    RUN(test_writer_rejects_bad_arguments);
    RUN(test_atomic_write);
    remove_tmpdir();
    return TEST_SUMMARY();
}
