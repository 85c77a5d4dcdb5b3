/* download - resumable, verified, budgeted downloads over libcurl. */
#include "horde/download.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gesso.h"
#include "hash/sha256.h"
#include "support/log.h"

#define PROGRESS_EVERY_MS 2000
#define BACKOFF_MAX_MS 30000

/* One attempt's state, shared by curl's callbacks. */
typedef struct xfer {
    FILE *f;
    const char *name; /* for the log: the file's base name */
    long long offset; /* bytes of the .part asked to be skipped (Range) */
    long long have;   /* bytes in the .part now */
    long long budget;
    long long range_start; /* from Content-Range of the last response; -1 none */
    long status;           /* of the final response, once its body starts */
    int started;           /* the body's first bytes were seen */
    int over_budget, bad_range, restarted, write_failed;
    const volatile int *stop;
    int quiet;
    int64_t t0_ms, last_ms;
} xfer;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t on_header(char *p, size_t size, size_t n, void *user)
{
    xfer *x = user;
    size_t len = size * n;
    char line[256];
    size_t k = len < sizeof line - 1 ? len : sizeof line - 1;
    memcpy(line, p, k);
    line[k] = '\0';
    if (strncmp(line, "HTTP/", 5) == 0) /* a new response (after a redirect) */
        x->range_start = -1;
    else if (strncasecmp(line, "content-range:", 14) == 0) {
        long long a;
        if (sscanf(line + 14, " bytes %lld-", &a) == 1)
            x->range_start = a;
    }
    return len;
}

/* The first bytes of the final response decide what the body is: the rest
   of the .part (206 from our offset), the whole file (200: the server ignored
   Range, so the .part starts over), or an error page (not written). */
static int on_body_start(xfer *x, CURL *h)
{
    x->started = 1;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &x->status);
    if (x->status != 200 && x->status != 206)
        return -1;
    if (x->status == 206 && x->range_start != x->offset) {
        x->bad_range = 1;
        return -1;
    }
    if (x->status == 200 && x->have > 0) {
        if (!x->quiet)
            log_info("download %s: the server ignores Range, starting over", x->name);
        fflush(x->f);
        if (ftruncate(fileno(x->f), 0) != 0) {
            x->write_failed = errno;
            return -1;
        }
        x->have = 0;
        x->restarted = 1;
    }
    curl_off_t cl = -1;
    curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
    if (x->budget > 0 && cl >= 0 && x->have + (long long)cl > x->budget) {
        x->over_budget = 1;
        return -1;
    }
    return 0;
}

typedef struct cb_ctx {
    xfer *x;
    CURL *h;
} cb_ctx;

static size_t on_data(char *p, size_t size, size_t n, void *user)
{
    cb_ctx *c = user;
    xfer *x = c->x;
    size_t len = size * n;
    if (!x->started && on_body_start(x, c->h) != 0)
        return 0; /* curl ends the transfer (CURLE_WRITE_ERROR) */
    if (x->budget > 0 && x->have + (long long)len > x->budget) {
        x->over_budget = 1; /* a stream without a length crossed the budget */
        return 0;
    }
    if (fwrite(p, 1, len, x->f) != len) {
        x->write_failed = errno ? errno : EIO;
        return 0;
    }
    x->have += (long long)len;
    return len;
}

static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)ultotal, (void)ulnow;
    xfer *x = user;
    if (x->stop && *x->stop)
        return 1;
    int64_t now = mono_ms();
    if (x->quiet || now - x->last_ms < PROGRESS_EVERY_MS || !x->started)
        return 0;
    x->last_ms = now;
    double mb = 1e-6, secs = (double)(now - x->t0_ms) / 1000.0;
    double rate = secs > 0 ? (double)dlnow * mb / secs : 0;
    if (dltotal > 0) {
        long long base = x->status == 206 ? x->offset : 0;
        double total = (double)(base + dltotal), now_b = (double)(base + dlnow);
        log_info("download %s: %.0f%% (%.1f of %.1f MB), %.1f MB/s", x->name, 100.0 * now_b / total,
                 now_b * mb, total * mb, rate);
    } else
        log_info("download %s: %.1f MB, %.1f MB/s", x->name, (double)x->have * mb, rate);
    return 0;
}

