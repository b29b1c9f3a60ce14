/* langid.c -- the word-list language-identification corpus (langid.h).
 *
 * Each list is read whole, converted to UTF-8 when it is Latin-1, and cut
 * into lines in place. Words are identified by a seeded 64-bit hash of
 * their UTF-8 bytes (FNV-1a mixed by octav_hash_u64); sorting a list by
 * that hash (a radix sort) both puts exact duplicates side by side and
 * orders the deterministic sample (the smallest hashes). Cross-list
 * duplicates are found with an open-addressing table of the sampled
 * words, probed with every word of every other list. Bytes are compared
 * whenever hashes match, so a hash collision never merges two different
 * words. */
#include "octav/langid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "octav/io.h"
#include "octav/nn.h"

typedef struct {
    const char *name, *file, *package;
} lang_src;

static const lang_src SOURCES[] = {
    {"english", "american-english", "wamerican"}, {"french", "french", "wfrench"},
    {"german", "ngerman", "wngerman"},            {"italian", "italian", "witalian"},
    {"spanish", "spanish", "wspanish"},           {"portuguese", "portuguese", "wportuguese"},
    {"dutch", "dutch", "wdutch"},                 {"swedish", "swedish", "wswedish"},
    {"polish", "polish", "wpolish"},              {"danish", "danish", "wdanish"},
    {"norwegian", "bokmaal", "wnorwegian"},       {"catalan", "catalan", "wcatalan"},
};
#define NSOURCES ((int)(sizeof SOURCES / sizeof *SOURCES))

const char *const octav_langid_names[] = {"english", "french", "german", "italian", "spanish", "portuguese",
                                          "dutch", "swedish", "polish", "danish", "norwegian", "catalan", NULL};

static const lang_src *find_source(const char *name) {
    for (int i = 0; i < NSOURCES; i++)
        if (strcmp(SOURCES[i].name, name) == 0) return &SOURCES[i];
    return NULL;
}
const char *octav_langid_file(const char *l) { const lang_src *s = find_source(l); return s ? s->file : NULL; }
const char *octav_langid_package(const char *l) { const lang_src *s = find_source(l); return s ? s->package : NULL; }

octav_langid_config octav_langid_default(void) {
    octav_langid_config c = {.dir = "/usr/share/dict", .languages = NULL, .words_per_lang = 20000,
                             .max_len = 24, .seed = 0, .val_fraction = 0.1, .test_fraction = 0.1};
    return c;
}

/* ---- UTF-8 ----------------------------------------------------------------------- */
/* Decodes one codepoint at p (< end); returns its length, 0 if invalid
 * (overlong, surrogate, beyond U+10FFFF, truncated). */
