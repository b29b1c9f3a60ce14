/* test_langid.c -- the word-list corpus: encodings (UTF-8 and Latin-1
 * lists give the same codepoints), within-list and cross-list duplicates,
 * sampling cap, deterministic disjoint splits, a vocabulary from the
 * training split only ([UNK] counted), truncation, errors naming the file
 * and package or file:line, allocation failures, the masking recipe's
 * statistics, and the real Debian lists. */
#define _POSIX_C_SOURCE 200809L
#include "octav/langid.h"
#include "test.h"
#include "test_io.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];
enum { NSPANISH = 60 };

static void put(const char *name, const char *text, size_t len) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    fwrite(text, 1, len, f);
    fclose(f);
}

/* 300 words per language over different alphabets, plus words shared by
 * english and french ("shared1", "shared2", and "café": UTF-8 in one,
 * Latin-1 in the other). german has CRLF line ends and a repeated line.
 * spanish has 60 words "x<c>yz", each with a Cyrillic letter c (U+0410 +
 * i) of its own, so a letter is in the vocabulary iff its word is in the
 * training split. */
static void make_corpus(void) {
    snprintf(dir, sizeof dir, "/tmp/octav_langid_XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    char en[8192] = "", fr[8192] = "", de[8192] = "";
    size_t ne = 0, nf = 0, nd = 0;
    for (int i = 0; i < 300; i++) {
        ne += (size_t)snprintf(en + ne, sizeof en - ne, "w%c%c%c\n", 'a' + i % 13, 'a' + (i / 13) % 13, 'a' + i / 169);
        nf += (size_t)snprintf(fr + nf, sizeof fr - nf, "\xe9%c%c%c\n", 'n' + i % 12, 'n' + (i / 12) % 12, 'n' + i / 144);
        nd += (size_t)snprintf(de + nd, sizeof de - nd, "\xc3\x9f%c%c%cx\r\n", 'a' + i % 10, 'k' + (i / 10) % 10, 'A' + i / 100);
    }
    ne += (size_t)snprintf(en + ne, sizeof en - ne, "shared1\nshared2\ncaf\xc3\xa9\n");
    nf += (size_t)snprintf(fr + nf, sizeof fr - nf, "shared1\nshared2\ncaf\xe9\n");
    nd += (size_t)snprintf(de + nd, sizeof de - nd, "\xc3\x9f" "akAx\r\n\n");   /* repeat + empty line */
    put("american-english", en, ne);
    put("french", fr, nf);
    put("ngerman", de, nd);
    char es[1024];
    size_t ns = 0;
    for (int i = 0; i < NSPANISH; i++) {
        unsigned cp = 0x410 + (unsigned)i;
        ns += (size_t)snprintf(es + ns, sizeof es - ns, "x%c%cyz\n", 0xC0 | cp >> 6, 0x80 | (cp & 0x3F));
    }
    put("spanish", es, ns);
}

static void remove_corpus(void) {
    const char *files[] = {"american-english", "french", "ngerman", "spanish", "italian", NULL};
    char path[128];
    for (int i = 0; files[i]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

static octav_langid_config cfg3(void) {
    octav_langid_config c = octav_langid_default();
    c.dir = dir;
    c.languages = "english,french,german";
    c.words_per_lang = 0;
    c.max_len = 8;
    c.val_fraction = 0.2;
    c.test_fraction = 0.2;
    return c;
}

static int cmp_word(const void *a, const void *b) { return strcmp(a, b); }

static void test_load(void) {
    octav_langid_config c = cfg3();
    octav_langid d, d2;
    CHECK_EQ_INT(octav_langid_load(&c, &d), OCTAV_OK);
    CHECK_EQ_INT(d.nlang, 3);
    CHECK(strcmp(d.encoding[0], "utf-8") == 0 && strcmp(d.encoding[1], "latin-1") == 0 &&
          strcmp(d.encoding[2], "utf-8") == 0);
    CHECK_EQ_INT(d.read[0], 303);
    CHECK_EQ_INT(d.read[1], 303);
    CHECK_EQ_INT(d.read[2], 300);
    CHECK_EQ_INT(d.duplicates, 6);   /* 3 shared words, in 2 languages each */
    CHECK_EQ_INT(d.kept[0], 300);
    CHECK_EQ_INT(d.kept[1], 300);
    CHECK_EQ_INT(d.kept[2], 300);
    CHECK_EQ_INT(d.count[0] + d.count[1] + d.count[2], 900);
    CHECK(d.count[1] > 120 && d.count[1] < 240 && d.count[2] > 120 && d.count[2] < 240);
    CHECK_EQ_INT(d.truncated, 0);
    CHECK_EQ_INT(d.unknown[0], 0);
    /* every sequence: [CLS], ids, padding; lengths right; labels valid;
     * the Latin-1 list decodes to U+00E9 */
    int saw_e_acute = 0, saw_eszett = 0;
    for (int s = 0; s < 3; s++) {
        int64_t unk = 0;
        for (int64_t i = 0; i < d.count[s]; i++) {
            const int32_t *t = d.tokens[s] + i * d.max_len;
            CHECK_EQ_INT(t[0], OCTAV_TOK_CLS);
            CHECK(d.labels[s][i] >= 0 && d.labels[s][i] < 3);
            int len = d.labels[s][i] == 2 ? 6 : 5;   /* [CLS] + 4 or 5 codepoints */
            CHECK_EQ_INT(d.length[s][i], len);
            for (int p = 1; p < d.max_len; p++) {
                if (p < len) CHECK(t[p] >= OCTAV_TOK_UNK && t[p] < d.vocab);
                else CHECK_EQ_INT(t[p], OCTAV_TOK_PAD);
                unk += t[p] == OCTAV_TOK_UNK;
                if (t[p] >= OCTAV_TOK_FIRST && d.codepoint[t[p]] == 0xE9) saw_e_acute++;
                if (t[p] >= OCTAV_TOK_FIRST && d.codepoint[t[p]] == 0xDF) saw_eszett++;
            }
        }
        CHECK_EQ_INT(unk, d.unknown[s]);
    }
    CHECK_EQ_INT(saw_e_acute, 300);
    CHECK_EQ_INT(saw_eszett, 300);
    /* vocabulary: specials, then increasing codepoints */
    for (int i = 0; i < OCTAV_TOK_FIRST; i++) CHECK_EQ_INT(d.codepoint[i], -1);
    for (int i = OCTAV_TOK_FIRST + 1; i < d.vocab; i++) CHECK(d.codepoint[i] > d.codepoint[i - 1]);
    char buf[64];
    octav_langid_decode(&d, d.tokens[1], buf, sizeof buf);
    CHECK(strlen(buf) >= 4);
    /* the splits are disjoint: every word once in all three */
    int64_t total = d.count[0] + d.count[1] + d.count[2], k = 0;
    char(*words)[16] = malloc((size_t)total * sizeof *words);
    for (int s = 0; s < 3; s++)
        for (int64_t i = 0; i < d.count[s]; i++) octav_langid_decode(&d, d.tokens[s] + i * d.max_len, words[k++], 16);
    qsort(words, (size_t)total, sizeof *words, cmp_word);
    int repeated = 0;
    for (int64_t i = 1; i < total; i++) repeated += strcmp(words[i - 1], words[i]) == 0;
    CHECK_EQ_INT(repeated, 0);
    CHECK(strcmp(words[0], "wa") > 0);   /* no empty or truncated word */
    free(words);
    /* deterministic */
    CHECK_EQ_INT(octav_langid_load(&c, &d2), OCTAV_OK);
    CHECK_EQ_INT(d2.count[0], d.count[0]);
    CHECK_EQ_INT(d2.vocab, d.vocab);
    CHECK(memcmp(d.tokens[2], d2.tokens[2], (size_t)(d.count[2] * d.max_len) * sizeof(int32_t)) == 0);
    CHECK(memcmp(d.labels[0], d2.labels[0], (size_t)d.count[0] * sizeof(int32_t)) == 0);
    octav_langid_free(&d2);
    /* a different seed samples and splits differently */
    c.seed = 5;
    CHECK_EQ_INT(octav_langid_load(&c, &d2), OCTAV_OK);
    CHECK(d2.count[2] != d.count[2] || memcmp(d.tokens[2], d2.tokens[2], (size_t)(d.count[2] * 8) * 4) != 0);
    octav_langid_free(&d2);
    octav_langid_free(&d);
}

/* The vocabulary comes from the training split only: each spanish word's
 * own letter is an id when the word is in train, [UNK] (counted) when it
 * is in validation or test. (english's "shared2" is kept here, its '2'
 * may be held out too.) */
static void test_vocab_from_train(void) {
    octav_langid_config c = cfg3();
    c.languages = "english,spanish";
    octav_langid d;
    CHECK_EQ_INT(octav_langid_load(&c, &d), OCTAV_OK);
    CHECK_EQ_INT(d.kept[1], NSPANISH);
    int64_t in_train = 0, held_out = 0;
    for (int s = 0; s < 3; s++) {
        int64_t unk = 0;
        for (int64_t i = 0; i < d.count[s]; i++) {
            const int32_t *t = d.tokens[s] + i * d.max_len;
            for (int p = 0; p < d.max_len; p++) unk += t[p] == OCTAV_TOK_UNK;
            if (d.labels[s][i] != 1) continue;
            CHECK_EQ_INT(d.length[s][i], 5);
            CHECK_EQ_INT(d.codepoint[t[1]], 'x');
            if (s == 0) {
                in_train++;
                CHECK(t[2] >= OCTAV_TOK_FIRST && d.codepoint[t[2]] >= 0x410 && d.codepoint[t[2]] < 0x410 + NSPANISH);
            } else {
                held_out++;
                CHECK_EQ_INT(t[2], OCTAV_TOK_UNK);
            }
        }
        CHECK_EQ_INT(d.unknown[s], unk);
    }
    CHECK(in_train > 0 && held_out > 0);
    CHECK_EQ_INT(d.unknown[0], 0);
    int cyrillic = 0;
    for (int i = OCTAV_TOK_FIRST; i < d.vocab; i++)
        cyrillic += d.codepoint[i] >= 0x410 && d.codepoint[i] < 0x410 + NSPANISH;
    CHECK_EQ_INT(cyrillic, in_train);
    octav_langid_free(&d);
}

static void test_cap_and_truncation(void) {
    octav_langid_config c = cfg3();
    c.words_per_lang = 100;
    c.max_len = 4;
    octav_langid d;
    CHECK_EQ_INT(octav_langid_load(&c, &d), OCTAV_OK);
    for (int l = 0; l < 3; l++) CHECK(d.kept[l] <= 100 && d.kept[l] >= 94);
    CHECK_EQ_INT(d.read[1], 303);
    CHECK_EQ_INT(d.truncated, d.count[0] + d.count[1] + d.count[2]);   /* every word has >= 4 codepoints */
    for (int64_t i = 0; i < d.count[0]; i++) CHECK_EQ_INT(d.length[0][i], 4);
    octav_langid_free(&d);
}

static void test_errors(void) {
    octav_langid_config c = cfg3();
    octav_langid d;
    c.languages = "english,italian";
    CHECK_EQ_INT(octav_langid_load(&c, &d), OCTAV_ENOTFOUND);
    char path[128];
    snprintf(path, sizeof path, "%s/italian", dir);
    CHECK_MSG(strstr(octav_last_error(), path) && strstr(octav_last_error(), "No such file or directory") &&
              strstr(octav_last_error(), "apt-get install witalian"), "%s", octav_last_error());
    c.languages = "english,klingon";
    CHECK_EQ_INT(octav_langid_load(&c, &d), OCTAV_EINVAL);
    CHECK(strstr(octav_last_error(), "klingon") != NULL);
    c.languages = "english";
    CHECK_EQ_INT(octav_langid_load(&c, &d), OCTAV_EINVAL);
    c = cfg3();
    c.max_len = 1;
    CHECK_EQ_INT(octav_langid_load(&c, &d), OCTAV_EINVAL);
    put("italian", "ciao\nbad\x01word\n", 14);
    c = cfg3();
    c.languages = "english,italian";
    CHECK_EQ_INT(octav_langid_load(&c, &d), OCTAV_EFORMAT);
    CHECK(strstr(octav_last_error(), "italian:2") != NULL);
    put("italian", "ciao\r\nok\nb\0d\n", 12);   /* a NUL byte on line 3 */
    CHECK_EQ_INT(octav_langid_load(&c, &d), OCTAV_EFORMAT);
    CHECK_MSG(strstr(octav_last_error(), "italian:3") != NULL, "%s", octav_last_error());
    /* the limit is on the file's bytes: 256 Latin-1 bytes (512 in UTF-8) pass */
    char latin[300];
    memcpy(latin, "ciao\n", 5);
    memset(latin + 5, 0xE9, 256);
    latin[261] = '\n';
    put("italian", latin, 262);
    CHECK_MSG(octav_langid_load(&c, &d) == OCTAV_OK, "%s", octav_last_error());
    CHECK(strcmp(d.encoding[1], "latin-1") == 0 && d.read[1] == 2 && d.truncated == 1);
    octav_langid_free(&d);
    memset(latin + 5, 0xE9, 257);
    latin[262] = '\n';
    put("italian", latin, 263);
    CHECK_EQ_INT(octav_langid_load(&c, &d), OCTAV_EFORMAT);
    CHECK_MSG(strstr(octav_last_error(), "italian:2") && strstr(octav_last_error(), "257 bytes"), "%s",
              octav_last_error());
    char big[400];
    memset(big, 'a', sizeof big);
    big[sizeof big - 1] = '\n';
    put("italian", big, sizeof big);
    CHECK_EQ_INT(octav_langid_load(&c, &d), OCTAV_EFORMAT);
    CHECK(strstr(octav_last_error(), "italian:1") != NULL);
    /* a failed load leaves a zeroed struct that free accepts */
    octav_langid_free(&d);
}

/* A failed allocation anywhere in a load is OCTAV_ENOMEM, leaks nothing
 * and leaves a struct that octav_langid_free accepts. */
static void test_alloc_failure(void) {
    octav_langid_config c = cfg3();
    int reached_ok = 0, failures = 0;
    for (g_fail_at = 0; g_fail_at < 200 && !reached_ok; g_fail_at++) {
        g_count = 0;
        g_live = 0;
        octav_set_allocator(failing_alloc, counting_free, NULL);
        octav_langid d;
        octav_status st = octav_langid_load(&c, &d);
        octav_langid_free(&d);
        octav_set_allocator(NULL, NULL, NULL);
        CHECK_MSG(st == OCTAV_OK || st == OCTAV_ENOMEM, "failing allocation %d: status %d (%s)", g_fail_at, st,
                  octav_last_error());
        CHECK_MSG(g_live == 0, "failing allocation %d: %d blocks leaked", g_fail_at, g_live);
        if (st == OCTAV_OK) reached_ok = 1;
        else failures++;
    }
    CHECK_MSG(reached_ok && failures >= 10, "ok %d after %d failures", reached_ok, failures);
}

static void test_mask(void) {
    enum { N = 4000, LEN = 12, VOC = 40 };
    int32_t *tok = malloc(N * LEN * sizeof(int32_t)), *mt = malloc(N * LEN * sizeof(int32_t));
    int32_t *lab = malloc(N * LEN * sizeof(int32_t)), *mt2 = malloc(N * LEN * sizeof(int32_t));
    int32_t *lab2 = malloc(N * LEN * sizeof(int32_t));
    int64_t *ids = malloc(N * sizeof(int64_t));
    trng r = {.s = 3};
    int64_t cand = 0;
    for (int s = 0; s < N; s++) {
        int len = 2 + (int)(trng_u64(&r) % (LEN - 1));
        tok[s * LEN] = OCTAV_TOK_CLS;
        for (int p = 1; p < LEN; p++) tok[s * LEN + p] = p < len ? OCTAV_TOK_FIRST + (int32_t)(trng_u64(&r) % (VOC - 4)) : 0;
        cand += len - 1;
        ids[s] = 1000 + s;
    }
    octav_langid_mask(tok, ids, N, LEN, VOC, 0.15, 77, mt, lab);
    int64_t chosen = 0, masked = 0, same = 0, random = 0;
    for (int s = 0; s < N; s++) {
        int per = 0;
        for (int p = 0; p < LEN; p++) {
            int i = s * LEN + p;
            if (tok[i] <= OCTAV_TOK_MASK) { CHECK_EQ_INT(lab[i], -1); CHECK_EQ_INT(mt[i], tok[i]); continue; }
            if (lab[i] < 0) { CHECK_EQ_INT(mt[i], tok[i]); continue; }
            CHECK_EQ_INT(lab[i], tok[i]);
            per++;
            chosen++;
            if (mt[i] == OCTAV_TOK_MASK) masked++;
            else if (mt[i] == tok[i]) same++;
            else { random++; CHECK(mt[i] >= OCTAV_TOK_FIRST && mt[i] < VOC); }
        }
        CHECK(per >= 1);
    }
    double f = (double)chosen / (double)cand;
    CHECK_MSG(f > 0.15 && f < 0.25, "chosen fraction %.3f", f);   /* 15%, plus the at-least-one rule */
    CHECK_NEAR((double)masked / chosen, 0.8, 0.03, 0);
    CHECK_NEAR((double)(same + random) / chosen, 0.2, 0.03, 0);
    CHECK(random > 0.07 * chosen);   /* a random replacement can equal the original */
    /* decided by (seed, sample id) alone: reversing the batch reverses the result */
    for (int s = 0; s < N; s++) {
        memcpy(mt2 + s * LEN, tok + (N - 1 - s) * LEN, LEN * sizeof(int32_t));
        ids[s] = 1000 + (N - 1 - s);
    }
    octav_langid_mask(mt2, ids, N, LEN, VOC, 0.15, 77, mt2, lab2);
    int ok = 1;
    for (int s = 0; s < N && ok; s++) ok = memcmp(lab2 + s * LEN, lab + (N - 1 - s) * LEN, LEN * sizeof(int32_t)) == 0;
    CHECK(ok);
    /* prob 0: exactly the one position the at-least-one rule picks */
    octav_langid_mask(tok, ids, N, LEN, VOC, 0.0, 77, mt, lab);
    int64_t exactly_one = 0;
    for (int s = 0; s < N; s++) {
        int per = 0;
        for (int p = 0; p < LEN; p++) per += lab[s * LEN + p] >= 0;
        exactly_one += per == 1;
    }
    CHECK_EQ_INT(exactly_one, N);
    free(tok); free(mt); free(lab); free(mt2); free(lab2); free(ids);
}

/* The Debian lists (installed by scripts/deps.sh): all 12 languages with
 * the default configuration. Missing lists fail the test, with the line
 * that installs them. */
static int in_vocab(const octav_langid *d, int32_t cp) {
    for (int i = OCTAV_TOK_FIRST; i < d->vocab; i++)
        if (d->codepoint[i] == cp) return 1;
    return 0;
}

static void test_debian_lists(void) {
    octav_langid_config c = octav_langid_default();
    octav_langid d;
    octav_status st = octav_langid_load(&c, &d);
    CHECK_MSG(st == OCTAV_OK, "%s (run: make deps, or apt-get install wamerican wfrench wngerman witalian wspanish "
              "wportuguese wdutch wswedish wpolish wdanish wnorwegian wcatalan)", octav_last_error());
    if (st) return;
    CHECK_EQ_INT(d.nlang, 12);
    int64_t kept = 0;
    for (int l = 0; l < 12; l++) {
        int latin1 = strcmp(d.lang[l], "swedish") == 0 || strcmp(d.lang[l], "norwegian") == 0;
        CHECK_MSG(strcmp(d.encoding[l], latin1 ? "latin-1" : "utf-8") == 0, "%s: %s", d.lang[l], d.encoding[l]);
        CHECK_MSG(d.read[l] > 50000 && d.kept[l] > 10000 && d.kept[l] <= 20000, "%s: read %lld, kept %lld",
                  d.lang[l], (long long)d.read[l], (long long)d.kept[l]);
        kept += d.kept[l];
    }
    CHECK_EQ_INT(d.count[0] + d.count[1] + d.count[2], kept);
    CHECK(d.duplicates > 0);
    int letters = 0;
    for (int i = OCTAV_TOK_FIRST; i < d.vocab; i++) letters += d.codepoint[i] >= 'a' && d.codepoint[i] <= 'z';
    CHECK_EQ_INT(letters, 26);
    /* decoded letters of Latin-1 (å, ø) and UTF-8 (ß, ł, ç) lists; none of
     * the C1 range that UTF-8 read as Latin-1 would give */
    CHECK(in_vocab(&d, 0xE5) && in_vocab(&d, 0xF8) && in_vocab(&d, 0xDF) && in_vocab(&d, 0x142) &&
          in_vocab(&d, 0xE7));
    for (int32_t cp = 0x80; cp < 0xA0; cp++) CHECK_MSG(!in_vocab(&d, cp), "U+%04X in the vocabulary", (unsigned)cp);
    octav_langid_free(&d);
}

int main(void) {
    make_corpus();
    RUN(test_load);
    RUN(test_vocab_from_train);
    RUN(test_cap_and_truncation);
    RUN(test_errors);
    RUN(test_alloc_failure);
    RUN(test_mask);
    RUN(test_debian_lists);
    remove_corpus();
    return TEST_SUMMARY();
}
