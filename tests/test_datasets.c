/* test_datasets.c -- IDX (plain and gzip) and CIFAR-10 readers and the
 * dataset loaders: files made here (gzip by zlib's gzwrite) in a mkdtemp
 * directory read back byte for byte; every truncation of a small file, a few
 * thousand seeded byte flips, bad headers, trailing data, mismatched counts,
 * out-of-range labels and missing files give the documented status and a
 * message; every allocation failure gives OCTAV_ENOMEM with nothing leaked.
 * Debian's Fashion-MNIST (/usr/share/datasets/fashion-mnist) is checked
 * when it is installed and silently skipped when not. */
#define _POSIX_C_SOURCE 200809L

#include "octav/io.h"
#include "test.h"
#include "test_io.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"
#define CIFAR_REC 3073

static char g_dir[64];

static void path_in(char *p, size_t cap, const char *name) { snprintf(p, cap, "%s/%s", g_dir, name); }

static void put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* An IDX file of type code `type` with the given dims; data bytes follow
 * (numel of them, from `data`, or a pattern when data is NULL). */
static unsigned char *make_idx(int type, int ndim, const uint32_t *dims, const unsigned char *data,
                               size_t *len) {
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) numel *= dims[i];
    *len = 4 + 4 * (size_t)ndim + numel;
    unsigned char *b = malloc(*len);
    b[0] = 0;
    b[1] = 0;
    b[2] = (unsigned char)type;
    b[3] = (unsigned char)ndim;
    for (int i = 0; i < ndim; i++) put_be32(b + 4 + 4 * i, dims[i]);
    for (size_t i = 0; i < numel; i++)
        b[4 + 4 * ndim + i] = data ? data[i] : (unsigned char)(i * 37 + 11);
    return b;
}

static void write_plain(const char *path, const void *b, size_t len) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(fwrite(b, 1, len, f) == len);
    CHECK(fclose(f) == 0);
}

static void write_gz(const char *path, const void *b, size_t len) {
    gzFile g = gzopen(path, "wb9");
    CHECK(g != NULL);
    if (!g) return;
    CHECK(len == 0 || gzwrite(g, b, (unsigned)len) == (int)len);
    CHECK(gzclose(g) == Z_OK);
}

/* The gzip bytes of b[0 .. len), made through a file by gzwrite. */
static unsigned char *gz_bytes(const void *b, size_t len, size_t *glen) {
    char p[128];
    path_in(p, sizeof p, "scratch.gz");
    write_gz(p, b, len);
    unsigned char *g = slurp(p, glen);
    unlink(p);
    return g;
}

static int has(const char *needle) { return strstr(octav_last_error(), needle) != NULL; }

/* ---- IDX reader ----------------------------------------------------------- */

static void check_idx_equal(const octav_idx *x, int ndim, const uint32_t *dims,
                            const unsigned char *file) {
    CHECK_EQ_INT(x->ndim, ndim);
    size_t numel = 1;
    for (int i = 0; i < ndim && i < x->ndim; i++) {
        CHECK_EQ_INT(x->dim[i], dims[i]);
        numel *= dims[i];
    }
    CHECK(x->data != NULL);
    if (x->data && x->ndim == ndim)
        CHECK(memcmp(x->data, file + 4 + 4 * ndim, numel) == 0);
}

static void test_idx_roundtrip(void) {
    /* The last shape inflates to far more than 8x its gzip size, so the
     * reader's buffer grows several times. */
    static const uint32_t shapes[][4] = {{7, 0, 0, 0},   {3, 5, 0, 0},    {4, 3, 5, 0},
                                         {2, 3, 2, 4},   {0, 28, 28, 0},  {5, 256, 256, 0}};
    static const int ndims[] = {1, 2, 3, 4, 3, 3};
    for (int k = 0; k < 6; k++) {
        size_t len;
        unsigned char *b = make_idx(0x08, ndims[k], shapes[k], NULL, &len);
        char plain[128], gz[128];
        path_in(plain, sizeof plain, "rt.idx");
        path_in(gz, sizeof gz, "rt.idx.gz");
        write_plain(plain, b, len);
        write_gz(gz, b, len);
        for (int z = 0; z < 2; z++) {
            octav_idx x;
            octav_status st = octav_idx_read(z ? gz : plain, &x);
            CHECK_MSG(st == OCTAV_OK, "shape %d %s: %s", k, z ? "gz" : "plain", octav_last_error());
            if (st == OCTAV_OK) check_idx_equal(&x, ndims[k], shapes[k], b);
            octav_idx_free(&x);
            CHECK(x.data == NULL && x.ndim == 0);
        }
        free(b);
    }
    octav_idx_free(NULL);
}

