/* infotext - A1111-compatible generation parameters text. */
#include "image/infotext.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "gesso.h"

typedef struct sbuf {
    char *s;
    size_t len, cap;
    int failed;
} sbuf;

__attribute__((format(printf, 2, 3))) static void put(sbuf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap + (size_t)n + 1) * 2;
        char *s = gi_realloc(b->s, cap);
        if (!s) {
            b->failed = 1;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
}

/* Labels come from the sampler and scheduler tables, so a new row needs no
   change here. */
const char *infotext_sampler_label(const char *s)
{
    for (int i = 0; s && i < gs_sampler_count(); i++) {
        const gs_sampler_desc *d = gs_sampler_at(i);
        if (strcmp(s, d->name) == 0)
            return d->a1111_name;
    }
    return s ? s : "";
}

static const char *scheduler_label(const char *s)
{
    /* the sampler's own schedule, and "normal" (A1111's "Automatic" for the
       k-samplers), are omitted as A1111 omits them */
    if (!s || !*s || strcmp(s, "default") == 0 || strcmp(s, "normal") == 0)
        return NULL;
    for (int i = 0; i < gs_scheduler_count(); i++) {
        const gs_scheduler_desc *d = gs_scheduler_at(i);
        if (strcmp(s, d->name) == 0)
            return d->a1111_label;
    }
    return s;
}

/* A1111 quotes values that would break its "k: v, k: v" line. */
static void put_value(sbuf *b, const char *v)
{
    if (!strpbrk(v, ",:\"\n")) {
        put(b, "%s", v);
        return;
    }
    put(b, "\"");
    for (const char *p = v; *p; p++) {
        if (*p == '"' || *p == '\\')
            put(b, "\\%c", *p);
        else if (*p == '\n')
            put(b, "\\n");
        else
            put(b, "%c", *p);
    }
    put(b, "\"");
}

char *infotext_format(const infotext_fields *f)
{
    sbuf b = {0};
    b.cap = 256;
    b.s = gi_malloc(b.cap);
    if (!b.s)
        return NULL;
    b.s[0] = '\0';
    put(&b, "%s", f->prompt ? f->prompt : "");
    if (f->negative_prompt && *f->negative_prompt)
        put(&b, "\nNegative prompt: %s", f->negative_prompt);
    put(&b, "\nSteps: %d, Sampler: %s", f->steps, infotext_sampler_label(f->sampler));
    const char *sched = scheduler_label(f->scheduler);
    if (sched)
        put(&b, ", Schedule type: %s", sched);
    put(&b, ", CFG scale: %.7g, Seed: %" PRIu64 ", Size: %dx%d", f->cfg_scale, f->seed, f->width,
        f->height);
    if (f->model && *f->model) {
        put(&b, ", Model: ");
        put_value(&b, f->model);
    }
    if (f->batch_size > 1)
        put(&b, ", Batch size: %d, Batch pos: %d", f->batch_size, f->batch_pos);
    if (f->is_img2img || f->hires_upscaler)
        put(&b, ", Denoising strength: %.7g", f->strength);
    if (f->clip_skip > 1)
        put(&b, ", Clip skip: %d", f->clip_skip);
    /* A1111's extra_generation_params in the order they are set: the mask blur
       and the hires fix in p.init, the LoRA hashes later, when the networks
       are activated */
    if (f->mask_blur > 0)
        put(&b, ", Mask blur: %d", f->mask_blur);
    if (f->hires_upscaler) {
        if (f->hires_resize_w || f->hires_resize_h)
            put(&b, ", Hires resize: %dx%d", f->hires_resize_w, f->hires_resize_h);
        else
            put(&b, ", Hires upscale: %.7g", f->hires_scale);
        if (f->hires_steps > 0)
            put(&b, ", Hires steps: %d", f->hires_steps);
        put(&b, ", Hires upscaler: ");
        put_value(&b, f->hires_upscaler);
    }
    if (f->lora_hashes && *f->lora_hashes) {
        put(&b, ", Lora hashes: ");
        put_value(&b, f->lora_hashes);
    }
    if (f->has_eta) /* set by the sampler's initialize, after the networks */
        put(&b, ", Eta: %.7g", f->eta);
    put(&b, ", Version: gesso %s", GESSO_VERSION);
    if (b.failed) {
        gi_free(b.s);
        return NULL;
    }
    return b.s;
}
