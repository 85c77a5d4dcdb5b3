/* stats - counters and their /metrics page (libmicrohttpd). */
#include "horde/stats.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void horde_stats_init(horde_stats *s)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
}

void horde_stats_submitted(horde_stats *s, horde_state state, double kudos)
{
    pthread_mutex_lock(&s->mu);
    s->jobs[state]++;
    s->kudos += kudos;
    pthread_mutex_unlock(&s->mu);
}

void horde_stats_dropped(horde_stats *s)
{
    pthread_mutex_lock(&s->mu);
    s->dropped++;
    pthread_mutex_unlock(&s->mu);
}

void horde_stats_generated(horde_stats *s, double megapixelsteps, double seconds, int restarts)
{
    pthread_mutex_lock(&s->mu);
    s->mps += megapixelsteps;
    s->gen_seconds += seconds;
    s->restarts = restarts;
    pthread_mutex_unlock(&s->mu);
}

void horde_stats_pace(horde_stats *s, long max_pixels, double paced_mps, int held)
{
    pthread_mutex_lock(&s->mu);
    s->max_pixels = max_pixels;
    s->paced_mps = paced_mps;
    s->held = held;
    pthread_mutex_unlock(&s->mu);
}

void horde_stats_skipped(horde_stats *s)
{
    pthread_mutex_lock(&s->mu);
    s->pops_skipped++;
    pthread_mutex_unlock(&s->mu);
}

void horde_stats_expired(horde_stats *s)
{
    pthread_mutex_lock(&s->mu);
    s->expired++;
    pthread_mutex_unlock(&s->mu);
}

char *horde_stats_text(horde_stats *s)
{
    size_t cap = 4096;
    char *t = malloc(cap);
    if (!t)
        return NULL;
    pthread_mutex_lock(&s->mu);
    int n = snprintf(t, cap,
                     "# HELP gesso_horde_jobs_total Jobs submitted to the Horde, by state.\n"
                     "# TYPE gesso_horde_jobs_total counter\n");
    for (int i = 0; i < 4; i++)
        n += snprintf(t + n, cap - (size_t)n, "gesso_horde_jobs_total{state=\"%s\"} %ld\n",
                      horde_state_name((horde_state)i), s->jobs[i]);
    n += snprintf(t + n, cap - (size_t)n,
                  "# HELP gesso_horde_expired_total Held jobs whose Horde time-out passed "
                  "before they could start (submitted faulted).\n"
                  "# TYPE gesso_horde_expired_total counter\n"
                  "gesso_horde_expired_total %ld\n"
                  "# HELP gesso_horde_pops_skipped_total Pops not sent: the held jobs and "
                  "another would not finish within the Horde's time-out.\n"
                  "# TYPE gesso_horde_pops_skipped_total counter\n"
                  "gesso_horde_pops_skipped_total %ld\n"
                  "# HELP gesso_horde_max_pixels The max_pixels of the last pop.\n"
                  "# TYPE gesso_horde_max_pixels gauge\n"
                  "gesso_horde_max_pixels %ld\n"
                  "# HELP gesso_horde_paced_mps Smoothed sampler speed the pops are paced by "
                  "(megapixel-steps per second).\n"
                  "# TYPE gesso_horde_paced_mps gauge\n"
                  "gesso_horde_paced_mps %.4f\n"
                  "# HELP gesso_horde_held Jobs popped and not yet answered.\n"
                  "# TYPE gesso_horde_held gauge\n"
                  "gesso_horde_held %d\n",
                  s->expired, s->pops_skipped, s->max_pixels, s->paced_mps, s->held);
    snprintf(t + n, cap - (size_t)n,
             "# HELP gesso_horde_dropped_total Popped jobs the Horde never took back.\n"
             "# TYPE gesso_horde_dropped_total counter\n"
             "gesso_horde_dropped_total %ld\n"
             "# HELP gesso_horde_kudos_total Kudos rewarded for submitted jobs.\n"
             "# TYPE gesso_horde_kudos_total counter\n"
             "gesso_horde_kudos_total %.2f\n"
             "# HELP gesso_horde_megapixelsteps_total Work generated (width*height*steps/1e6).\n"
             "# TYPE gesso_horde_megapixelsteps_total counter\n"
             "gesso_horde_megapixelsteps_total %.4f\n"
             "# HELP gesso_horde_generation_seconds_total Time spent generating.\n"
             "# TYPE gesso_horde_generation_seconds_total counter\n"
             "gesso_horde_generation_seconds_total %.3f\n"
             "# HELP gesso_horde_mps Megapixel-steps per second over all jobs so far.\n"
             "# TYPE gesso_horde_mps gauge\n"
             "gesso_horde_mps %.4f\n"
             "# HELP gesso_horde_child_restarts_total Generation processes that died.\n"
             "# TYPE gesso_horde_child_restarts_total counter\n"
             "gesso_horde_child_restarts_total %ld\n",
             s->dropped, s->kudos, s->mps, s->gen_seconds,
             s->gen_seconds > 0 ? s->mps / s->gen_seconds : 0.0, s->restarts);
    pthread_mutex_unlock(&s->mu);
    return t;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    horde_stats *s = cls;
    int metrics = strcmp(url, "/metrics") == 0 && strcmp(method, "GET") == 0;
    char *text = metrics ? horde_stats_text(s) : NULL;
    const char *body = text ? text : "not found\n";
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    free(text);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type",
                            metrics ? "text/plain; version=0.0.4" : "text/plain");
    enum MHD_Result rc = MHD_queue_response(c, metrics ? MHD_HTTP_OK : MHD_HTTP_NOT_FOUND, r);
    MHD_destroy_response(r);
    return rc;
}

int horde_stats_serve(horde_stats *s, int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, on_request, s,
                            MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_END);
    return s->d ? 0 : -1;
}

void horde_stats_close(horde_stats *s)
{
    if (s->d)
        MHD_stop_daemon(s->d);
    s->d = NULL;
    pthread_mutex_destroy(&s->mu);
}