/* gzip members may be concatenated (as `cat a.gz b.gz` makes). */
static void test_idx_gzip_members(void) {
    uint32_t dims[3] = {6, 5, 4};
    size_t len, g1, g2;
    unsigned char *b = make_idx(0x08, 3, dims, NULL, &len);
    unsigned char *a = gz_bytes(b, 50, &g1), *c = gz_bytes(b + 50, len - 50, &g2);
    unsigned char *cat = malloc(g1 + g2);
    memcpy(cat, a, g1);
    memcpy(cat + g1, c, g2);
    octav_idx x;
    CHECK_MSG(octav_idx_read_mem(cat, g1 + g2, &x) == OCTAV_OK, "%s", octav_last_error());
    check_idx_equal(&x, 3, dims, b);
    octav_idx_free(&x);
    free(cat);
    free(a);
    free(c);
    free(b);
}

static void test_idx_truncations(void) {
    uint32_t dims[3] = {3, 4, 5};
    size_t len, glen;
    unsigned char *b = make_idx(0x08, 3, dims, NULL, &len);
    unsigned char *g = gz_bytes(b, len, &glen);
    for (int z = 0; z < 2; z++) {
        const unsigned char *src = z ? g : b;
        size_t n = z ? glen : len;
        for (size_t cut = 0; cut < n; cut++) {
            unsigned char *c = malloc(cut + 1); /* exact size: ASan sees any overread */
            memcpy(c, src, cut);
            octav_idx x;
            octav_clear_error();
            octav_status st = octav_idx_read_mem(c, cut, &x);
            CHECK_MSG(st == OCTAV_EFORMAT, "%s cut at %zu: status %d", z ? "gz" : "plain", cut, st);
            CHECK(x.data == NULL && octav_last_error()[0] != '\0');
            free(c);
        }
    }
    /* The message of a file cut inside the data names the file and both counts. */
    char p[128];
    path_in(p, sizeof p, "cut.idx");
    write_plain(p, b, len - 7);
    octav_idx x;
    CHECK(octav_idx_read(p, &x) == OCTAV_EFORMAT);
    CHECK_MSG(has(p) && has("60") && has("53") && has("truncated"), "'%s'", octav_last_error());
    path_in(p, sizeof p, "cut.idx.gz");
    write_gz(p, b, len - 7);
    CHECK(octav_idx_read(p, &x) == OCTAV_EFORMAT);
    CHECK_MSG(has(p) && has("60") && has("53") && has("truncated"), "'%s'", octav_last_error());
    free(g);
    free(b);
}

static void test_idx_trailing_data(void) {
    uint32_t dims[2] = {4, 4};
    size_t len, glen;
    unsigned char *b = make_idx(0x08, 2, dims, NULL, &len);
    unsigned char *longer = malloc(len + 3);
    memcpy(longer, b, len);
    memset(longer + len, 0xab, 3);
    octav_idx x;
    CHECK(octav_idx_read_mem(longer, len + 3, &x) == OCTAV_EFORMAT);
    CHECK_MSG(has("trailing") && has("16") && has("19"), "'%s'", octav_last_error());
    /* The same inside the gzip stream. */
    unsigned char *g = gz_bytes(longer, len + 3, &glen);
    CHECK(octav_idx_read_mem(g, glen, &x) == OCTAV_EFORMAT);
    CHECK_MSG(has("trailing") && has("19"), "'%s'", octav_last_error());
    free(g);
    /* Bytes after the gzip stream that are not another member. */
    g = gz_bytes(b, len, &glen);
    unsigned char *ga = malloc(glen + 2);
    memcpy(ga, g, glen);
    ga[glen] = 0;
    ga[glen + 1] = 0;
    CHECK(octav_idx_read_mem(ga, glen + 2, &x) == OCTAV_EFORMAT);
    CHECK_MSG(has("after the end of the gzip stream"), "'%s'", octav_last_error());
    CHECK(octav_idx_read_mem(ga, glen, &x) == OCTAV_OK);
    octav_idx_free(&x);
    free(ga);
    free(g);
    free(longer);
    free(b);
}

