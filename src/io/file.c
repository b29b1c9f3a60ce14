/* file.c -- whole-file reads and atomic whole-file writes shared by the
 * readers and writers of src/io (POSIX).
 *
 * octav_write_file_atomic writes to "PATH.tmp.XXXXXX" (mkstemp, same
 * directory), fsyncs it, gives it the mode PATH has (or 0666 & ~umask for a
 * new file) and renames it over PATH; on any failure the temporary file is
 * removed and PATH is left as it was. The umask is read from
 * /proc/self/status (only where that is missing is umask(2) set and
 * restored, a brief process-wide change). A symbolic link at PATH is
 * replaced by the new file, not followed.
 * Leaves out memory mapping, locking, and Windows. */
#define _POSIX_C_SOURCE 200809L

#include "half.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

octav_status octav_io_errno(const char *what, const char *path, int err) {
    char msg[160];
    if (strerror_r(err, msg, sizeof msg) != 0) snprintf(msg, sizeof msg, "error %d", err);
    if (!path) return octav_set_error(OCTAV_EIO, "%s: %s", what, msg);
    return octav_set_error(OCTAV_EIO, "%s '%s': %s", what, path, msg);
}

octav_status octav_io_read_fd(int fd, const char *path, unsigned char **buf, size_t *len) {
    *buf = NULL;
    *len = 0;
    size_t cap = 4096, n = 0;
    struct stat sb;
    if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode)) {
        if ((uintmax_t)sb.st_size >= SIZE_MAX / 2) {
            close(fd);
            return octav_set_error(OCTAV_ENOMEM, "'%s' is too large to read", path);
        }
        cap = (size_t)sb.st_size + 1;
    }
    unsigned char *p = octav_malloc(cap);
    if (!p) {
        close(fd);
        return octav_set_error(OCTAV_ENOMEM, "out of memory reading '%s'", path);
    }
    for (;;) {
        if (n == cap) {
            unsigned char *q = cap <= SIZE_MAX / 2 ? octav_malloc(cap * 2) : NULL;
            if (!q) {
                octav_free(p);
                close(fd);
                return octav_set_error(OCTAV_ENOMEM, "out of memory reading '%s'", path);
            }
            memcpy(q, p, n);
            octav_free(p);
            p = q;
            cap *= 2;
        }
        ssize_t r = read(fd, p + n, cap - n);
        if (r < 0) {
            if (errno == EINTR) continue;
            int err = errno;
            octav_free(p);
            close(fd);
            return octav_io_errno("cannot read", path, err);
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    close(fd);
    *buf = p;
    *len = n;
    return OCTAV_OK;
}

octav_status octav_io_open_read(const char *path, int *fd) {
    do *fd = open(path, O_RDONLY | O_CLOEXEC);
    while (*fd < 0 && errno == EINTR);
    return *fd < 0 ? octav_io_errno("cannot open", path, errno) : OCTAV_OK;
}

octav_status octav_read_file(const char *path, unsigned char **buf, size_t *len) {
    if (!path || !buf || !len)
        return octav_set_error(OCTAV_EINVAL, "octav_read_file: NULL argument");
    *buf = NULL;
    *len = 0;
    int fd;
    octav_status st = octav_io_open_read(path, &fd);
    return st ? st : octav_io_read_fd(fd, path, buf, len);
}

/* The process umask without changing it: Linux reports it in
 * /proc/self/status; elsewhere umask(2) is set and restored. */
static mode_t current_umask(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (f) {
        char line[128];
        unsigned m;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "Umask: %o", &m) == 1) {
                fclose(f);
                return (mode_t)m;
            }
        fclose(f);
    }
    mode_t mask = umask(022);
    umask(mask);
    return mask;
}

static mode_t new_file_mode(const char *path) {
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) return sb.st_mode & 07777;
    return 0666 & ~current_umask();
}

/* Makes a finished rename durable; failure here cannot undo it, so it is ignored. */
static void sync_parent_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir = slash ? octav_io_strndup(path, slash == path ? 1 : (size_t)(slash - path))
                      : octav_io_strndup(".", 1);
    if (!dir) return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    octav_free(dir);
}

octav_status octav_write_file_atomic(const char *path, const void *buf, size_t len) {
    if (!path || !*path || (!buf && len))
        return octav_set_error(OCTAV_EINVAL, "octav_write_file_atomic: bad argument");
    static const char suffix[] = ".tmp.XXXXXX";
    size_t plen = strlen(path);
    char *tmp = octav_malloc(plen + sizeof suffix);
    if (!tmp) return octav_set_error(OCTAV_ENOMEM, "out of memory writing '%s'", path);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, suffix, sizeof suffix);

    int fd = mkstemp(tmp);
    if (fd < 0) {
        octav_status st = octav_io_errno("cannot create a temporary file for", path, errno);
        octav_free(tmp);
        return st;
    }
    const char *what = NULL;
    int err = 0;
    const unsigned char *p = buf;
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, p + done, len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            what = "cannot write";
            err = w < 0 ? errno : EIO;
            break;
        }
        done += (size_t)w;
    }
    if (!what && fchmod(fd, new_file_mode(path)) != 0) {
        what = "cannot set the mode of";
        err = errno;
    }
    if (!what && fsync(fd) != 0) {
        what = "cannot flush";
        err = errno;
    }
    if (close(fd) != 0 && !what) {
        what = "cannot close";
        err = errno;
    }
    if (!what && rename(tmp, path) != 0) {
        what = "cannot rename a temporary file to";
        err = errno;
    }
    if (what) {
        unlink(tmp);
        octav_free(tmp);
        return octav_io_errno(what, path, err);
    }
    octav_free(tmp);
    sync_parent_dir(path);
    return OCTAV_OK;
}
