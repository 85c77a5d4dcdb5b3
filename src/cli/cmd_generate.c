/*
 * cmd_generate - `gesso generate`: one-shot text-to-image / image-to-image.
 *
 * Parses options strictly, checks the output location before the long work
 * starts, runs gs_generate with a progress bar on a terminal, and writes PNGs
 * carrying A1111's "parameters" text. SIGINT/SIGTERM cancel within one step.
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/lora_arg.h"
#include "cli/commands.h"
#include "cli/progress_bar.h"
#include "gesso.h"

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: gesso generate --model FILE --prompt TEXT --output FILE.png [options]\n"
            "\n"
            "  -m, --model FILE          SD1.x checkpoint (.safetensors, single-file layout)\n"
            "  -p, --prompt TEXT         prompt; A1111 syntax: (word:1.3) (word) [word] BREAK\n"
            "  -n, --negative-prompt T   negative prompt (default empty)\n"
            "  -o, --output FILE.png     output image; with --batch-size N > 1 the files are\n"
            "                            FILE-0.png .. FILE-<N-1>.png (index = batch position)\n"
            "  -s, --seed N              seed, 0..18446744073709551615 (2^64-1); -1 or none:\n"
            "                            random, and printed (torch's generator, and so the\n"
            "                            noise, uses its low 32 bits)\n"
            "      --steps N             sampling steps (default 20)\n"
            "      --cfg-scale X         classifier-free guidance scale (default 7; 1 = off)\n"
            "      --sampler NAME        one of the samplers below (default euler_a)\n"
            "      --scheduler NAME      one of the schedulers below (default: the sampler's)\n"
            "  -W, --width N             width, multiple of 8 (default 512)\n"
            "  -H, --height N            height, multiple of 8 (default 512)\n"
            "      --clip-skip N         1 = last text-encoder layer (default), 2 = penultimate\n"
            "                            (SD1; SD2 and SDXL always use their penultimate layer)\n"
            "      --prediction P        auto (default: what the file says), eps or v\n"
            "      --original-size WxH   SDXL size conditioning (default: the image size)\n"
            "      --crop-top-left T,L   SDXL crop conditioning (default 0,0)\n"
            "      --target-size WxH     SDXL target size conditioning (default: the image size)\n"
            "      --empty-negative M    SDXL: zero (default, as A1111) or encode (as ComfyUI)\n"
            "  -b, --batch-size N        images drawn together from one seed (default 1)\n"
            "  -i, --init-image FILE     img2img: start from this PNG/JPEG/WebP image\n"
            "      --strength X          img2img denoising strength in (0,1] (default 0.75)\n"
            "      --eta X               noise of the ancestral and SDE samplers, 0..10 (default\n"
            "                            1, A1111's; 0 makes them deterministic)\n"
            "      --mask FILE           inpaint: repaint where this image is white (A1111's\n"
            "                            rules; any size, gray, RGB or RGBA alpha)\n"
            "      --mask-blur N         blur of the mask edge in pixels, 0..64 (default 4)\n"
            "      --inpaint-fill M      what the masked area starts from: original (default),\n"
            "                            fill, latent-noise or latent-nothing\n"
            "      --inpaint-full-res    repaint only the masked area's box at -W x -H\n"
            "      --inpaint-padding N   pixels around that box, 0..256 (default 32)\n"
            "      --mask-invert         repaint where the mask is black\n"
            "      --outpaint L,R,T,B    outpaint: pad the init image with gray and repaint the\n"
            "                            border (plus mask-blur pixels of overlap); -W/-H\n"
            "                            default to the padded size\n"
            "      --hires-scale X       hires fix (A1111's): a second img2img pass at\n"
            "                            int(W*X) x int(H*X) (1..8; default off)\n"
            "      --hires-width N       ... or at this width (and/or --hires-height N; one\n"
            "      --hires-height N      side alone keeps the aspect)\n"
            "      --hires-steps N       steps of the second pass (default: --steps)\n"
            "      --hires-denoise X     its denoising strength in (0,1] (default 0.7)\n"
            "      --hires-upscaler U    latent (default), latent-antialiased, latent-bicubic,\n"
            "                            latent-bicubic-antialiased, latent-nearest,\n"
            "                            latent-nearest-exact or lanczos (through the VAE)\n"
            "      --vae-tile N          decode in tiles of N px (multiple of 8, >= 64), auto\n"
            "                            (default: 512 px tiles above 2048x2048), or never\n"
            "      --lora FILE[:W]       fold a LoRA into the weights at weight W (default 1);\n"
            "                            FILE:TE:UNET weighs the text encoder and UNet apart;\n"
            "                            repeatable. Prompt tags <lora:NAME:W> work too\n"
            "      --lora-dir DIR        where <lora:NAME:...> finds NAME.safetensors\n"
            "      --lora-strict on|off  on (default): a LoRA module that fits no layer fails\n"
            "                            the run; off: it is left out with a warning\n"
            "  -t, --threads N           compute threads (default: all CPUs)\n"
            "      --precision P         auto (default: bf16 where it outruns f32), f32\n"
            "                            (matches the reference tools), bf16 (half memory),\n"
            "                            f16 (half memory, closer to f32; f32 products)\n"
            "  -q, --quiet               no progress bar\n"
            "  -h, --help                this help\n"
            "\n"
            "Prints each written file on stdout. The seed and progress go to stderr.\n"
            "Exit status: 0 success, 1 generation failed, 2 bad usage or parameters,\n"
            "3 model or input image unreadable/unsupported, 4 output not writable,\n"
            "5 interrupted.\n");
    /* the engine's own tables, so the help never lags behind them */
    const char *const *names[2] = {gs_sampler_names(), gs_scheduler_names()};
    for (int k = 0; k < 2; k++) {
        fprintf(out, "\n%s:", k ? "Schedulers" : "Samplers");
        for (const char *const *n = names[k]; *n; n++)
            fprintf(out, " %s", *n);
        fputc('\n', out);
    }
}

