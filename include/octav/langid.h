/* langid.h -- word-level language identification on Debian's word lists
 * (/usr/share/dict), the built-in text corpus of the transformer models.
 *
 * Each language is one list (american-english, french, ngerman, ...). A
 * file is read as UTF-8 when it is valid UTF-8, else as Latin-1 (Debian's
 * bokmaal, nynorsk and swedish lists are ISO-8859-1). Per language the
 * words_per_lang words with the smallest seeded hash are selected (a
 * deterministic sample); a selected word that occurs in the full list of
 * another loaded language is dropped from every language (it has no
 * single answer; words compare as codepoint strings, so "café" in a
 * Latin-1 and in a UTF-8 list is one word); the rest is split into train /
 * validation / test by a second hash of the word. Tokens are codepoints:
 * ids OCTAV_TOK_FIRST.. for the codepoints of the training split in
 * increasing order, OCTAV_TOK_UNK for any other; a sequence is [CLS], the
 * word's ids (truncated to max_len - 1), then [PAD] up to max_len.
 *
 *   octav_langid_config cfg = octav_langid_default();
 *   octav_langid d;
 *   if (octav_langid_load(&cfg, &d) != OCTAV_OK) ... octav_last_error();
 *   ... d.tokens[0], d.labels[0], d.count[0] (train) ...
 *   octav_langid_free(&d);
 */
#ifndef OCTAV_LANGID_H
#define OCTAV_LANGID_H

#include "octav/octav.h"

#ifdef __cplusplus
extern "C" {
#endif

#define OCTAV_LANGID_MAX_LANGS 16
#define OCTAV_LANGID_MAX_WORD 256   /* bytes per line of the file */

enum { OCTAV_TOK_PAD = 0, OCTAV_TOK_CLS = 1, OCTAV_TOK_MASK = 2, OCTAV_TOK_UNK = 3, OCTAV_TOK_FIRST = 4 };
enum { OCTAV_SPLIT_TRAIN = 0, OCTAV_SPLIT_VAL = 1, OCTAV_SPLIT_TEST = 2 };

typedef struct {
    const char *dir;          /* default "/usr/share/dict"                     */
    const char *languages;    /* comma list of names (octav_langid_names), NULL = all */
    int64_t words_per_lang;   /* sample per language before splitting (20000); 0 = all */
    int max_len;              /* tokens per sequence incl. [CLS] (default 24)  */
    uint64_t seed;            /* selection and split hashing (default 0)       */
    double val_fraction;      /* default 0.1 */
    double test_fraction;     /* default 0.1 */
} octav_langid_config;

octav_langid_config octav_langid_default(void);
/* The 12 languages and their files and Debian packages (NULL-terminated). */
extern const char *const octav_langid_names[];
const char *octav_langid_file(const char *language);     /* "french" -> "french" */
const char *octav_langid_package(const char *language);  /* "french" -> "wfrench" */

typedef struct {
    int nlang;
    char lang[OCTAV_LANGID_MAX_LANGS][16];
    char encoding[OCTAV_LANGID_MAX_LANGS][12];  /* "utf-8" or "latin-1"            */
    int64_t read[OCTAV_LANGID_MAX_LANGS];       /* distinct words in the list      */
    int64_t kept[OCTAV_LANGID_MAX_LANGS];       /* after sampling and de-duplication */
    int64_t duplicates;       /* sampled words dropped: in another language's list too */
    int64_t truncated;        /* words longer than max_len - 1 codepoints       */
    int vocab;                /* token ids 0 .. vocab-1                         */
    int32_t *codepoint;       /* [vocab]: the codepoint of each id, -1 for specials */
    int max_len;
    int64_t count[3];         /* train, validation, test                         */
    int32_t *tokens[3];       /* [count, max_len]                                */
    int32_t *labels[3];       /* [count] language index                          */
    int32_t *length[3];       /* [count] tokens used, [CLS] included             */
    int64_t unknown[3];       /* characters mapped to [UNK]                      */
} octav_langid;

/* Loads the corpus. Errors: a missing list (OCTAV_ENOTFOUND, naming the
 * file and the Debian package), a malformed line (OCTAV_EFORMAT, file:line:
 * a control character or more than OCTAV_LANGID_MAX_WORD bytes), an unknown
 * language name or bad option (OCTAV_EINVAL), an empty split (OCTAV_EEMPTY),
 * out of memory (OCTAV_ENOMEM); a failed load leaves *out zeroed. */
octav_status octav_langid_load(const octav_langid_config *cfg, octav_langid *out);
void octav_langid_free(octav_langid *d);

/* Masked-token pretraining inputs (BERT's recipe): each non-special
 * position of each sequence is chosen with probability prob (at least one
 * per sequence); a chosen token becomes [MASK] (80%), a random ordinary
 * token (10%) or stays (10%); labels are the original id at chosen
 * positions and -1 elsewhere. Decided by (seed, sample_id[i], position)
 * only, so independent of batch composition and threads. */
void octav_langid_mask(const int32_t *tokens, const int64_t *sample_id, int64_t n, int max_len, int vocab,
                       double prob, uint64_t seed, int32_t *out_tokens, int32_t *out_labels);

/* Writes the word of a token sequence as UTF-8 ([UNK] as U+FFFD, [MASK] as
 * '_') into buf (NUL-terminated, truncated to cap). Returns the bytes
 * written. */
size_t octav_langid_decode(const octav_langid *d, const int32_t *tokens, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