static int utf8_next(const unsigned char *p, const unsigned char *end, uint32_t *cp) {
    unsigned c = p[0];
    if (c < 0x80) { *cp = c; return 1; }
    int n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
    if (!n || c > 0xF4 || end - p < n) return 0;
    uint32_t v = c & (0x7F >> n);
    for (int i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (p[i] & 0x3F);
    }
    if ((n == 3 && v < 0x800) || (n == 4 && (v < 0x10000 || v > 0x10FFFF)) || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return n;
}

static int valid_utf8(const unsigned char *p, size_t n) {
    const unsigned char *end = p + n;
    uint32_t cp;
    while (p < end) {
        int k = utf8_next(p, end, &cp);
        if (!k) return 0;
        p += k;
    }
    return 1;
}

static size_t utf8_put(uint32_t cp, unsigned char *o) {
    if (cp < 0x80) { o[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) { o[0] = (unsigned char)(0xC0 | cp >> 6); o[1] = (unsigned char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | cp >> 12); o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | cp >> 18); o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ---- one list ---------------------------------------------------------------------- */
typedef struct {
    uint64_t h;       /* selection hash of the bytes */
    uint32_t off, len;
} word;

typedef struct {
    unsigned char *text;   /* UTF-8 (widened from Latin-1), the file's lines */
    word *w;
    int64_t n;             /* distinct words, sorted by h */
    int64_t nsel;          /* the first nsel are the sample */
    uint8_t *dup;          /* [nsel] in another list       */
} wlist;

static uint64_t word_hash(uint64_t seed, const unsigned char *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return octav_hash_u64(seed, h);
}

static int same_bytes(const wlist *a, const word *x, const wlist *b, const word *y) {
    return x->h == y->h && x->len == y->len && memcmp(a->text + x->off, b->text + y->off, x->len) == 0;
}

/* Stable LSD radix sort by h, 8 passes of 8 bits (the result lands back in
 * w; tmp holds n words). qsort spent 60% of a full load comparing the 4.3M
 * Polish words; this is linear. Words with equal h stay in file order. */
static void sort_by_hash(word *w, word *tmp, int64_t n) {
    enum { PASSES = 8 };
    int64_t cnt[PASSES][256];
    memset(cnt, 0, sizeof cnt);
    for (int64_t i = 0; i < n; i++)
        for (int b = 0; b < PASSES; b++) cnt[b][(w[i].h >> (8 * b)) & 0xFF]++;
    for (int b = 0; b < PASSES; b++) {
        int64_t at = 0;
        for (int k = 0; k < 256; k++) { int64_t c = cnt[b][k]; cnt[b][k] = at; at += c; }
        for (int64_t i = 0; i < n; i++) tmp[cnt[b][(w[i].h >> (8 * b)) & 0xFF]++] = w[i];
        word *t = w; w = tmp; tmp = t;
    }
}

/* Keeps the first of each exact duplicate. Duplicates share a hash, so they
 * are in one run of equal h; each new word is compared with the words kept
 * from its run (a run of one unless two different words collide). */
static int64_t drop_duplicates(const wlist *l, word *w, int64_t n) {
    int64_t m = 0, run = 0;
    for (int64_t i = 0; i < n; i++) {
        if (m == 0 || w[m - 1].h != w[i].h) run = m;
        int dup = 0;
        for (int64_t j = run; j < m && !dup; j++) dup = same_bytes(l, &w[j], l, &w[i]);
        if (!dup) w[m++] = w[i];
    }
    return m;
}

/* Bytes of a line as stored in the file: a Latin-1 list was widened to
 * UTF-8, one byte per codepoint. */
static size_t file_bytes(const unsigned char *p, size_t len, int utf8) {
    if (utf8) return len;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) n += (p[i] & 0xC0) != 0x80;
    return n;
}

/* Cuts text into words (offsets into text), checking every line. */
static octav_status split_lines(const char *path, const unsigned char *text, size_t n, int utf8, word *w,
                                int64_t *nw, uint64_t seed) {
    int64_t line = 0;
    size_t start = 0;
    *nw = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && text[i] != '\n') continue;
        line++;
        size_t len = i - start;
        if (len && text[start + len - 1] == '\r') len--;
        for (size_t k = 0; k < len; k++)
            if (text[start + k] < 0x20 || text[start + k] == 0x7F)
                return octav_set_error(OCTAV_EFORMAT, "%s:%lld: control character 0x%02x in a word", path,
                                       (long long)line, text[start + k]);
        /* UTF-8 length bounds the file's, so only long lines are recounted */
        if (len > OCTAV_LANGID_MAX_WORD && file_bytes(text + start, len, utf8) > OCTAV_LANGID_MAX_WORD)
            return octav_set_error(OCTAV_EFORMAT, "%s:%lld: a word of %zu bytes (at most %d)", path,
                                   (long long)line, file_bytes(text + start, len, utf8), OCTAV_LANGID_MAX_WORD);
        if (len) {
            w[*nw].off = (uint32_t)start;
            w[*nw].len = (uint32_t)len;
            w[*nw].h = word_hash(seed, text + start, len);
            (*nw)++;
        }
        start = i + 1;
    }
    return OCTAV_OK;
}