typedef struct cli_progress {
    progress_bar bar;
} cli_progress;

static int on_progress(const gs_progress *p, void *user)
{
    cli_progress *cp = user;
    progress_bar_update(&cp->bar, p->step, p->steps, p->elapsed_s, p->eta_s);
    return interrupted;
}

static int has_png_suffix(const char *s)
{
    size_t n = strlen(s);
    return n > 4 && strcasecmp(s + n - 4, ".png") == 0;
}

/* FILE.png -> FILE-k.png for batches. */
static char *output_name(const char *base, int index, int count)
{
    size_t n = strlen(base) + 32;
    char *s = malloc(n);
    if (!s)
        return NULL;
    if (count == 1)
        snprintf(s, n, "%s", base);
    else
        snprintf(s, n, "%.*s-%d.png", (int)(strlen(base) - 4), base, index);
    return s;
}

static int check_output_dir(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    if (access(dir, W_OK) != 0) {
        fprintf(stderr, "gesso: cannot write to directory '%s'\n", dir);
        return -1;
    }
    return 0;
}

static int arg_inpaint_fill(const char *s, gs_inpaint_fill *out)
{
    static const char *const names[] = {"fill", "original", "latent-noise", "latent-nothing"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (gs_inpaint_fill)i;
            return 0;
        }
    fprintf(stderr,
            "gesso: --inpaint-fill: '%s' is not original, fill, latent-noise or latent-nothing\n",
            s);
    return 1;
}

/* L,R,T,B: four pixel counts, 0..4096 each. */
static int arg_outpaint(const char *s, int pad[4])
{
    const char *q = s;
    for (int i = 0; i < 4; i++) {
        char *end;
        long v = strtol(q, &end, 10);
        if (end == q || v < 0 || v > 4096 || (i < 3 ? *end != ',' : *end != '\0')) {
            fprintf(stderr, "gesso: --outpaint: '%s' is not L,R,T,B (pixels, 0..4096)\n", s);
            return 1;
        }
        pad[i] = (int)v;
        q = end + 1;
    }
    return 0;
}

static int exit_code_for(gs_status st)
{
    switch (st) {
    case GS_OK: return EXIT_OK;
    case GS_ERR_INVALID_ARGUMENT: return EXIT_USAGE;
    case GS_ERR_IO:
    case GS_ERR_FORMAT:
    case GS_ERR_UNSUPPORTED: return EXIT_INPUT;
    case GS_ERR_CANCELLED: return EXIT_CANCELLED;
    default: return EXIT_FAILURE_OTHER;
    }
}