static void test_idx_bad_headers(void) {
    uint32_t dims[4] = {2, 3, 4, 5};
    size_t len;
    octav_idx x;
    unsigned char *b = make_idx(0x08, 2, dims, NULL, &len);
    b[1] = 0x01;
    CHECK(octav_idx_read_mem(b, len, &x) == OCTAV_EFORMAT && has("magic"));
    b[1] = 0;
    b[0] = 0x80;
    CHECK(octav_idx_read_mem(b, len, &x) == OCTAV_EFORMAT && has("magic"));
    b[0] = 0;
    static const int types[] = {0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x07, 0xff};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        char code[8];
        snprintf(code, sizeof code, "0x%02x", types[i]);
        b[2] = (unsigned char)types[i];
        CHECK_MSG(octav_idx_read_mem(b, len, &x) == OCTAV_EUNSUPPORTED && has(code), "type %s: '%s'",
                  code, octav_last_error());
        CHECK(x.data == NULL);
    }
    free(b);
    /* 0 dimensions: a 4-byte file. */
    const unsigned char zero_dims[4] = {0, 0, 8, 0};
    CHECK(octav_idx_read_mem(zero_dims, 4, &x) == OCTAV_EFORMAT && has("0 dimensions"));
    /* 5 dimensions. */
    unsigned char five[4 + 20 + 1] = {0, 0, 8, 5};
    for (int i = 0; i < 5; i++) put_be32(five + 4 + 4 * i, 1);
    CHECK(octav_idx_read_mem(five, sizeof five, &x) == OCTAV_EUNSUPPORTED && has("5 dimensions"));
    /* A size with the sign bit set. */
    unsigned char neg[12] = {0, 0, 8, 2};
    put_be32(neg + 4, 0x80000001u);
    put_be32(neg + 8, 1);
    CHECK(octav_idx_read_mem(neg, sizeof neg, &x) == OCTAV_EFORMAT && has("negative"));
    /* Sizes whose product overflows 64 bits. */
    unsigned char big[20] = {0, 0, 8, 4};
    for (int i = 0; i < 4; i++) put_be32(big + 4 + 4 * i, 0x7fffffffu);
    CHECK(octav_idx_read_mem(big, sizeof big, &x) == OCTAV_EFORMAT && has("overflows"));
    /* Large but representable sizes with no data: an error, not an allocation. */
    for (int i = 0; i < 4; i++) put_be32(big + 4 + 4 * i, i < 2 ? 0x7fffffffu : 1);
    CHECK(octav_idx_read_mem(big, sizeof big, &x) == OCTAV_EFORMAT && has("truncated"));
    size_t glen;
    unsigned char *g = gz_bytes(big, sizeof big, &glen);
    CHECK(octav_idx_read_mem(g, glen, &x) == OCTAV_EFORMAT && has("truncated"));
    /* A corrupt gzip check value. */
    g[glen - 6] ^= 0x40;
    CHECK(octav_idx_read_mem(g, glen, &x) == OCTAV_EFORMAT && has("gzip"));
    free(g);
    /* Neither IDX nor gzip. */
    CHECK(octav_idx_read_mem("PK\3\4", 4, &x) == OCTAV_EFORMAT && has("magic"));
    CHECK(octav_idx_read_mem(NULL, 0, &x) == OCTAV_EFORMAT);
    CHECK(octav_idx_read_mem(NULL, 5, &x) == OCTAV_EINVAL);
    CHECK(octav_idx_read_mem(zero_dims, 4, NULL) == OCTAV_EINVAL);
    CHECK(octav_idx_read(NULL, &x) == OCTAV_EINVAL);
}

