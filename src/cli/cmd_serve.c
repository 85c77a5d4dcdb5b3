/* cmd_serve - `gesso serve` (the HTTP service) and `gesso worker` (its worker processes). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/server.h"
#include "queue/store.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "support/log.h"
#include "worker/worker.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: gesso serve [--listen ADDR:PORT] [--data DIR] [--store URL]\n"
            "                   [--models DIR] [--workers N] [--threads N] [--precision P]\n"
            "                   [--lease SECONDS] [--ram-budget SIZE] [--idle-unload SECONDS]\n"
            "                   [--preload NAME]... [--api-keys FILE] [--retention DURATION]\n"
            "                   [limits...]\n"
            "  --listen ADDR:PORT  where the HTTP API listens (default 127.0.0.1:7860; port 0:\n"
            "                      any free port, see --port-file)\n"
            "  --port-file FILE    write the port listened on to FILE once listening\n"
            "  --data DIR          job store (jobs.db) and result images (default gesso-data)\n"
            "  --store URL         the job store instead of DIR/jobs.db: a SQLite file\n"
            "                      (PATH or sqlite:PATH) or a PostgreSQL database\n"
            "                      (postgresql://USER@HOST[:PORT]/DB; libpq's PG* variables\n"
            "                      apply: keep a password in PGPASSWORD or ~/.pgpass)\n"
            "  --models DIR        checkpoints, served as NAME for DIR/NAME.safetensors\n"
            "  --lora-dir DIR      LoRAs, named in a job's \"loras\" or a <lora:NAME:W> prompt\n"
            "                      tag as NAME for DIR/NAME.safetensors (default: none)\n"
            "  --workers N         generation worker processes (default 1; 0: a front end\n"
            "                      only, for workers started with gesso worker elsewhere)\n"
            "  --threads N         compute threads per worker (default: all CPUs / workers)\n"
            "  --precision P       workers' compute: auto (default: bf16 where it outruns\n"
            "                      f32), f32, bf16 or f16 (half the weight memory; f16 keeps\n"
            "                      more of f32's precision, bf16 is faster on bf16 CPUs)\n"
            "  --lease SECONDS     a silent worker's job is requeued after this (default 15)\n"
            "  --ram-budget SIZE   model weights each worker keeps loaded, e.g. 512M, 6G, 6GiB\n"
            "                      or bytes; least recently used models are freed to make\n"
            "                      room (default: 75%% of physical RAM / workers)\n"
            "  --idle-unload SECONDS  free a model no job used for this long (default 0: never)\n"
            "  --preload NAME      load model NAME in every worker at start (repeatable)\n"
            "  --api-keys FILE     require bearer keys (lines: KEY NAME [max_active=N]\n"
            "                      [max_cost=MPS] [admin])\n"
            "                      keys in the store (gesso keys add) are taken too, the\n"
            "                      file's first; either having any keys turns keys on\n"
            "  --stop-grace S      at SIGTERM, workers get S seconds to give their jobs back\n"
            "                      at the end of a step, then are killed (default 10)\n"
            "  --retention DUR     keep finished jobs and images this long: 90s, 12h, 7d\n"
            "                      (default 7d; 0 keeps them forever)\n"
            "limits (a request beyond one is refused with 4xx, nothing queued):\n"
            "  --max-side N        width and height (default 2048)\n"
            "  --max-steps N       sampler steps (default 150)\n"
            "  --max-batch N       images per job (default 8)\n"
            "  --max-prompt BYTES  prompt and negative prompt length (default 16K)\n"
            "  --max-prompt-chunks N  75-token chunks of the prompt, and of the negative\n"
            "                      prompt, with A1111's rules (BREAK starts one; default 32)\n"
            "  --max-body BYTES    request body (default 24M)\n"
            "  --max-image BYTES   decoded init image (default 16M)\n"
            "  --max-job-cost MPS  a job's estimated cost in megapixel-steps: width x height\n"
            "                      x batch / 10^6 x steps run (img2img: about steps x\n"
            "                      strength) x 2 with CFG (cfg_scale != 1); beyond it 422\n"
            "                      too_costly (default 0, no bound; a key's max_cost=MPS\n"
            "                      bounds its jobs too, the lower wins)\n"
            "  --max-queued N      queued jobs; beyond it POST /v1/jobs answers 503 queue_full\n"
            "                      (default 10000; 0: no bound)\n"
            "  --max-store-bytes SIZE  bytes the data directory may hold (job inputs, images,\n"
            "                      jobs.db); a job that would pass it gets 507 store_full\n"
            "                      (default auto: what it holds at start plus half the free\n"
            "                      disk space there; 0: no bound)\n"
            "  --max-connections N concurrent HTTP connections (default 1024)\n"
            "  --max-per-ip N      concurrent connections from one address (default 128; 0: no\n"
            "                      bound)\n"
            "  --max-body-memory BYTES  request bodies being received, all together; beyond it\n"
            "                      uploads get 503 + Retry-After (default 256M)\n"
            "  --request-timeout S a request's headers must arrive within 10 s (or S if less)\n"
            "                      and the whole request within S seconds (default 60)\n"
            "  --http-threads N    event-loop threads serving HTTP (default 4)\n"
            "browsers (while no API keys are set, requests from web pages are refused):\n"
            "  --cors-origin ORIGIN  let pages of ORIGIN (e.g. https://app.example) call the\n"
            "                      API; replies carry CORS headers for it (repeatable; * = any)\n"
            "  --allowed-hosts H,H names the server answers to in Host besides IP addresses\n"
            "                      and localhost (* = any; guards against DNS rebinding)\n"
            "API: POST /v1/jobs, GET|DELETE /v1/jobs/ID, GET /v1/jobs/ID/events (SSE),\n"
            "GET /v1/jobs/ID/images/K, GET /v1/jobs, /v1/models, /v1/queue, /v1/stats,\n"
            "/metrics, /healthz (see docs/api.md).\n");
}

/* A size as arg_bytes reads it (K, M, G, T suffixes), within [min, max]. */
static int arg_size_range(const char *name, const char *s, size_t min, size_t max, size_t *out)
{
    size_t v;
    if (arg_bytes(name, s, &v) != 0)
        return 1;
    if (v < min || v > max) {
        fprintf(stderr, "gesso: %s must be %zu..%zu bytes\n", name, min, max);
        return 1;
    }
    *out = v;
    return 0;
}

