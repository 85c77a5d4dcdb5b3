/* testutil - shared helpers for the tests: golden tensors, error metrics, and a
   `gesso serve` under test driven over HTTP with curl. */
#ifndef GS_TESTUTIL_H
#define GS_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
// cmocka needs these before its header
#include <cmocka.h>

#include <jansson.h>
#include <sys/types.h>

#include "gesso.h"
#include "model/safetensors.h"

/* snprintf into a char array, failing the test when the text does not fit
   (a truncated golden name would look up another tensor). */
#define FORMAT_OR_FAIL(buf, ...)                                                                   \
    assert_true(snprintf(buf, sizeof buf, __VA_ARGS__) < (int)sizeof buf)

/* The golden file, opened once per process (NULL-safe to call repeatedly). */
st_file *golden(void);
/* Makes golden() the given fixture file (e.g. "sdxl/tiny-sdxl-golden.safetensors")
   from now on; the default is the SD1 goldens. */
void golden_select(const char *fixture);
/* Path of a fixture file (static buffer, valid until the next call). */
const char *fixture_path(const char *name);
/* Loads golden tensor `name` as f64; aborts the test if absent. Free with free(). */
double *golden_f64(const char *name, size_t *numel);
/* A golden [77] tensor of token ids (stored as numbers) into ids. */
void golden_ids77(const char *name, int32_t ids[77]);
/* Loads golden tensor `name` as f32; aborts the test if absent. Free with free(). */
float *golden_f32(const char *name, size_t *numel);
/* The largest 8-bit difference of a result's images (in batch order) from the golden
   pipe.<name>.image_u8, which they must cover exactly; *differing (may be NULL) gets how
   many values differ. */
int golden_result_max_diff(const char *name, const gs_result *res, int *differing);
/* The same, with the mean |difference| over all values in *mean. */
int golden_result_diff(const char *name, const gs_result *res, double *mean);
/* The same for one image, e.g. a PNG written by the CLI or the service. */
int golden_image_max_diff(const char *name, const gs_image *im);
/* ||a-b|| / ||b|| */
double rel_l2_f32_f64(const float *a, const double *b, size_t n);
double max_abs_diff_f32_f64(const float *a, const double *b, size_t n);
/* NCHW <-> NHWC for golden data */
void nchw_to_nhwc_f64(const double *src, double *dst, int n, int c, int h, int w);

/* ---- a server under test ---- */

void test_sleep_ms(int ms);

/* rm -rf of a test's scratch directory (or a folder inside it); 0 when gone. */
int test_remove_tree(const char *path);

/* Says that part of a test did not run here (a CPU feature, a tool): one
   "SKIPPED: ..." line, which scripts/test.sh lists after the suite, so a
   skip is never a silent pass. */
void test_note_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* curl METHOD base+path (data_file: the body to send, or NULL); the response
   body lands in dir/resp and, when body is not NULL, in *body (malloc'd).
   Returns the HTTP status (0 when nothing answered). */
int test_http(const char *base, const char *dir, const char *method, const char *path,
              const char *data_file, char **body);
/* The same with an Authorization header value (NULL: none). */
int test_http_auth(const char *base, const char *dir, const char *method, const char *path,
                   const char *data_file, const char *authorization, char **body);
/* Starts `gesso serve --listen 127.0.0.1:0 --data dir/data --models
   dir/models --workers 1 --threads 2` plus extra (NULL-terminated, may be NULL),
   logging to dir/server.log; the OS picks a free port, and base (at least 64
   bytes) gets "http://127.0.0.1:PORT". Returns its pid once /healthz answers. */
pid_t test_serve_start(char *base, const char *dir, const char *const *extra);
/* Makes dir/models holding the tiny fixture as model "tiny-sd15"; 0 or -1. */
int test_link_tiny_model(const char *dir);
/* SIGTERMs the server and returns its exit status (-1 when it did not exit). */
int test_serve_stop(pid_t server);
/* The pids of a process's children (its workers), at most max; returns how many. */
int test_children(pid_t parent, pid_t *out, int max);
/* Waits until pid has exited (gone or a zombie), for at most timeout_ms; 0 when it did. */
int test_wait_gone(pid_t pid, int timeout_ms);
/* Milliseconds of a monotonic clock, for deadlines. */
int64_t test_mono_ms(void);

/* ---- jobs on a server under test (authorization: a header value or NULL) ---- */

/* POSTs json (written to dir/req.json) to /v1/jobs; asserts 202 and status
   "queued"; returns the job id (malloc'd). */
char *test_submit(const char *base, const char *dir, const char *authorization, const char *json);
/* GET /v1/jobs/{id}, asserting 200 and JSON. A seed past 2^63-1 reads as
   INT64_MAX (json_u64.h): check such a seed in the reply's text. */
json_t *test_get_job(const char *base, const char *dir, const char *authorization, const char *id);
/* Waits until the job leaves queued/running (long-polls GET /v1/jobs/{id}?wait=,
   which the server answers when the job ends), for at most timeout_ms of wall
   clock; returns its final view (fails the test otherwise). */
/* Polls until the job has run a sampler step, for at most timeout_ms (fails
   the test otherwise). */
void test_wait_step(const char *base, const char *dir, const char *authorization, const char *id,
                    int timeout_ms);
json_t *test_wait_job(const char *base, const char *dir, const char *authorization, const char *id,
                      int timeout_ms);

#endif