static void test_idx_fuzz(void) {
    uint32_t dims[3] = {3, 6, 6};
    unsigned char data[108];
    trng r = {42, 0, 0};
    for (size_t i = 0; i < sizeof data; i++) data[i] = (unsigned char)(trng_u64(&r) % 8);
    size_t len, glen;
    unsigned char *b = make_idx(0x08, 3, dims, data, &len);
    unsigned char *g = gz_bytes(b, len, &glen);
    int ok = 0, total = 0;
    for (int z = 0; z < 2; z++) {
        const unsigned char *src = z ? g : b;
        size_t n = z ? glen : len;
        unsigned char *c = malloc(n);
        for (int it = 0; it < 2000; it++) {
            memcpy(c, src, n);
            size_t span = it % 2 ? n : (n < 24 ? n : 24); /* half the flips hit the header */
            int nflip = 1 + (int)(trng_u64(&r) % 4);
            for (int k = 0; k < nflip; k++) c[trng_u64(&r) % span] = (unsigned char)trng_u64(&r);
            octav_idx x;
            octav_clear_error();
            octav_status st = octav_idx_read_mem(c, n, &x);
            if (st == OCTAV_OK) {
                ok++;
                int64_t numel = 1;
                for (int i = 0; i < x.ndim; i++) numel *= x.dim[i];
                CHECK(x.ndim >= 1 && x.ndim <= 4 && x.data != NULL && numel <= (int64_t)len);
                octav_idx_free(&x);
            } else {
                CHECK(st == OCTAV_EFORMAT || st == OCTAV_EUNSUPPORTED);
                CHECK(x.data == NULL && octav_last_error()[0] != '\0');
            }
            total++;
        }
        free(c);
    }
    CHECK(ok > 0 && ok < total);
    free(g);
    free(b);
}

/* ---- MNIST-style datasets ------------------------------------------------- */

/* images: n x h x w pattern bytes; labels: (i * 3) % 10 (max 9 for n >= 4). */
static void write_mnist_pair(const char *ipath, const char *lpath, uint32_t n, uint32_t nl,
                             uint32_t h, uint32_t w, int gz_images, int gz_labels) {
    uint32_t idims[3] = {n, h, w}, ldims[1] = {nl};
    unsigned char *lab = malloc(nl + 1);
    for (uint32_t i = 0; i < nl; i++) lab[i] = (unsigned char)((i * 3) % 10);
    size_t ilen, llen;
    unsigned char *ib = make_idx(0x08, 3, idims, NULL, &ilen);
    unsigned char *lb = make_idx(0x08, 1, ldims, lab, &llen);
    if (gz_images) write_gz(ipath, ib, ilen);
    else write_plain(ipath, ib, ilen);
    if (gz_labels) write_gz(lpath, lb, llen);
    else write_plain(lpath, lb, llen);
    free(ib);
    free(lb);
    free(lab);
}

static void check_mnist_pair(const octav_dataset *ds, int64_t n, int64_t h, int64_t w) {
    CHECK_EQ_INT(ds->n, n);
    CHECK_EQ_INT(ds->c, 1);
    CHECK_EQ_INT(ds->h, h);
    CHECK_EQ_INT(ds->w, w);
    CHECK_EQ_INT(ds->nclasses, n >= 4 ? 10 : (n - 1) * 3 + 1);
    if (ds->n != n || ds->h != h || ds->w != w) return;
    size_t numel = (size_t)(n * h * w);
    float *ref = malloc(numel * sizeof(float));
    for (size_t i = 0; i < numel; i++) ref[i] = (float)(unsigned char)(i * 37 + 11) / 255.0f;
    check_bits(ds->images, ref, (int64_t)numel, "images");
    free(ref);
    for (int64_t i = 0; i < n; i++) CHECK_EQ_INT(ds->labels[i], (i * 3) % 10);
    CHECK(ds->images[0] >= 0.0f);
}

static void test_dataset_idx(void) {
    char ip[128], lp[128];
    path_in(ip, sizeof ip, "img.idx");
    path_in(lp, sizeof lp, "lab.idx");
    for (int z = 0; z < 4; z++) {
        write_mnist_pair(ip, lp, 12, 12, 5, 7, z & 1, z >> 1);
        octav_dataset ds;
        octav_status st = octav_dataset_load_idx(ip, lp, &ds);
        CHECK_MSG(st == OCTAV_OK, "%s", octav_last_error());
        if (st == OCTAV_OK) check_mnist_pair(&ds, 12, 5, 7);
        octav_dataset_free(&ds);
        CHECK(ds.images == NULL && ds.labels == NULL && ds.n == 0);
    }
    /* Pixel 0 and 255 map to exactly 0 and 1. */
    uint32_t d3[3] = {1, 1, 2}, d1[1] = {1};
    unsigned char px[2] = {0, 255}, l0[1] = {0};
    size_t ilen, llen;
    unsigned char *ib = make_idx(8, 3, d3, px, &ilen), *lb = make_idx(8, 1, d1, l0, &llen);
    write_plain(ip, ib, ilen);
    write_plain(lp, lb, llen);
    octav_dataset ds;
    CHECK(octav_dataset_load_idx(ip, lp, &ds) == OCTAV_OK);
    CHECK(ds.images && ds.images[0] == 0.0f && ds.images[1] == 1.0f && ds.nclasses == 1);
    octav_dataset_free(&ds);
    free(ib);
    free(lb);
}