/* --max-store-bytes: a size, 0 (no bound) or auto (-1). */
static int arg_store_bytes(const char *s, int64_t *out)
{
    size_t v;
    if (strcmp(s, "auto") == 0 || strcmp(s, "0") == 0) {
        *out = s[0] == '0' ? 0 : -1;
        return 0;
    }
    if (arg_bytes("--max-store-bytes", s, &v) != 0)
        return 1;
    *out = v > (size_t)INT64_MAX ? INT64_MAX : (int64_t)v;
    return 0;
}

/* A duration: a number with s, m, h or d (seconds without a suffix). */
static int arg_duration_ms(const char *name, const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    long long unit = 1000;
    switch (*end) {
    case 's': unit = 1000, end++; break;
    case 'm': unit = 60000, end++; break;
    case 'h': unit = 3600000, end++; break;
    case 'd': unit = 86400000, end++; break;
    default: break;
    }
    if (errno || end == s || *end || v < 0 || v > 3650LL * 86400000 / unit) {
        fprintf(stderr, "gesso: %s must be a duration like 90s, 30m, 12h, 7d (or 0)\n", name);
        return 1;
    }
    *out = v * unit;
    return 0;
}

static int add_to_list(const char *name, const char *value, const char **list, int *n)
{
    if (*n == SERVE_MAX_LIST) {
        fprintf(stderr, "gesso: at most %d values of %s\n", SERVE_MAX_LIST, name);
        return 1;
    }
    list[(*n)++] = value;
    return 0;
}

/* "a.example,b.example" into the list (the argument string is split in place). */
static int split_hosts(char *arg, const char **list, int *n)
{
    for (char *save = NULL, *h = strtok_r(arg, ",", &save); h; h = strtok_r(NULL, ",", &save))
        if (add_to_list("--allowed-hosts", h, list, n) != 0)
            return 1;
    return 0;
}

int cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, 0, 'l'},
        {"port-file", required_argument, 0, 9},
        {"data", required_argument, 0, 'd'},
        {"store", required_argument, 0, 'S'},
        {"models", required_argument, 0, 'm'},
        {"lora-dir", required_argument, 0, 20},
        {"workers", required_argument, 0, 'w'},
        {"threads", required_argument, 0, 't'},
        {"precision", required_argument, 0, 'p'},
        {"lease", required_argument, 0, 'L'},
        {"api-keys", required_argument, 0, 'K'},
        {"retention", required_argument, 0, 'R'},
        {"max-side", required_argument, 0, 1},
        {"max-steps", required_argument, 0, 2},
        {"max-batch", required_argument, 0, 3},
        {"max-prompt", required_argument, 0, 4},
        {"max-body", required_argument, 0, 5},
        {"max-image", required_argument, 0, 6},
        {"max-queued", required_argument, 0, 7},
        {"max-connections", required_argument, 0, 8},
        {"max-per-ip", required_argument, 0, 10},
        {"max-body-memory", required_argument, 0, 11},
        {"request-timeout", required_argument, 0, 12},
        {"http-threads", required_argument, 0, 13},
        {"cors-origin", required_argument, 0, 14},
        {"allowed-hosts", required_argument, 0, 15},
        {"max-store-bytes", required_argument, 0, 16},
        {"max-prompt-chunks", required_argument, 0, 17},
        {"stop-grace", required_argument, 0, 19},
        {"max-job-cost", required_argument, 0, 18},
        {"ram-budget", required_argument, 0, 'B'},
        {"idle-unload", required_argument, 0, 'I'},
        {"preload", required_argument, 0, 'P'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    serve_options o;
    serve_options_default(&o);
    int lease_s = 15, threads = 0;
    gs_precision prec = GS_PRECISION_AUTO;
    size_t budget = 0;
    const char *preload[SERVE_MAX_PRELOAD];
    const char *origins[SERVE_MAX_LIST], *hosts[SERVE_MAX_LIST];
    o.cors_origins = origins;
    o.allowed_hosts = hosts;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "l:d:m:w:t:L:h", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'l': o.listen = optarg; break;
        case 9: o.port_file = optarg; break;
        case 'd': o.data_dir = optarg; break;
        case 'S': o.store_url = optarg; break;
        case 'm': o.models_dir = optarg; break;
        case 20: o.limits.lora_dir = optarg; break;
        case 'w': bad = arg_int("--workers", optarg, 0, 64, &o.workers); break;
        case 't': bad = arg_int("--threads", optarg, 0, 1024, &threads); break;
        case 'p':
            bad = arg_precision(optarg, &prec);
            o.worker_precision = optarg;
            break;
        case 'L': bad = arg_int("--lease", optarg, 1, 3600, &lease_s); break;
        case 'B': bad = arg_bytes("--ram-budget", optarg, &budget); break;
        case 'I': bad = arg_int("--idle-unload", optarg, 0, 31536000, &o.idle_unload_s); break;
        case 'P':
            if (o.n_preload == SERVE_MAX_PRELOAD) {
                fprintf(stderr, "gesso: at most %d --preload models\n", SERVE_MAX_PRELOAD);
                return EXIT_USAGE;
            }
            preload[o.n_preload++] = optarg;
            break;
        case 'K': o.api_keys_path = optarg; break;
        case 'R': bad = arg_duration_ms("--retention", optarg, &o.retention_ms); break;
        case 1: bad = arg_int("--max-side", optarg, 64, 16384, &o.limits.max_side); break;
        case 2: bad = arg_int("--max-steps", optarg, 1, 10000, &o.limits.max_steps); break;
        case 3: bad = arg_int("--max-batch", optarg, 1, 64, &o.limits.max_batch); break;
        case 4:
            bad = arg_size_range("--max-prompt", optarg, 1, 1u << 24, &o.limits.max_prompt);
            break;
        case 5: bad = arg_size_range("--max-body", optarg, 1024, 1u << 30, &o.max_body); break;
        case 6:
            bad = arg_size_range("--max-image", optarg, 1024, 1u << 28, &o.limits.max_image);
            break;
        case 7: bad = arg_int("--max-queued", optarg, 0, 100000000, &o.max_queued); break;
        case 8: bad = arg_int("--max-connections", optarg, 4, 65536, &o.max_connections); break;
        case 10: bad = arg_int("--max-per-ip", optarg, 0, 65536, &o.max_per_ip); break;
        case 11:
            bad = arg_size_range("--max-body-memory", optarg, 1u << 20, (size_t)1 << 40,
                                 &o.max_body_memory);
            break;
        case 12: bad = arg_int("--request-timeout", optarg, 1, 3600, &o.request_timeout_s); break;
        case 13: bad = arg_int("--http-threads", optarg, 1, 256, &o.http_threads); break;
        case 14: bad = add_to_list("--cors-origin", optarg, origins, &o.n_cors_origins); break;
        case 15: bad = split_hosts(optarg, hosts, &o.n_allowed_hosts); break;
        case 16: bad = arg_store_bytes(optarg, &o.max_store_bytes); break;
        case 17:
            bad = arg_int("--max-prompt-chunks", optarg, 1, 1 << 20, &o.limits.max_prompt_chunks);
            break;
        case 19: bad = arg_int("--stop-grace", optarg, 0, 3600, &o.stop_grace_s); break;
        case 18: bad = arg_double("--max-job-cost", optarg, 0, 1e12, &o.limits.max_cost); break;
        case 'h': usage(stdout); return EXIT_OK;
        default: usage(stderr); return EXIT_USAGE;
        }
        if (bad)
            return EXIT_USAGE;
    }
    if (optind < argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (o.max_body_memory < o.max_body) {
        fprintf(stderr, "gesso: --max-body-memory must be at least --max-body\n");
        return EXIT_USAGE;
    }
    if (o.limits.max_side % 8 != 0) {
        fprintf(stderr, "gesso: --max-side must be a multiple of 8\n");
        return EXIT_USAGE;
    }
    if (prec != GS_PRECISION_AUTO) { /* refuse now what every worker would fail at */
        gs_engine_options eo;
        gs_engine_options_init(&eo);
        eo.threads = 1;
        eo.precision = prec;
        gs_engine *probe = NULL;
        gs_status st = gs_engine_create(&eo, &probe);
        gs_engine_free(probe);
        if (st != GS_OK) {
            fprintf(stderr, "gesso: --precision %s: %s on this CPU\n", o.worker_precision,
                    gs_strerror(st));
            return EXIT_USAGE;
        }
    }
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        int per = o.workers > 0 ? o.workers : 1; /* --workers 0 starts none */
        threads = n > per ? (int)(n / per) : 1;
    }
    o.worker_threads = threads;
    o.lease_ms = lease_s * 1000;
    if (budget == 0) { /* 75% of physical memory, shared by the workers */
        long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
        budget = pages > 0 && page > 0 ? (size_t)pages / 4 * 3 * (size_t)page /
                                             (size_t)(o.workers > 0 ? o.workers : 1)
                                       : 0;
    }
    o.ram_budget = budget;
    o.preload = preload;
    static char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        fprintf(stderr, "gesso: cannot find its own executable\n");
        return EXIT_FAILURE_OTHER;
    }
    exe[n] = '\0';
    o.self_exe = exe;
    log_init("serve");
    return serve_run(&o);
}