/* Reads the list, widened to UTF-8 when it is not valid UTF-8 (Latin-1). */
static octav_status read_text(const char *path, const lang_src *src, unsigned char **text, size_t *n, int *utf8) {
    unsigned char *raw;
    octav_status st = octav_read_file(path, &raw, n);
    if (st == OCTAV_ENOMEM) return st;
    if (st) {   /* copied: octav_last_error() is the buffer octav_set_error writes */
        char why[400];
        snprintf(why, sizeof why, "%s", octav_last_error());
        return octav_set_error(OCTAV_ENOTFOUND, "%s (the %s word list: apt-get install %s)", why, src->name,
                               src->package);
    }
    *utf8 = valid_utf8(raw, *n);
    *text = raw;
    if (*utf8) return OCTAV_OK;
    *text = *n < SIZE_MAX / 2 ? octav_malloc(2 * *n + 1) : NULL;   /* every byte is its codepoint */
    if (!*text) { octav_free(raw); return octav_set_error(OCTAV_ENOMEM, "%s: out of memory", path); }
    size_t o = 0;
    for (size_t i = 0; i < *n; i++) o += utf8_put(raw[i], *text + o);
    octav_free(raw);
    *n = o;
    return OCTAV_OK;
}

static octav_status read_list(const char *dir, const lang_src *src, uint64_t seed, wlist *out, char *encoding) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, src->file);
    unsigned char *text = NULL;
    size_t n = 0;
    int utf8 = 0;
    octav_status st = read_text(path, src, &text, &n, &utf8);
    if (st) return st;
    snprintf(encoding, 12, "%s", utf8 ? "utf-8" : "latin-1");
    if (n > UINT32_MAX) {   /* word offsets are 32-bit */
        octav_free(text);
        return octav_set_error(OCTAV_EFORMAT, "%s: %zu bytes, more than a word list's 4 GiB", path, n);
    }
    int64_t lines = 1;
    for (size_t i = 0; i < n; i++) lines += text[i] == '\n';
    word *w = octav_malloc((size_t)lines * sizeof *w), *tmp = octav_malloc((size_t)lines * sizeof *tmp);
    int64_t nw = 0;
    st = !w || !tmp ? octav_set_error(OCTAV_ENOMEM, "%s: out of memory", path)
                    : split_lines(path, text, n, utf8, w, &nw, seed);
    if (st) { octav_free(text); octav_free(w); octav_free(tmp); return st; }
    sort_by_hash(w, tmp, nw);
    octav_free(tmp);
    out->text = text;
    out->w = w;
    out->n = drop_duplicates(out, w, nw);
    return OCTAV_OK;
}

/* ---- the sampled-word table ----------------------------------------------------------- */
typedef struct {
    int32_t lang;     /* -1 empty */
    int32_t idx;      /* index in its list */
} slot;

static int64_t table_find(const slot *t, uint64_t mask, const wlist *lists, const wlist *l, const word *w,
                          int64_t from) {
    for (uint64_t i = from >= 0 ? (uint64_t)from : w->h & mask;; i = (i + 1) & mask) {
        if (t[i].lang < 0) return -1 - (int64_t)i;   /* empty slot: not present */
        const wlist *o = &lists[t[i].lang];
        if (same_bytes(o, &o->w[t[i].idx], l, w)) return (int64_t)i;
    }
}