static void test_dataset_idx_errors(void) {
    char ip[128], lp[128], missing[128];
    path_in(ip, sizeof ip, "img.idx");
    path_in(lp, sizeof lp, "lab.idx");
    path_in(missing, sizeof missing, "no-such-file");
    octav_dataset ds;
    /* Counts differ: the message names both files and both counts. */
    write_mnist_pair(ip, lp, 5, 4, 3, 3, 0, 1);
    CHECK(octav_dataset_load_idx(ip, lp, &ds) == OCTAV_EFORMAT);
    CHECK_MSG(has(ip) && has(lp) && has("5 images") && has("4 labels"), "'%s'", octav_last_error());
    CHECK(ds.images == NULL && ds.labels == NULL);
    /* Swapped files: wrong numbers of dimensions. */
    write_mnist_pair(ip, lp, 5, 5, 3, 3, 0, 0);
    CHECK(octav_dataset_load_idx(lp, ip, &ds) == OCTAV_EFORMAT && has("dimension"));
    CHECK(octav_dataset_load_idx(ip, ip, &ds) == OCTAV_EFORMAT && has("labels must have 1"));
    CHECK(octav_dataset_load_idx(lp, lp, &ds) == OCTAV_EFORMAT && has("images must have 3"));
    /* No images. */
    write_mnist_pair(ip, lp, 0, 0, 3, 3, 0, 0);
    CHECK(octav_dataset_load_idx(ip, lp, &ds) == OCTAV_EEMPTY && octav_last_error()[0]);
    write_mnist_pair(ip, lp, 2, 2, 0, 3, 0, 0);
    CHECK(octav_dataset_load_idx(ip, lp, &ds) == OCTAV_EEMPTY && octav_last_error()[0]);
    /* Missing files. */
    CHECK(octav_dataset_load_idx(missing, lp, &ds) == OCTAV_ENOTFOUND && has(missing));
    CHECK(octav_dataset_load_idx(ip, missing, &ds) == OCTAV_ENOTFOUND && has(missing));
    octav_idx x;
    CHECK(octav_idx_read(missing, &x) == OCTAV_ENOTFOUND && has(missing));
    /* A directory is not an IDX file. */
    CHECK(octav_idx_read(g_dir, &x) == OCTAV_EIO && octav_last_error()[0]);
    CHECK(octav_dataset_load_idx(NULL, lp, &ds) == OCTAV_EINVAL);
    CHECK(octav_dataset_load_idx(ip, lp, NULL) == OCTAV_EINVAL);
    /* A corrupt images file: the reader's message, prefixed with its path. */
    write_mnist_pair(ip, lp, 5, 5, 3, 3, 0, 0);
    size_t len;
    unsigned char *b = slurp(ip, &len);
    write_plain(ip, b, len - 1);
    CHECK(octav_dataset_load_idx(ip, lp, &ds) == OCTAV_EFORMAT && has(ip) && has("truncated"));
    free(b);
}