static void worker_usage(FILE *out)
{
    fprintf(out,
            "usage: gesso worker --store URL --models DIR [--name NAME] [--lease SECONDS]\n"
            "                    [--threads N] [--precision P] [--ram-budget SIZE]\n"
            "                    [--idle-unload SECONDS] [--preload NAME]... [--lora-dir DIR]\n"
            "                    [--blobs DIR]\n"
            "A worker of a fleet: claims jobs from the job store of gesso serve front ends\n"
            "(gesso serve --workers 0 runs one without local workers), runs them, records\n"
            "their results; a long-lived process, logging to stderr. SIGTERM or SIGINT\n"
            "gives the running job back to the queue at the end of its step and exits 0.\n"
            "  --store URL     the front ends' store: postgresql://USER@HOST[:PORT]/DB\n"
            "                  (libpq's PG* variables apply; or the GESSO_STORE variable,\n"
            "                  which keeps a password off the command line)\n"
            "  --models DIR    checkpoints as NAME.safetensors: the worker claims only jobs\n"
            "                  for the models it finds there, and says which it has\n"
            "  --name NAME     its name in the store and GET /v1/workers (default\n"
            "                  HOST-PID; a restarted worker may reuse its name)\n"
            "  --lease S       a job it runs goes back to the queue after S seconds without\n"
            "                  a heartbeat from it (default 15; the front ends' --lease)\n"
            "  --threads N     compute threads (default: all CPUs)\n"
            "  --ram-budget SIZE  model weights kept loaded, e.g. 6G (default 75%% of memory)\n"
            "  --blobs DIR     where images go with a SQLite store (with PostgreSQL they go\n"
            "                  in the database)\n");
}

static volatile int worker_stop;

static void on_term(int sig)
{
    (void)sig;
    worker_stop = 1;
}