/* ---- masking ------------------------------------------------------------------------- */
void octav_langid_mask(const int32_t *tokens, const int64_t *sample_id, int64_t n, int max_len, int vocab,
                       double prob, uint64_t seed, int32_t *out_tokens, int32_t *out_labels) {
    for (int64_t s = 0; s < n; s++) {
        const int32_t *t = tokens + s * max_len;
        int32_t *o = out_tokens + s * max_len, *lab = out_labels + s * max_len;
        uint64_t key = octav_hash_u64(seed, (uint64_t)sample_id[s]);
        int cand = 0, chosen = 0;
        for (int p = 0; p < max_len; p++) {
            o[p] = t[p];
            lab[p] = -1;
            if (t[p] <= OCTAV_TOK_MASK) continue;   /* PAD, CLS, MASK */
            cand++;
            if (octav_hash_uniform(key, (uint64_t)p * 4) < prob) { lab[p] = t[p]; chosen++; }
        }
        if (cand && !chosen) {   /* at least one: the candidate picked by the hash */
            int pick = (int)(octav_hash_u64(key, 1ull << 40) % (uint64_t)cand);
            for (int p = 0; p < max_len; p++) {
                if (t[p] <= OCTAV_TOK_MASK) continue;
                if (pick-- == 0) { lab[p] = t[p]; break; }
            }
        }
        for (int p = 0; p < max_len; p++) {
            if (lab[p] < 0) continue;
            double u = octav_hash_uniform(key, (uint64_t)p * 4 + 1);
            if (u < 0.8) o[p] = OCTAV_TOK_MASK;
            else if (u < 0.9 && vocab > OCTAV_TOK_FIRST)
                o[p] = OCTAV_TOK_FIRST + (int32_t)(octav_hash_u64(key, (uint64_t)p * 4 + 2) %
                                                   (uint64_t)(vocab - OCTAV_TOK_FIRST));
        }
    }
}

/* ---- loading --------------------------------------------------------------------------- */
void octav_langid_free(octav_langid *d) {
    if (!d) return;
    octav_free(d->codepoint);
    for (int s = 0; s < 3; s++) { octav_free(d->tokens[s]); octav_free(d->labels[s]); octav_free(d->length[s]); }
    memset(d, 0, sizeof *d);
}

static octav_status parse_languages(const char *spec, const lang_src **out, int *nout) {
    *nout = 0;
    if (!spec || !*spec) {
        for (int i = 0; i < NSOURCES; i++) out[(*nout)++] = &SOURCES[i];
        return OCTAV_OK;
    }
    const char *p = spec;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char name[32];
        if (len == 0 || len >= sizeof name)
            return octav_set_error(OCTAV_EINVAL, "languages '%s': empty or too long name", spec);
        memcpy(name, p, len);
        name[len] = 0;
        const lang_src *s = find_source(name);
        if (!s)
            return octav_set_error(OCTAV_EINVAL, "language '%s': expected one of english, french, german, italian, "
                                   "spanish, portuguese, dutch, swedish, polish, danish, norwegian, catalan", name);
        for (int i = 0; i < *nout; i++)
            if (out[i] == s) return octav_set_error(OCTAV_EINVAL, "language '%s' given twice", name);
        if (*nout >= OCTAV_LANGID_MAX_LANGS) return octav_set_error(OCTAV_EINVAL, "too many languages");
        out[(*nout)++] = s;
        p += len;
        if (*p == ',') p++;
    }
    if (*nout < 2) return octav_set_error(OCTAV_EINVAL, "languages '%s': need at least two", spec);
    return OCTAV_OK;
}

/* Codepoints of one word into ids (vocab lookup); returns tokens used. */
static int encode(const unsigned char *p, uint32_t len, const int32_t *id_of, int max_len, int32_t *tok,
                  int64_t *unknown, int *truncated) {
    const unsigned char *end = p + len;
    int t = 0;
    tok[t++] = OCTAV_TOK_CLS;
    *truncated = 0;
    while (p < end) {
        uint32_t cp = 0;
        int k = utf8_next(p, end, &cp);   /* valid: checked or produced by us */
        p += k ? k : 1;
        if (t == max_len) { *truncated = 1; break; }
        int32_t id = id_of[cp];
        if (id < 0) { id = OCTAV_TOK_UNK; (*unknown)++; }
        tok[t++] = id;
    }
    int used = t;
    while (t < max_len) tok[t++] = OCTAV_TOK_PAD;
    return used;
}

/* The split of a word from a second hash of its selection hash. */
static int split_of(const octav_langid_config *cfg, uint64_t split_seed, uint64_t h) {
    double u = (double)(octav_hash_u64(split_seed, h) >> 11) * 0x1.0p-53;
    return u < cfg->test_fraction ? OCTAV_SPLIT_TEST
         : u < cfg->test_fraction + cfg->val_fraction ? OCTAV_SPLIT_VAL : OCTAV_SPLIT_TRAIN;
}