static void test_mnist_dir(void) {
    char sub[128], ip[192], lp[192];
    path_in(sub, sizeof sub, "mnist");
    CHECK(mkdir(sub, 0700) == 0);
    snprintf(ip, sizeof ip, "%s/train-images-idx3-ubyte.gz", sub);
    snprintf(lp, sizeof lp, "%s/train-labels-idx1-ubyte", sub);
    write_mnist_pair(ip, lp, 9, 9, 4, 4, 1, 0);
    octav_dataset ds;
    octav_status st = octav_dataset_load_mnist_dir(sub, 1, &ds);
    CHECK_MSG(st == OCTAV_OK, "%s", octav_last_error());
    if (st == OCTAV_OK) check_mnist_pair(&ds, 9, 4, 4);
    octav_dataset_free(&ds);
    /* A trailing slash on the directory. */
    char slash[192];
    snprintf(slash, sizeof slash, "%s/", sub);
    CHECK(octav_dataset_load_mnist_dir(slash, 1, &ds) == OCTAV_OK);
    octav_dataset_free(&ds);
    /* The test split is missing: ENOTFOUND naming the path. */
    CHECK(octav_dataset_load_mnist_dir(sub, 0, &ds) == OCTAV_ENOTFOUND);
    CHECK_MSG(has(sub) && has("t10k-images-idx3-ubyte"), "'%s'", octav_last_error());
    /* Only the labels are missing. */
    snprintf(ip, sizeof ip, "%s/t10k-images-idx3-ubyte", sub);
    snprintf(lp, sizeof lp, "%s/unused", sub);
    write_mnist_pair(ip, lp, 3, 3, 2, 2, 0, 0);
    CHECK(octav_dataset_load_mnist_dir(sub, 0, &ds) == OCTAV_ENOTFOUND);
    CHECK_MSG(has("t10k-labels-idx1-ubyte") && !has("images"), "'%s'", octav_last_error());
    CHECK(ds.images == NULL);
    char nodir[192];
    snprintf(nodir, sizeof nodir, "%s/absent", sub);
    CHECK(octav_dataset_load_mnist_dir(nodir, 1, &ds) == OCTAV_ENOTFOUND && has(nodir));
    CHECK(octav_dataset_load_mnist_dir(NULL, 1, &ds) == OCTAV_EINVAL);
}

/* ---- CIFAR-10 ------------------------------------------------------------- */

static unsigned char *make_cifar(int nrec, uint64_t seed) {
    unsigned char *b = malloc((size_t)nrec * CIFAR_REC + 1);
    trng r = {seed, 0, 0};
    for (int i = 0; i < nrec; i++) {
        b[(size_t)i * CIFAR_REC] = (unsigned char)(trng_u64(&r) % 10);
        for (int j = 1; j < CIFAR_REC; j++) b[(size_t)i * CIFAR_REC + j] = (unsigned char)trng_u64(&r);
    }
    return b;
}

static void test_cifar(void) {
    char f1[128], f2[128];
    path_in(f1, sizeof f1, "data_batch_1.bin");
    path_in(f2, sizeof f2, "data_batch_2.bin");
    unsigned char *a = make_cifar(2, 1), *b = make_cifar(3, 2);
    write_plain(f1, a, 2 * CIFAR_REC);
    write_plain(f2, b, 3 * CIFAR_REC);
    const char *files[2] = {f1, f2};
    octav_dataset ds;
    octav_status st = octav_dataset_load_cifar10(files, 2, &ds);
    CHECK_MSG(st == OCTAV_OK, "%s", octav_last_error());
    if (st == OCTAV_OK) {
        CHECK(ds.n == 5 && ds.c == 3 && ds.h == 32 && ds.w == 32 && ds.nclasses == 10);
        float *ref = malloc(5 * 3072 * sizeof(float));
        for (int i = 0; i < 5; i++) {
            const unsigned char *rec = i < 2 ? a + i * CIFAR_REC : b + (i - 2) * CIFAR_REC;
            CHECK_EQ_INT(ds.labels[i], rec[0]);
            for (int j = 0; j < 3072; j++) ref[i * 3072 + j] = (float)rec[1 + j] / 255.0f;
        }
        check_bits(ds.images, ref, 5 * 3072, "cifar images");
        /* CHW: the green value of pixel (y=2, x=5) of image 3 is byte 1 + 1024 + 2*32 + 5. */
        CHECK(ds.images[(3 * 3 + 1) * 1024 + 2 * 32 + 5] == (float)b[CIFAR_REC + 1 + 1024 + 69] / 255.0f);
        free(ref);
    }
    octav_dataset_free(&ds);
    CHECK(ds.images == NULL);
    free(a);
    free(b);
}

