/* util.c -- helpers shared by the octav subcommands: error printing, strict
 * number parsing, and loading tensors from .npy / .safetensors arguments. */
#define _POSIX_C_SOURCE 200809L
#include "cli/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void cli_error(const char *what) { fprintf(stderr, "octav: %s: %s\n", what, octav_last_error()); }

void cli_errorf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("octav: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_parse_int(const char *s, long lo, long hi, long *out) {
    if (!s || !*s) return 0;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

static char *dupstr(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static int push(cli_tensor **list, int *n, const char *label, octav_tensor *t) {
    cli_tensor *nl = realloc(*list, (size_t)(*n + 1) * sizeof **list);
    if (!nl) { cli_errorf("out of memory"); return 0; }
    *list = nl;
    nl[*n].label = dupstr(label);
    nl[*n].t = *t;
    memset(t, 0, sizeof *t);
    (*n)++;
    return 1;
}

/* 1 if the n bytes at b start with the .npy magic. */
static int npy_magic(const unsigned char *b, size_t n) { return n >= 6 && memcmp(b, "\x93NUMPY", 6) == 0; }

/* 1 if the file starts with the .npy magic. */
static int is_npy(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    unsigned char m[6] = {0};
    size_t got = fread(m, 1, 6, f);
    fclose(f);
    return npy_magic(m, got);
}

/* A reader's failure: from a path its message names the file already; from
 * memory it is prefixed with the path. */
static void load_error(int from_path, const char *path) {
    if (from_path) cli_errorf("%s", octav_last_error());
    else cli_error(path);
}

int cli_load_tensors(const char *arg, cli_tensor **list, int *n) {
    struct stat sb;
    char *path = dupstr(arg), *name = NULL;
    if (!path) { cli_errorf("out of memory"); return 0; }
    if (stat(path, &sb) != 0) {
        char *colon = strrchr(path, ':');
        if (colon && colon != path) {
            *colon = '\0';
            name = colon + 1;
            if (stat(path, &sb) != 0) { *colon = ':'; name = NULL; }
        }
    }
    if (!name && stat(path, &sb) != 0) {
        cli_errorf("%s: %s", arg, strerror(errno));
        free(path);
        return 0;
    }
    int ok = 1;
    /* a pipe or device (/dev/stdin) can be read once: read it whole here and
     * tell the format by the magic in memory; a regular file is read by the
     * readers themselves (a safetensors file only in the parts it needs).
     * The readers' messages name the file already. */
    unsigned char *buf = NULL;
    size_t len = 0;
    const int regular = S_ISREG(sb.st_mode);
    if (!regular && octav_read_file(path, &buf, &len) != OCTAV_OK) {
        cli_errorf("%s", octav_last_error());
        free(path);
        return 0;
    }
    if (regular ? is_npy(path) : npy_magic(buf, len)) {
        if (name) {
            cli_errorf("%s: a .npy file holds one tensor; ':%s' names none", arg, name);
            ok = 0;
        } else {
            octav_tensor t;
            if (regular ? octav_npy_read(path, &t) != OCTAV_OK : octav_npy_read_mem(buf, len, &t) != OCTAV_OK) {
                load_error(regular, path);
                ok = 0;
            } else {
                ok = push(list, n, path, &t);
            }
        }
    } else {
        octav_safetensors st;
        if (regular ? octav_safetensors_read_named(path, name, &st) != OCTAV_OK
                    : octav_safetensors_read_mem(buf, len, &st) != OCTAV_OK) {
            load_error(regular, path);
            ok = 0;
        } else {
            int found = 0;
            for (int i = 0; i < st.ntensors && ok; i++) {
                if (name && strcmp(st.tensors[i].name, name) != 0) continue;
                found++;
                size_t L = strlen(path) + strlen(st.tensors[i].name) + 2;
                char *label = malloc(L);
                if (!label) { cli_errorf("out of memory"); ok = 0; break; }
                snprintf(label, L, "%s:%s", path, st.tensors[i].name);
                ok = push(list, n, label, &st.tensors[i]);
                free(label);
            }
            if (ok && name && !found) { cli_errorf("%s: no floating tensor named '%s'", path, name); ok = 0; }
            if (ok && !name && !found) { cli_errorf("%s: no floating tensors in the file", path); ok = 0; }
            octav_safetensors_free(&st);
        }
    }
    octav_free(buf);
    free(path);
    return ok;
}

void cli_free_tensors(cli_tensor *list, int n) {
    for (int i = 0; i < n; i++) {
        free(list[i].label);
        octav_tensor_free(&list[i].t);
    }
    free(list);
}