int cmd_generate(int argc, char **argv)
{
    enum {
        OPT_STEPS = 256,
        OPT_CFG,
        OPT_SAMPLER,
        OPT_SCHEDULER,
        OPT_CLIP_SKIP,
        OPT_STRENGTH,
        OPT_ETA,
        OPT_VAE_TILE,
        OPT_PREDICTION,
        OPT_ORIGINAL_SIZE,
        OPT_CROP,
        OPT_TARGET_SIZE,
        OPT_EMPTY_NEGATIVE,
        OPT_LORA,
        OPT_LORA_DIR,
        OPT_LORA_STRICT,
        OPT_MASK,
        OPT_MASK_BLUR,
        OPT_INPAINT_FILL,
        OPT_FULL_RES,
        OPT_PADDING,
        OPT_MASK_INVERT,
        OPT_OUTPAINT,
        OPT_HIRES_SCALE,
        OPT_HIRES_WIDTH,
        OPT_HIRES_HEIGHT,
        OPT_HIRES_STEPS,
        OPT_HIRES_DENOISE,
        OPT_HIRES_UPSCALER
    };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},
        {"prompt", required_argument, 0, 'p'},
        {"negative-prompt", required_argument, 0, 'n'},
        {"output", required_argument, 0, 'o'},
        {"seed", required_argument, 0, 's'},
        {"steps", required_argument, 0, OPT_STEPS},
        {"cfg-scale", required_argument, 0, OPT_CFG},
        {"sampler", required_argument, 0, OPT_SAMPLER},
        {"scheduler", required_argument, 0, OPT_SCHEDULER},
        {"width", required_argument, 0, 'W'},
        {"height", required_argument, 0, 'H'},
        {"clip-skip", required_argument, 0, OPT_CLIP_SKIP},
        {"batch-size", required_argument, 0, 'b'},
        {"init-image", required_argument, 0, 'i'},
        {"strength", required_argument, 0, OPT_STRENGTH},
        {"eta", required_argument, 0, OPT_ETA},
        {"vae-tile", required_argument, 0, OPT_VAE_TILE},
        {"prediction", required_argument, 0, OPT_PREDICTION},
        {"original-size", required_argument, 0, OPT_ORIGINAL_SIZE},
        {"crop-top-left", required_argument, 0, OPT_CROP},
        {"target-size", required_argument, 0, OPT_TARGET_SIZE},
        {"empty-negative", required_argument, 0, OPT_EMPTY_NEGATIVE},
        {"lora", required_argument, 0, OPT_LORA},
        {"lora-dir", required_argument, 0, OPT_LORA_DIR},
        {"lora-strict", required_argument, 0, OPT_LORA_STRICT},
        {"mask", required_argument, 0, OPT_MASK},
        {"mask-blur", required_argument, 0, OPT_MASK_BLUR},
        {"inpaint-fill", required_argument, 0, OPT_INPAINT_FILL},
        {"inpaint-full-res", no_argument, 0, OPT_FULL_RES},
        {"inpaint-padding", required_argument, 0, OPT_PADDING},
        {"mask-invert", no_argument, 0, OPT_MASK_INVERT},
        {"outpaint", required_argument, 0, OPT_OUTPAINT},
        {"hires-scale", required_argument, 0, OPT_HIRES_SCALE},
        {"hires-width", required_argument, 0, OPT_HIRES_WIDTH},
        {"hires-height", required_argument, 0, OPT_HIRES_HEIGHT},
        {"hires-steps", required_argument, 0, OPT_HIRES_STEPS},
        {"hires-denoise", required_argument, 0, OPT_HIRES_DENOISE},
        {"hires-upscaler", required_argument, 0, OPT_HIRES_UPSCALER},
        {"threads", required_argument, 0, 't'},
        {"precision", required_argument, 0, 'P'},
        {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    gs_params p;
    gs_params_init(&p);
    gs_lora loras[CLI_MAX_LORAS];
    p.loras = loras;
    const char *model_path = NULL, *output = NULL, *init_path = NULL, *mask_path = NULL;
    int random_seed = 1, threads = 0, quiet = 0, size_given = 0, outpaint = 0, pad[4] = {0};
    gs_precision precision = GS_PRECISION_AUTO;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "m:p:n:o:s:W:H:b:i:t:qh", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'm': model_path = optarg; break;
        case 'p': p.prompt = optarg; break;
        case 'n': p.negative_prompt = optarg; break;
        case 'o': output = optarg; break;
        case 's': bad = arg_seed(optarg, &p.seed, &random_seed); break;
        case OPT_STEPS: bad = arg_int("--steps", optarg, 1, 1000, &p.steps); break;
        case OPT_CFG: bad = arg_float("--cfg-scale", optarg, 0, 100, &p.cfg_scale); break;
        case OPT_SAMPLER: p.sampler = optarg; break;
        case OPT_SCHEDULER: p.scheduler = optarg; break;
        case 'W':
            bad = arg_int("--width", optarg, 64, 4096, &p.width);
            size_given |= 1;
            break;
        case 'H':
            bad = arg_int("--height", optarg, 64, 4096, &p.height);
            size_given |= 2;
            break;
        case OPT_CLIP_SKIP: bad = arg_int("--clip-skip", optarg, 1, 64, &p.clip_skip); break;
        case 'b': bad = arg_int("--batch-size", optarg, 1, 64, &p.batch_size); break;
        case 'i': init_path = optarg; break;
        case OPT_STRENGTH: bad = arg_float("--strength", optarg, 0, 1, &p.strength); break;
        case OPT_ETA: bad = arg_float("--eta", optarg, 0, 10, &p.eta); break;
        case OPT_VAE_TILE: bad = arg_vae_tile(optarg, &p.vae_tile); break;
        case OPT_PREDICTION: bad = arg_prediction(optarg, &p.prediction); break;
        case OPT_ORIGINAL_SIZE:
            bad = arg_size("--original-size", optarg, &p.original_width, &p.original_height);
            break;
        case OPT_CROP:
            bad = arg_pair("--crop-top-left", optarg, 0, 65536, &p.crop_top, &p.crop_left);
            break;
        case OPT_TARGET_SIZE:
            bad = arg_size("--target-size", optarg, &p.target_width, &p.target_height);
            break;
        case OPT_EMPTY_NEGATIVE:
            if (strcmp(optarg, "zero") == 0 || strcmp(optarg, "encode") == 0)
                p.encode_empty_negative = optarg[0] == 'e';
            else {
                fprintf(stderr, "gesso: --empty-negative: '%s' is not zero or encode\n", optarg);
                bad = 1;
            }
            break;
        case OPT_LORA:
            bad = arg_lora(optarg, p.n_loras, &loras[p.n_loras]);
            p.n_loras += !bad;
            break;
        case OPT_LORA_DIR: p.lora_dir = optarg; break;
        case OPT_LORA_STRICT: bad = arg_on_off("--lora-strict", optarg, &p.lora_strict); break;
        case OPT_MASK: mask_path = optarg; break;
        case OPT_MASK_BLUR: bad = arg_int("--mask-blur", optarg, 0, 64, &p.mask_blur); break;
        case OPT_INPAINT_FILL: bad = arg_inpaint_fill(optarg, &p.inpaint_fill); break;
        case OPT_FULL_RES: p.inpaint_full_res = 1; break;
        case OPT_PADDING:
            bad = arg_int("--inpaint-padding", optarg, 0, 256, &p.inpaint_padding);
            break;
        case OPT_MASK_INVERT: p.mask_invert = 1; break;
        case OPT_OUTPAINT:
            bad = arg_outpaint(optarg, pad);
            outpaint = 1;
            break;
        case OPT_HIRES_SCALE: bad = arg_float("--hires-scale", optarg, 0, 8, &p.hires_scale); break;
        case OPT_HIRES_WIDTH:
            bad = arg_int("--hires-width", optarg, 0, 4096, &p.hires_width);
            break;
        case OPT_HIRES_HEIGHT:
            bad = arg_int("--hires-height", optarg, 0, 4096, &p.hires_height);
            break;
        case OPT_HIRES_STEPS:
            bad = arg_int("--hires-steps", optarg, 0, 1000, &p.hires_steps);
            break;
        case OPT_HIRES_DENOISE:
            bad = arg_float("--hires-denoise", optarg, 0, 1, &p.hires_denoise);
            break;
        case OPT_HIRES_UPSCALER:
            if (gs_hires_upscaler_parse(optarg, &p.hires_upscaler) != 0) {
                fprintf(stderr,
                        "gesso: --hires-upscaler: '%s' is not latent, latent-antialiased, "
                        "latent-bicubic, latent-bicubic-antialiased, latent-nearest, "
                        "latent-nearest-exact or lanczos\n",
                        optarg);
                bad = 1;
            }
            break;
        case 't': bad = arg_int("--threads", optarg, 0, 1024, &threads); break;
        case 'P': bad = arg_precision(optarg, &precision); break;
        case 'q': quiet = 1; break;
        case 'h': usage(stdout); return EXIT_OK;
        default: usage(stderr); return EXIT_USAGE;
        }
        if (bad)
            return EXIT_USAGE;
    }
    if (optind < argc) {
        fprintf(stderr, "gesso: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (!model_path || !output) {
        fprintf(stderr, "gesso: generate needs --model and --output (see --help)\n");
        return EXIT_USAGE;
    }
    if (!has_png_suffix(output)) {
        fprintf(stderr, "gesso: --output must name a .png file\n");
        return EXIT_USAGE;
    }
    if ((mask_path || outpaint) && !init_path) {
        fprintf(stderr, "gesso: --mask and --outpaint need --init-image\n");
        return EXIT_USAGE;
    }
    if (mask_path && outpaint) {
        fprintf(stderr, "gesso: --outpaint makes its own mask: give one of --mask, --outpaint\n");
        return EXIT_USAGE;
    }
    if (init_path && p.strength <= 0) {
        fprintf(stderr, "gesso: --strength must be above 0\n");
        return EXIT_USAGE;
    }
    if (check_output_dir(output))
        return EXIT_OUTPUT;
    if (random_seed) {
        if (getrandom(&p.seed, sizeof p.seed, 0) != sizeof p.seed)
            p.seed = (uint64_t)time(NULL);
        p.seed &= 0xffffffffu; /* torch seeds its generator with 32 bits: keep it readable */
        fprintf(stderr, "gesso: seed %" PRIu64 "\n", p.seed);
    }

    int rc = EXIT_OK;
    gs_engine *eng = NULL;
    gs_model *model = NULL;
    gs_image *init = NULL, *mask = NULL;
    gs_result *res = NULL;
    char msg[512];
    gs_status st;

    if (init_path) {
        if ((st = gs_image_load(init_path, &init, msg, sizeof msg)) != GS_OK) {
            fprintf(stderr, "gesso: init image '%s': %s\n", init_path, msg);
            return EXIT_INPUT;
        }
        p.init_image = init;
    }
    if (mask_path) {
        if ((st = gs_image_load_alpha(mask_path, &mask, msg, sizeof msg)) != GS_OK) {
            fprintf(stderr, "gesso: mask '%s': %s\n", mask_path, msg);
            rc = EXIT_INPUT;
            goto out;
        }
        p.mask = mask;
    }
    if (outpaint) {
        gs_image *canvas = NULL;
        if ((st = gs_outpaint_canvas(init, pad[0], pad[1], pad[2], pad[3], p.mask_blur, &canvas,
                                     &mask)) != GS_OK) {
            fprintf(stderr, "gesso: --outpaint: %s\n", gs_strerror(st));
            rc = exit_code_for(st);
            goto out;
        }
        gs_image_free(init);
        p.init_image = init = canvas;
        p.mask = mask;
        if (!(size_given & 1))
            p.width = canvas->width;
        if (!(size_given & 2))
            p.height = canvas->height;
    }
    gs_engine_options eo;
    gs_engine_options_init(&eo);
    eo.threads = threads;
    eo.precision = precision;
    if ((st = gs_engine_create(&eo, &eng)) != GS_OK) {
        fprintf(stderr, "gesso: cannot start the engine: %s\n", gs_strerror(st));
        rc = EXIT_FAILURE_OTHER;
        goto out;
    }
    /* one generation: each network loads when its stage starts and goes when it ends */
    if ((st = gs_model_load_one_shot(eng, model_path, &model)) != GS_OK) {
        fprintf(stderr, "gesso: %s\n", gs_engine_errmsg(eng));
        rc = exit_code_for(st);
        goto out;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    cli_progress cp;
    progress_bar_init(&cp.bar, stderr);
    if (quiet)
        cp.bar.enabled = 0;
    st = gs_generate(eng, model, &p, on_progress, &cp, &res);
    progress_bar_finish(&cp.bar);
    if (st != GS_OK) {
        fprintf(stderr, "gesso: %s\n",
                st == GS_ERR_CANCELLED ? "interrupted" : gs_engine_errmsg(eng));
        rc = exit_code_for(st);
        goto out;
    }
    for (int i = 0; i < gs_result_count(res); i++) {
        char *name = output_name(output, i, gs_result_count(res));
        if (!name) {
            rc = EXIT_FAILURE_OTHER;
            goto out;
        }
        st = gs_image_save_png(gs_result_image(res, i), name, gs_result_infotext(res, i), msg,
                               sizeof msg);
        if (st != GS_OK) {
            fprintf(stderr, "gesso: cannot write '%s': %s\n", name, msg);
            free(name);
            rc = EXIT_OUTPUT;
            goto out;
        }
        printf("%s\n", name);
        free(name);
    }
    if (gs_result_warnings(res))
        fprintf(stderr, "gesso: warning: %s\n", gs_result_warnings(res));
out:
    gs_result_free(res);
    gs_model_free(model);
    gs_engine_free(eng);
    gs_image_free(init);
    gs_image_free(mask);
    return rc;
}