octav_status octav_langid_load(const octav_langid_config *cfg_in, octav_langid *d) {
    if (!d) return octav_set_error(OCTAV_EINVAL, "langid: NULL output");
    memset(d, 0, sizeof *d);
    octav_langid_config cfg = cfg_in ? *cfg_in : octav_langid_default();
    if (!cfg.dir) cfg.dir = "/usr/share/dict";
    if (cfg.max_len < 2 || cfg.max_len > 4096 || cfg.words_per_lang < 0 || !(cfg.val_fraction >= 0) ||
        !(cfg.test_fraction >= 0) || !(cfg.val_fraction + cfg.test_fraction < 1))
        return octav_set_error(OCTAV_EINVAL, "langid: max_len %d (2..4096), words_per_lang %lld (>= 0), "
                               "val %g + test %g (< 1)", cfg.max_len, (long long)cfg.words_per_lang,
                               cfg.val_fraction, cfg.test_fraction);
    const lang_src *src[OCTAV_LANGID_MAX_LANGS];
    int nl;
    octav_status st = parse_languages(cfg.languages, src, &nl);
    if (st) return st;
    wlist lists[OCTAV_LANGID_MAX_LANGS];
    memset(lists, 0, sizeof lists);
    slot *table = NULL;
    int32_t *id_of = NULL;
    uint8_t *seen = NULL;
    d->nlang = nl;
    d->max_len = cfg.max_len;
    for (int l = 0; l < nl; l++) {
        snprintf(d->lang[l], sizeof d->lang[l], "%s", src[l]->name);
        if ((st = read_list(cfg.dir, src[l], cfg.seed, &lists[l], d->encoding[l]))) goto fail;
        wlist *w = &lists[l];
        d->read[l] = w->n;
        w->nsel = cfg.words_per_lang && cfg.words_per_lang < w->n ? cfg.words_per_lang : w->n;
        w->dup = octav_calloc((size_t)(w->nsel ? w->nsel : 1), 1);
        if (!w->dup) { st = octav_set_error(OCTAV_ENOMEM, "langid: out of memory"); goto fail; }
    }
    /* table of the sampled words, then every list probes it */
    int64_t total = 0;
    for (int l = 0; l < nl; l++) total += lists[l].nsel;
    uint64_t cap = 1024;
    while (cap < 2 * (uint64_t)total) cap *= 2;
    table = octav_malloc(cap * sizeof *table);
    if (!table) { st = octav_set_error(OCTAV_ENOMEM, "langid: out of memory"); goto fail; }
    for (uint64_t i = 0; i < cap; i++) table[i].lang = -1;
    for (int l = 0; l < nl; l++)
        for (int64_t i = 0; i < lists[l].nsel; i++) {
            int64_t at = table_find(table, cap - 1, lists, &lists[l], &lists[l].w[i], -1);
            if (at >= 0) {   /* the same word sampled in an earlier language */
                lists[l].dup[i] = 1;
                lists[table[at].lang].dup[table[at].idx] = 1;
                continue;
            }
            table[-1 - at].lang = l;
            table[-1 - at].idx = (int32_t)i;
        }
    for (int l = 0; l < nl; l++)
        for (int64_t i = 0; i < lists[l].n; i++) {
            int64_t at = table_find(table, cap - 1, lists, &lists[l], &lists[l].w[i], -1);
            if (at >= 0 && table[at].lang != l) lists[table[at].lang].dup[table[at].idx] = 1;
        }
    for (int l = 0; l < nl; l++)
        for (int64_t i = 0; i < lists[l].nsel; i++) d->duplicates += lists[l].dup[i];
    /* splits; the vocabulary from the training words' codepoints */
    seen = octav_calloc(0x110000, 1);
    id_of = octav_malloc(0x110000 * sizeof *id_of);
    if (!seen || !id_of) { st = octav_set_error(OCTAV_ENOMEM, "langid: out of memory"); goto fail; }
    const uint64_t split_seed = octav_hash_u64(cfg.seed, 0x5b117ull);
    for (int l = 0; l < nl; l++) {
        const wlist *w = &lists[l];
        for (int64_t i = 0; i < w->nsel; i++) {
            if (w->dup[i]) continue;
            const word *x = &w->w[i];
            int s = split_of(&cfg, split_seed, x->h);
            d->count[s]++;
            d->kept[l]++;
            if (s != OCTAV_SPLIT_TRAIN) continue;
            const unsigned char *p = w->text + x->off, *end = p + x->len;
            while (p < end) {
                uint32_t cp = 0;
                int k = utf8_next(p, end, &cp);
                p += k ? k : 1;
                seen[cp] = 1;
            }
        }
    }
    for (int s = 0; s < 3; s++)
        if (d->count[s] == 0) {
            st = octav_set_error(OCTAV_EEMPTY, "langid: the %s split is empty (too few words or fractions of 0)",
                                 s == 0 ? "training" : s == 1 ? "validation" : "test");
            goto fail;
        }
    int vocab = OCTAV_TOK_FIRST;
    for (uint32_t cp = 0; cp < 0x110000; cp++) vocab += seen[cp];
    d->codepoint = octav_malloc((size_t)vocab * sizeof *d->codepoint);
    if (!d->codepoint) { st = octav_set_error(OCTAV_ENOMEM, "langid: out of memory"); goto fail; }
    for (int i = 0; i < OCTAV_TOK_FIRST; i++) d->codepoint[i] = -1;
    d->vocab = OCTAV_TOK_FIRST;
    for (uint32_t cp = 0; cp < 0x110000; cp++) {
        id_of[cp] = seen[cp] ? d->vocab : -1;
        if (seen[cp]) d->codepoint[d->vocab++] = (int32_t)cp;
    }
    for (int s = 0; s < 3; s++) {
        d->tokens[s] = octav_malloc((size_t)(d->count[s] * cfg.max_len) * sizeof(int32_t));
        d->labels[s] = octav_malloc((size_t)d->count[s] * sizeof(int32_t));
        d->length[s] = octav_malloc((size_t)d->count[s] * sizeof(int32_t));
        if (!d->tokens[s] || !d->labels[s] || !d->length[s]) {
            st = octav_set_error(OCTAV_ENOMEM, "langid: out of memory");
            goto fail;
        }
    }
    int64_t at[3] = {0, 0, 0};
    for (int l = 0; l < nl; l++) {
        const wlist *w = &lists[l];
        for (int64_t i = 0; i < w->nsel; i++) {
            if (w->dup[i]) continue;
            const word *x = &w->w[i];
            int s = split_of(&cfg, split_seed, x->h);
            int trunc;
            int64_t k = at[s]++;
            d->length[s][k] = encode(w->text + x->off, x->len, id_of, cfg.max_len, d->tokens[s] + k * cfg.max_len,
                                     &d->unknown[s], &trunc);
            d->labels[s][k] = l;
            d->truncated += trunc;
        }
    }
    st = OCTAV_OK;
    goto done;
fail:
    octav_langid_free(d);
done:
    for (int l = 0; l < nl; l++) { octav_free(lists[l].text); octav_free(lists[l].w); octav_free(lists[l].dup); }
    octav_free(table);
    octav_free(id_of);
    octav_free(seen);
    return st;
}

size_t octav_langid_decode(const octav_langid *d, const int32_t *tokens, char *buf, size_t cap) {
    size_t o = 0;
    if (!cap) return 0;
    for (int p = 0; p < d->max_len; p++) {
        int32_t t = tokens[p];
        if (t == OCTAV_TOK_PAD || t == OCTAV_TOK_CLS) continue;
        uint32_t cp = t == OCTAV_TOK_MASK ? '_' : t >= OCTAV_TOK_FIRST && t < d->vocab ? (uint32_t)d->codepoint[t]
                                                                                   : 0xFFFDu;
        unsigned char tmp[4];
        size_t k = utf8_put(cp, tmp);
        if (o + k >= cap) break;
        memcpy(buf + o, tmp, k);
        o += k;
    }
    buf[o] = 0;
    return o;
}