static void test_cifar_errors(void) {
    char f1[128], f2[128], missing[128];
    path_in(f1, sizeof f1, "c1.bin");
    path_in(f2, sizeof f2, "c2.bin");
    path_in(missing, sizeof missing, "no_batch.bin");
    unsigned char *a = make_cifar(2, 3);
    write_plain(f1, a, 2 * CIFAR_REC);
    const char *files[2] = {f1, f2};
    octav_dataset ds;
    /* Lengths that are not whole records: the message names the file and length. */
    static const size_t lens[] = {1, 1000, CIFAR_REC - 1, CIFAR_REC + 1, 2 * CIFAR_REC - 1};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        write_plain(f2, a, lens[i]);
        char num[32];
        snprintf(num, sizeof num, "%zu", lens[i]);
        CHECK(octav_dataset_load_cifar10(files, 2, &ds) == OCTAV_EFORMAT);
        CHECK_MSG(has(f2) && has(num) && has("3073"), "'%s'", octav_last_error());
        CHECK(ds.images == NULL);
    }
    /* A label of 10 in the second record of the second file. */
    unsigned char *bad = make_cifar(2, 4);
    bad[CIFAR_REC] = 10;
    write_plain(f2, bad, 2 * CIFAR_REC);
    CHECK(octav_dataset_load_cifar10(files, 2, &ds) == OCTAV_EFORMAT);
    CHECK_MSG(has(f2) && has("label 10") && has("record 1"), "'%s'", octav_last_error());
    bad[CIFAR_REC] = 255;
    write_plain(f2, bad, 2 * CIFAR_REC);
    CHECK(octav_dataset_load_cifar10(files, 2, &ds) == OCTAV_EFORMAT && has("label 255"));
    /* Empty: no records at all; an empty file beside others is fine. */
    write_plain(f2, a, 0);
    CHECK(octav_dataset_load_cifar10(files + 1, 1, &ds) == OCTAV_EEMPTY && octav_last_error()[0]);
    CHECK(octav_dataset_load_cifar10(files, 2, &ds) == OCTAV_OK && ds.n == 2);
    octav_dataset_free(&ds);
    /* Missing file, bad arguments, a directory. */
    const char *miss[2] = {f1, missing};
    CHECK(octav_dataset_load_cifar10(miss, 2, &ds) == OCTAV_ENOTFOUND && has(missing));
    CHECK(octav_dataset_load_cifar10(files, 0, &ds) == OCTAV_EINVAL && octav_last_error()[0]);
    CHECK(octav_dataset_load_cifar10(NULL, 1, &ds) == OCTAV_EINVAL);
    const char *withnull[2] = {f1, NULL};
    CHECK(octav_dataset_load_cifar10(withnull, 2, &ds) == OCTAV_EINVAL);
    const char *dir[1] = {g_dir};
    CHECK(octav_dataset_load_cifar10(dir, 1, &ds) == OCTAV_EFORMAT && has(g_dir));
    CHECK(octav_dataset_load_cifar10(files, 1, NULL) == OCTAV_EINVAL);
    free(bad);
    free(a);
}

/* ---- allocation failures --------------------------------------------------- */

enum { LOAD_IDX_PLAIN, LOAD_IDX_GZ, LOAD_DATASET, LOAD_MNIST_DIR, LOAD_CIFAR, NLOADS };