int horde_mkdir_p(const char *dir)
{
    char p[4096];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p)
        return -1;
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            mkdir(p, 0755);
            *s = '/';
        }
    struct stat st;
    return mkdir(p, 0755) == 0 || (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) ? 0 : -1;
}

int horde_file_sha256(const char *path, char out[65])
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    enum { CHUNK = 1 << 20 };
    unsigned char *buf = malloc(CHUNK);
    if (!buf) {
        fclose(f);
        return -1;
    }
    sha256_ctx c;
    sha256_init(&c);
    size_t n;
    while ((n = fread(buf, 1, CHUNK, f)) > 0)
        sha256_update(&c, buf, n);
    int bad = ferror(f);
    fclose(f);
    free(buf);
    if (bad)
        return -1;
    sha256_final_hex(&c, out);
    return 0;
}

static long long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* Sleeps ms, or less when asked to stop. */
static void pause_ms(int ms, const volatile int *stop)
{
    for (int64_t end = mono_ms() + ms; mono_ms() < end;) {
        if (stop && *stop)
            return;
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

typedef enum attempt_end {
    END_DONE,    /* the .part holds the whole body */
    END_RETRY,   /* worth another attempt */
    END_RESTART, /* the .part is unusable: delete it, then retry */
    END_FATAL,   /* err says why; no retry helps */
} attempt_end;

static attempt_end attempt(const char *url, const char *part, const horde_dl_options *o, xfer *x,
                           char *err, size_t err_size)
{
    x->have = file_size(part);
    if (x->have < 0)
        x->have = 0;
    x->offset = x->have;
    x->f = fopen(part, "ab");
    if (!x->f) {
        snprintf(err, err_size, "cannot write %s: %s", part, strerror(errno));
        return END_FATAL;
    }
    CURL *h = curl_easy_init();
    if (!h) {
        fclose(x->f);
        snprintf(err, err_size, "out of memory");
        return END_FATAL;
    }
    cb_ctx c = {x, h};
    struct curl_slist *hdr = o->header ? curl_slist_append(NULL, o->header) : NULL;
    char range[48];
    if (x->offset > 0) {
        /* set by hand rather than CURLOPT_RESUME_FROM, which fails the
           transfer when the server answers 200: we start over instead */
        snprintf(range, sizeof range, "%lld-", x->offset);
        curl_easy_setopt(h, CURLOPT_RANGE, range);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L); /* CivitAI and HF redirect to storage */
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &c);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)(o->stall_s > 0 ? o->stall_s : 60));
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "gesso/" GESSO_VERSION);
    CURLcode rc = curl_easy_perform(h);
    if (!x->started) /* an empty body never reached on_data */
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &x->status);
    curl_easy_cleanup(h);
    curl_slist_free_all(hdr);
    if (fclose(x->f) != 0 && !x->write_failed)
        x->write_failed = errno ? errno : EIO;
    x->f = NULL;
    if (x->write_failed) {
        snprintf(err, err_size, "cannot write %s: %s", part, strerror(x->write_failed));
        return END_FATAL;
    }
    if (x->stop && *x->stop)
        return END_FATAL;
    if (x->over_budget || x->bad_range)
        return END_RESTART; /* the caller tells these apart by the flags */
    if (rc == CURLE_OK && x->status == 200 && !x->started && x->have > 0)
        return END_RESTART; /* an empty 200 to a Range request: start over */
    if (rc == CURLE_OK && (x->status == 200 || x->status == 206))
        return END_DONE;
    if (x->status == 416) { /* the .part does not fit this file (a new version?) */
        snprintf(err, err_size, "range %lld- not satisfiable", x->offset);
        return END_RESTART;
    }
    if (x->status >= 400) {
        snprintf(err, err_size, "HTTP %ld", x->status);
        int later = x->status >= 500 || x->status == 408 || x->status == 429;
        return later ? END_RETRY : END_FATAL;
    }
    if (x->status >= 300) {
        snprintf(err, err_size, "HTTP %ld (redirect not followed)", x->status);
        return END_FATAL;
    }
    snprintf(err, err_size, "%s", curl_easy_strerror(rc)); /* reset, time-out, cut short */
    return END_RETRY;
}

