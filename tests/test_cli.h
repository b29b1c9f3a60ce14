/* test_cli.h -- running the octav binary from a test: a temporary
 * directory and a runner that captures stdout, stderr and the exit code. */
#ifndef OCTAV_TEST_CLI_H
#define OCTAV_TEST_CLI_H
#include "octav/io.h"
#include "test.h"

#include <sys/wait.h>
#include <unistd.h>

static char tmpdir[256];

/* Runs a shell command; captures stdout and stderr; returns the exit code. */
static inline int run(const char *args, char **out, char **err) {
    char cmd[4096], fo[300], fe[300];
    snprintf(fo, sizeof fo, "%s/out", tmpdir);
    snprintf(fe, sizeof fe, "%s/err", tmpdir);
    snprintf(cmd, sizeof cmd, "%s %s >%s 2>%s", OCTAV_BIN, args, fo, fe);
    int st = system(cmd);
    int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    const char *files[2] = {fo, fe};
    char **dst[2] = {out, err};
    for (int i = 0; i < 2; i++) {
        unsigned char *buf = NULL;
        size_t len = 0;
        if (octav_read_file(files[i], &buf, &len) != OCTAV_OK) { *dst[i] = calloc(1, 1); continue; }
        char *s = malloc(len + 1);
        memcpy(s, buf, len);
        s[len] = 0;
        octav_free(buf);
        *dst[i] = s;
    }
    return rc;
}

#endif
