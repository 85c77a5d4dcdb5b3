/*
 * cmd_horde - `gesso horde`: this machine as an AI Horde worker. Reads the
 * reGen worker's bridgeData.yaml, serves the models of models_to_load found
 * on disk, and generates in a child process (`gesso horde --child`, not for
 * people) so that an engine crash costs one job, not the worker.
 * SIGINT/SIGTERM: finish and submit the job in hand, then exit 0; a second
 * one: fault it, submit that, exit 0.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "horde/bridge.h"
#include "horde/child.h"
#include "horde/client.h"
#include "horde/config.h"
#include "support/log.h"

static volatile int stop_level;

static void on_signal(int sig)
{
    (void)sig;
    if (stop_level < 2)
        stop_level++;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: gesso horde --config bridgeData.yaml [options]\n"
            "\n"
            "  -c, --config FILE      the reGen worker's bridgeData.yaml (api_key, dreamer_name,\n"
            "                         models_to_load, max_power, allow_img2img, nsfw, ...)\n"
            "      --models DIR       where checkpoints live, as NAME.safetensors with the\n"
            "                         Horde's model name, other characters than letters,\n"
            "                         digits, '.', '_', '-' as '_' (default: cache_home, or\n"
            "                         models)\n"
            "      --horde-url URL    the Horde (default: horde_url, or https://aihorde.net)\n"
            "      --status-port N    Prometheus /metrics on 127.0.0.1:N (jobs by state,\n"
            "                         dropped, kudos, megapixel-steps, MPS)\n"
            "      --safety-rules F   more prompt-filter rules (data/horde/safety.rules'\n"
            "                         format) on top of the built-in ones\n"
            "  -t, --threads N        compute threads (default: all CPUs)\n"
            "      --precision P      auto (default: bf16 where it outruns f32), f32, bf16 or\n"
            "                         f16 (bf16 and f16 halve the weight memory: SDXL in ~6 GB\n"
            "                         instead of ~11; f16 keeps an f16 file's weights as they\n"
            "                         are, with f32 products)\n"
            "  -h, --help             this help\n"
            "\n"
            "A model of models_to_load not in --models is downloaded there from the Horde's\n"
            "model reference (model_reference, download_budget_gb); LoRAs are fetched from\n"
            "CivitAI into cache_home/loras (allow_lora, max_lora_cache_size). See docs/horde.md.\n"
            "SIGINT/SIGTERM finish the job in hand and submit it; a second one faults it.\n");
}

static int run_child(int argc, char **argv)
{
    horde_child_options o = {.models_dir = "models", .threads = 0};
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--models") == 0)
            o.models_dir = argv[i + 1];
        else if (strcmp(argv[i], "--lora-dir") == 0)
            o.lora_dir = argv[i + 1];
        else if (strcmp(argv[i], "--safety-clip") == 0)
            o.safety_clip = argv[i + 1];
        else if (strcmp(argv[i], "--threads") == 0 &&
                 arg_int("--threads", argv[i + 1], 0, 1024, &o.threads) != 0)
            return EXIT_USAGE;
        else if (strcmp(argv[i], "--precision") == 0 && arg_precision(argv[i + 1], &o.precision))
            return EXIT_USAGE;
    }
    log_init("horde-child");
    return horde_child_run(&o);
}

int cmd_horde(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--child") == 0)
        return run_child(argc, argv);
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'},
        {"models", required_argument, 0, 'M'},
        {"horde-url", required_argument, 0, 'U'},
        {"status-port", required_argument, 0, 'S'},
        {"threads", required_argument, 0, 't'},
        {"precision", required_argument, 0, 'P'},
        {"safety-rules", required_argument, 0, 'R'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *config = NULL, *models = NULL, *url = NULL, *rules = NULL, *precision = NULL;
    gs_precision prec;
    int threads = 0, status_port = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:t:h", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'c': config = optarg; break;
        case 'M': models = optarg; break;
        case 'U': url = optarg; break;
        case 'R': rules = optarg; break;
        case 'S': bad = arg_int("--status-port", optarg, 1, 65535, &status_port); break;
        case 't': bad = arg_int("--threads", optarg, 0, 1024, &threads); break;
        case 'P':
            bad = arg_precision(optarg, &prec);
            precision = optarg;
            break;
        case 'h': usage(stdout); return EXIT_OK;
        default: usage(stderr); return EXIT_USAGE;
        }
        if (bad)
            return EXIT_USAGE;
    }
    if (optind < argc || !config) {
        fprintf(stderr, "gesso: horde needs --config (see --help)\n");
        return EXIT_USAGE;
    }
    log_init("horde");
    horde_config cfg;
    horde_config_defaults(&cfg);
    char msg[512];
    if (horde_config_load(&cfg, config, msg, sizeof msg) != 0) {
        fprintf(stderr, "gesso: %s\n", msg);
        horde_config_free(&cfg);
        return EXIT_USAGE;
    }
    if (horde_config_check(&cfg, msg, sizeof msg) != 0) {
        fprintf(stderr, "gesso: %s: %s\n", config, msg);
        horde_config_free(&cfg);
        return EXIT_USAGE;
    }
    horde_safety *safety = horde_safety_load(rules, msg, sizeof msg);
    if (!safety) {
        fprintf(stderr, "gesso: --safety-rules: %s\n", msg);
        horde_config_free(&cfg);
        return EXIT_USAGE;
    }
    if (url)
        snprintf(cfg.horde_url, sizeof cfg.horde_url, "%s", url);
    size_t ul = strlen(cfg.horde_url);
    while (ul > 0 && cfg.horde_url[ul - 1] == '/') /* base URL: the paths add their own '/' */
        cfg.horde_url[--ul] = '\0';
    if (!models)
        models = cfg.cache_home[0] ? cfg.cache_home : "models";
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0 || horde_client_init() != 0) {
        fprintf(stderr, "gesso: cannot start\n");
        horde_safety_free(safety);
        horde_config_free(&cfg);
        return EXIT_FAILURE_OTHER;
    }
    exe[n] = '\0';
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    horde_bridge_options o = {.cfg = &cfg,
                              .models_dir = models,
                              .self_exe = exe,
                              .threads = threads,
                              .precision = precision,
                              .idle_ms = 1000,
                              .backoff_max_ms = 60000,
                              /* a stop waits for a pop in flight: under 30 s */
                              .pop_timeout_s = 20,
                              .status_port = status_port,
                              .safety = safety,
                              .ttl_scale = 1,
                              .stop = &stop_level};
    /* tests shorten the waits; an operator has no reason to */
    const char *fast = getenv("GESSO_HORDE_FAST");
    if (fast && strcmp(fast, "1") == 0) {
        o.idle_ms = 50;
        o.backoff_max_ms = 200;
        o.pop_timeout_s = 2;
    }
    /* tests shrink the Horde's job time-out to make the pacing bite (pace.h) */
    const char *scale = getenv("GESSO_HORDE_TTL_SCALE");
    if (scale && strtod(scale, NULL) > 0)
        o.ttl_scale = strtod(scale, NULL);
    int rc = horde_bridge_run(&o);
    horde_safety_free(safety);
    horde_config_free(&cfg);
    return rc;
}