horde_dl_result horde_download(const char *url, const char *dest, const horde_dl_options *o,
                               char *err, size_t err_size)
{
    static const horde_dl_options none = {0};
    if (!o)
        o = &none;
    err[0] = '\0';
    const char *name = strrchr(dest, '/') ? strrchr(dest, '/') + 1 : dest;
    if (o->budget > 0 && o->size > o->budget) {
        snprintf(err, err_size, "%s is %.1f MB, over the disk budget of %.1f MB", name,
                 (double)o->size / 1e6, (double)o->budget / 1e6);
        return HORDE_DL_BUDGET;
    }
    char part[4096];
    if (snprintf(part, sizeof part, "%s.part", dest) >= (int)sizeof part) {
        snprintf(err, err_size, "path too long");
        return HORDE_DL_FAILED;
    }
    if (o->budget > 0 && file_size(part) > o->budget)
        unlink(part);
    int tries = o->tries > 0 ? o->tries : 5;
    int wait = o->backoff_ms > 0 ? o->backoff_ms : 1000;
    int fresh_retry_done = 0;
    int64_t t0 = mono_ms();
    for (int n = 1;; n++) {
        xfer x = {.name = name,
                  .budget = o->budget,
                  .range_start = -1,
                  .stop = o->stop,
                  .quiet = o->quiet,
                  .t0_ms = mono_ms(),
                  .last_ms = mono_ms()};
        attempt_end e = attempt(url, part, o, &x, err, err_size);
        if (o->stop && *o->stop) {
            snprintf(err, err_size, "stopped (%lld bytes kept in %s)", x.have, part);
            return HORDE_DL_STOPPED;
        }
        if (x.over_budget) {
            unlink(part);
            snprintf(err, err_size, "%s would exceed the disk budget of %.1f MB: stopped", name,
                     (double)o->budget / 1e6);
            return HORDE_DL_BUDGET;
        }
        if (e == END_FATAL) {
            unlink(part);
            return HORDE_DL_FAILED;
        }
        if (e == END_DONE) {
            char got[65];
            if (o->sha256 && o->sha256[0]) {
                if (horde_file_sha256(part, got) != 0) {
                    snprintf(err, err_size, "cannot read back %s", part);
                    unlink(part);
                    return HORDE_DL_FAILED;
                }
                if (strcasecmp(got, o->sha256) != 0) {
                    unlink(part);
                    /* a .part left by another version of the file spoils a
                       resume: once, the whole file again */
                    if (x.offset > 0 && !x.restarted && !fresh_retry_done) {
                        fresh_retry_done = 1;
                        log_warn("download %s: checksum mismatch after a resume, starting over",
                                 name);
                        continue;
                    }
                    snprintf(err, err_size, "%s: sha256 %s, expected %s: the file is deleted", name,
                             got, o->sha256);
                    return HORDE_DL_CHECKSUM;
                }
            }
            FILE *f = fopen(part, "rb+");
            int synced = f && fsync(fileno(f)) == 0;
            if (f)
                fclose(f);
            if (!synced || rename(part, dest) != 0) {
                snprintf(err, err_size, "cannot move %s into place: %s", part, strerror(errno));
                return HORDE_DL_FAILED;
            }
            if (!o->quiet)
                log_info("downloaded %s: %.1f MB in %.1f s", name, (double)x.have / 1e6,
                         (double)(mono_ms() - t0) / 1000.0);
            return HORDE_DL_OK;
        }
        if (e == END_RESTART)
            unlink(part);
        if (n >= tries) {
            char why[256];
            snprintf(why, sizeof why, "%s", err[0] ? err : "the server's reply was unusable");
            snprintf(err, err_size, "%s: %s, after %d tries", name, why, tries);
            return HORDE_DL_FAILED;
        }
        if (!o->quiet)
            log_warn("download %s: %s, try %d of %d in %d ms", name,
                     err[0] ? err : "unusable reply", n, tries, wait);
        pause_ms(wait, o->stop);
        wait = wait * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : wait * 2;
    }
}