int cmd_worker(int argc, char **argv)
{
    static const struct option opts[] = {
        {"store", required_argument, 0, 'd'},
        {"models", required_argument, 0, 'm'},
        {"lora-dir", required_argument, 0, 'D'}, /* serve's --lora-dir */
        {"blobs", required_argument, 0, 'r'},
        {"name", required_argument, 0, 'n'},
        {"notify-fd", required_argument, 0, 'N'},
        {"lease-ms", required_argument, 0, 'L'},
        {"threads", required_argument, 0, 't'},
        {"ram-budget", required_argument, 0, 'B'},
        {"idle-unload", required_argument, 0, 'I'},
        {"preload", required_argument, 0, 'P'},
        {"wake-fd", required_argument, 0, 'W'},
        {"precision", required_argument, 0, 'p'},
        {"lease", required_argument, 0, 'S'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *preload[SERVE_MAX_PRELOAD];
    worker_options o = {0};
    int lease_s = 0;
    o.preload = preload;
    o.lease_ms = 15000;
    o.wake_fd = -1;
    o.notify_fd = -1;
    o.stop = &worker_stop;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'd': o.store_url = optarg; break;
        case 'm': o.models_dir = optarg; break;
        case 'r': o.blob_url = optarg; break;
        case 'N': bad = arg_int("--notify-fd", optarg, 0, 1 << 20, &o.notify_fd); break;
        case 'n': o.name = optarg; break;
        case 'L': bad = arg_int("--lease-ms", optarg, 100, 3600000, &o.lease_ms); break;
        case 't': bad = arg_int("--threads", optarg, 0, 1024, &o.threads); break;
        case 'B': bad = arg_bytes("--ram-budget", optarg, &o.ram_budget); break;
        case 'I': bad = arg_int("--idle-unload", optarg, 0, 31536000, &o.idle_unload_s); break;
        case 'P':
            if (o.n_preload == SERVE_MAX_PRELOAD)
                return EXIT_USAGE;
            preload[o.n_preload++] = optarg;
            break;
        case 'W': bad = arg_int("--wake-fd", optarg, 0, 1 << 20, &o.wake_fd); break;
        case 'p': bad = arg_precision(optarg, &o.precision); break;
        case 'D': o.lora_dir = optarg; break;
        case 'S': bad = arg_int("--lease", optarg, 1, 3600, &lease_s); break;
        case 'h': worker_usage(stdout); return EXIT_OK;
        default: worker_usage(stderr); return EXIT_USAGE;
        }
        if (bad)
            return EXIT_USAGE;
    }
    if (optind < argc) {
        worker_usage(stderr);
        return EXIT_USAGE;
    }
    if (lease_s)
        o.lease_ms = lease_s * 1000;
    if (!o.store_url)
        o.store_url = getenv(WORKER_STORE_ENV);
    if (!o.blob_url && o.store_url && store_holds_blobs(o.store_url))
        o.blob_url = o.store_url; /* images go in the store's database */
    if (!o.store_url || !o.models_dir) {
        fprintf(stderr, "gesso worker: --store URL and --models DIR are needed\n");
        worker_usage(stderr);
        return EXIT_USAGE;
    }
    if (!o.blob_url) {
        fprintf(stderr, "gesso worker: with this store, --blobs DIR says where images go\n");
        return EXIT_USAGE;
    }
    /* started by gesso serve: a wake pipe; on its own: a worker of a fleet,
       which takes only the jobs whose models it has */
    int standalone = o.wake_fd < 0 && o.notify_fd < 0;
    o.only_own_models = standalone;
    if (standalone && o.ram_budget == 0) { /* as gesso serve's one worker: 75% of memory */
        long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
        o.ram_budget = pages > 0 && page > 0 ? (size_t)pages / 4 * 3 * (size_t)page : 0;
    }
    static char default_name[64];
    if (!o.name) {
        char host[48] = "";
        if (gethostname(host, sizeof host - 1) != 0 || !host[0])
            snprintf(host, sizeof host, "worker");
        snprintf(default_name, sizeof default_name, "%s-%d", host, (int)getpid());
        o.name = default_name;
    }
    struct sigaction act;
    memset(&act, 0, sizeof act);
    act.sa_handler = on_term;
    sigaction(SIGTERM, &act, NULL);
    if (standalone)
        sigaction(SIGINT, &act, NULL);
    else
        signal(SIGINT, SIG_IGN); /* ^C reaches the server, which stops the workers in order */
    signal(SIGPIPE, SIG_IGN);    /* a closed notify pipe is an error to read, not a death */
    char who[96];
    snprintf(who, sizeof who, "worker %s", o.name);
    log_init(who);
    return worker_run(&o);
}