static void test_allocation_failures(void) {
    char sub[128], ip[192], lp[192], cf[128];
    path_in(sub, sizeof sub, "alloc");
    CHECK(mkdir(sub, 0700) == 0);
    snprintf(ip, sizeof ip, "%s/t10k-images-idx3-ubyte.gz", sub);
    snprintf(lp, sizeof lp, "%s/t10k-labels-idx1-ubyte.gz", sub);
    write_mnist_pair(ip, lp, 40, 40, 28, 28, 1, 1);
    path_in(cf, sizeof cf, "alloc_batch.bin");
    unsigned char *c = make_cifar(3, 5);
    write_plain(cf, c, 3 * CIFAR_REC);
    free(c);
    size_t len, glen;
    uint32_t dims[3] = {4, 256, 256}; /* gzip: the buffer grows 65536 -> 262144 */
    unsigned char *b = make_idx(8, 3, dims, NULL, &len);
    unsigned char *g = gz_bytes(b, len, &glen);
    const char *cfiles[1] = {cf};

    for (int which = 0; which < NLOADS; which++) {
        int reached_ok = 0, failures = 0;
        for (g_fail_at = 0; g_fail_at < 100 && !reached_ok; g_fail_at++) {
            g_count = 0;
            g_live = 0;
            octav_set_allocator(failing_alloc, counting_free, NULL);
            octav_idx x;
            octav_dataset ds;
            memset(&x, 0, sizeof x);
            memset(&ds, 0, sizeof ds);
            octav_status st;
            switch (which) {
            case LOAD_IDX_PLAIN: st = octav_idx_read_mem(b, len, &x); break;
            case LOAD_IDX_GZ: st = octav_idx_read_mem(g, glen, &x); break;
            case LOAD_DATASET: st = octav_dataset_load_idx(ip, lp, &ds); break;
            case LOAD_MNIST_DIR: st = octav_dataset_load_mnist_dir(sub, 0, &ds); break;
            default: st = octav_dataset_load_cifar10(cfiles, 1, &ds); break;
            }
            octav_idx_free(&x);
            octav_dataset_free(&ds);
            octav_set_allocator(NULL, NULL, NULL);
            CHECK_MSG(st == OCTAV_OK || st == OCTAV_ENOMEM, "load %d, failing allocation %d: status %d (%s)",
                      which, g_fail_at, st, octav_last_error());
            CHECK_MSG(g_live == 0, "load %d, failing allocation %d: %d blocks leaked", which, g_fail_at,
                      g_live);
            if (st == OCTAV_OK) reached_ok = 1;
            else failures++;
        }
        CHECK_MSG(reached_ok && failures >= 1, "load %d: ok %d after %d failures", which, reached_ok,
                  failures);
    }
    free(g);
    free(b);
}

/* ---- Debian's Fashion-MNIST, when installed -------------------------------- */

static void test_fashion_mnist(void) {
    struct stat sb;
    if (stat(FASHION_DIR, &sb) != 0) return;
    octav_dataset ds;
    octav_status st = octav_dataset_load_mnist_dir(FASHION_DIR, 0, &ds);
    CHECK_MSG(st == OCTAV_OK, "%s", octav_last_error());
    if (st != OCTAV_OK) return;
    CHECK(ds.n == 10000 && ds.c == 1 && ds.h == 28 && ds.w == 28 && ds.nclasses == 10);
    int bad_label = 0, bad_pixel = 0;
    for (int64_t i = 0; i < ds.n; i++) bad_label += ds.labels[i] < 0 || ds.labels[i] > 9;
    for (int64_t i = 0; i < ds.n * 28 * 28; i++) bad_pixel += !(ds.images[i] >= 0.0f && ds.images[i] <= 1.0f);
    CHECK_EQ_INT(bad_label, 0);
    CHECK_EQ_INT(bad_pixel, 0);
    /* The first label is byte 8 of the decompressed label file (gzread reads
     * plain files too). */
    char p[256];
    snprintf(p, sizeof p, FASHION_DIR "/t10k-labels-idx1-ubyte");
    if (stat(p, &sb) != 0) snprintf(p, sizeof p, FASHION_DIR "/t10k-labels-idx1-ubyte.gz");
    gzFile gf = gzopen(p, "rb");
    CHECK(gf != NULL);
    if (gf) {
        unsigned char head[9];
        CHECK(gzread(gf, head, sizeof head) == (int)sizeof head);
        CHECK_EQ_INT(ds.labels[0], head[8]);
        gzclose(gf);
    }
    octav_dataset_free(&ds);
}

/* ---- temporary directory --------------------------------------------------- */

static void remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) remove_tree(p);
        else unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/octav_test_datasets.XXXXXX");
    if (!mkdtemp(g_dir)) {
        fprintf(stderr, "cannot create a temporary directory\n");
        return 1;
    }
    RUN(test_idx_roundtrip);
    RUN(test_idx_gzip_members);
    RUN(test_idx_truncations);
    RUN(test_idx_trailing_data);
    RUN(test_idx_bad_headers);
    RUN(test_idx_fuzz);
    RUN(test_dataset_idx);
    RUN(test_dataset_idx_errors);
    RUN(test_mnist_dir);
    RUN(test_cifar);
    RUN(test_cifar_errors);
    RUN(test_allocation_failures);
    RUN(test_fashion_mnist);
    remove_tree(g_dir);
    return TEST_SUMMARY();
}
