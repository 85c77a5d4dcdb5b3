/*
 * lora_apply - plan (check every module against its layer), then for each
 * layer: base from the checkpoint -> f32 in the kernels' layout -> + the
 * scaled up @ down of every network (one GEMM each, beta = 1) -> the resident
 * dtype. Layers the previous set touched and this one does not go through
 * the same path with no deltas, which restores their base bits.
 *
 * OpenCLIP's fused attn.in_proj_weight [3w, w] is one resident weight (the
 * text encoder runs it as one GEMM); a q, k or v module patches its row block
 * [s*w, (s+1)*w), and the whole fused weight is recomputed from the
 * checkpoint like any other, so its restore is exact too. Each slice is
 * applied on its own, as ComfyUI does; A1111 applies an OpenCLIP attention's
 * modules only when q, k, v and out_proj are all in the file (kohya's always
 * are), and then the same sums.
 */
#include "model/lora_apply.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "compute/gemm.h"
#include "compute/gemm_bf16.h"
#include "compute/gemm_pack.h"
#include "compute/half_span.h"
#include "model/conv_order.h"

struct lora_applied {
    char **names; /* resident weight names (".weight" included) */
    int n;
};

typedef struct contrib {
    const lora_module *m;
    float scale;
    int slice; /* -1: the whole layer; 0/1/2: row block of a fused q/k/v weight */
} contrib;

/* One resident weight to recompute. */
typedef struct layer {
    const weight_entry *e;
    int out, k, cin;
    size_t cols; /* k*k*cin */
    contrib *c;
    int nc, capc;
} layer;

typedef struct plan {
    layer *l;
    int n, cap;
} plan;

void lora_applied_free(lora_applied *a)
{
    if (!a)
        return;
    for (int i = 0; i < a->n; i++)
        gi_free(a->names[i]);
    gi_free(a->names);
    gi_free(a);
}

static void shape_str(char *buf, size_t size, const st_tensor *t)
{
    size_t o = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < t->ndim && o < size; d++)
        o += (size_t)snprintf(buf + o, size - o, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
    if (o < size)
        snprintf(buf + o, size - o, "]");
}

/* The layer entry e describes, as (out, k, cin); -1 when it is no GEMM weight. */
static int layer_dims(const weight_entry *e, int *out, int *k, int *cin)
{
    if (e->dtype != ST_F32 && e->dtype != ST_BF16 && e->dtype != ST_F16)
        return -1;
    if (e->ndim == 2) {
        *out = (int)e->shape[0], *k = 1, *cin = (int)e->shape[1];
        return 0;
    }
    if (e->ndim == 4 && e->shape[1] == e->shape[2]) { /* [cout, k, k, cin] */
        *out = (int)e->shape[0], *k = (int)e->shape[1], *cin = (int)e->shape[3];
        return 0;
    }
    return -1;
}

/* NULL when m's factors fit layer L, else why not. */
static const char *misfit(const lora_module *m, const layer *L)
{
    const st_tensor *d = m->down, *u = m->up;
    int ok_down = d->ndim == 2
                      ? L->k == 1 && d->shape[1] == L->cin
                      : d->shape[1] == L->cin && d->shape[2] == L->k && d->shape[3] == L->k;
    if (!ok_down)
        return "lora_down";
    if (u->shape[0] != L->out)
        return "lora_up";
    return NULL;
}

static layer *plan_layer(plan *p, const weight_entry *e)
{
    for (int i = 0; i < p->n; i++)
        if (p->l[i].e == e)
            return &p->l[i];
    if (p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 64;
        layer *l = gi_realloc(p->l, (size_t)cap * sizeof *l);
        if (!l)
            return NULL;
        p->l = l;
        p->cap = cap;
    }
    layer *L = &p->l[p->n++];
    memset(L, 0, sizeof *L);
    L->e = e;
    layer_dims(e, &L->out, &L->k, &L->cin);
    L->cols = (size_t)L->k * L->k * L->cin;
    return L;
}

static int add_contrib(layer *L, const lora_module *m, float scale, int slice)
{
    if (L->nc == L->capc) {
        int cap = L->capc ? 2 * L->capc : 4;
        contrib *c = gi_realloc(L->c, (size_t)cap * sizeof *c);
        if (!c)
            return -1;
        L->c = c;
        L->capc = cap;
    }
    L->c[L->nc++] = (contrib){m, scale, slice};
    return 0;
}

static void plan_free(plan *p)
{
    for (int i = 0; i < p->n; i++)
        gi_free(p->l[i].c);
    gi_free(p->l);
}

/* A module that does not fit: refused (strict) or counted. */
static gs_status misfit_fail(const lora_net *net, const lora_module *m, const char *why, int strict,
                             int *skipped, char *note, size_t note_size, gi_error *err)
{
    if (strict)
        return gi_fail(err, GS_ERR_FORMAT, "LoRA %s: module '%s' %s", net->label, m->key, why);
    if ((*skipped)++ == 0 && note_size)
        snprintf(note, note_size, "LoRA %s: module '%s' %s", net->label, m->key, why);
    return GS_OK;
}

static gs_status build_plan(plan *p, const weight_log *index, const lora_net *nets, int n,
                            int strict, int *skipped, char *note, size_t note_size, gi_error *err)
{
    for (int i = 0; i < n; i++) {
        const lora_net *net = &nets[i];
        for (int j = 0; j < net->file->n; j++) {
            const lora_module *m = &net->file->mods[j];
            char name[300], where[400], ds[96], why[900];
            int slice = m->target.slice;
            /* a fused weight is the tensor "<layer>_weight" (attn.in_proj_weight) */
            snprintf(name, sizeof name, "%.250s%s", m->target.name,
                     slice < 0 ? ".weight" : "_weight");
            const weight_entry *e = weight_log_find(index, name);
            int out, k, cin;
            const char *bad = NULL;
            if (!e || layer_dims(e, &out, &k, &cin) != 0 || (slice >= 0 && (k != 1 || out % 3))) {
                snprintf(why, sizeof why, "patches '%s', which this model does not have%s", name,
                         e && slice >= 0 ? " as a fused [3w, w] q/k/v weight" : "");
                bad = why;
            } else {
                if (slice >= 0) { /* the module's layer is the row block */
                    out /= 3;
                    snprintf(where, sizeof where, "'%s' rows [%d, %d)", name, slice * out,
                             (slice + 1) * out);
                } else {
                    snprintf(where, sizeof where, "'%s'", name);
                }
                layer probe = {.e = e, .out = out, .k = k, .cin = cin};
                const char *part = misfit(m, &probe);
                int64_t r = m->rank, cap = (int64_t)k * k * cin;
                if (part)
                    shape_str(ds, sizeof ds, strcmp(part, "lora_up") == 0 ? m->up : m->down);
                if (part)
                    snprintf(why, sizeof why, "has %s %s, but its layer %s is [%d, %d, %d, %d]",
                             part, ds, where, out, cin, k, k);
                else if (r > out || r > cap)
                    snprintf(why, sizeof why,
                             "has rank %d, more than its layer %s [%d, %d, %d, %d] allows", m->rank,
                             where, out, cin, k, k);
                if (part || r > out || r > cap)
                    bad = why;
            }
            if (bad) {
                gs_status st = misfit_fail(net, m, bad, strict, skipped, note, note_size, err);
                if (st != GS_OK)
                    return st;
                continue;
            }
            float mult = m->target.part == LORA_TE ? net->te : net->unet;
            float scale = mult;
            if (m->alpha) {
                float a;
                st_span_to_f32(m->alpha, 0, 1, &a, NULL);
                scale = a / (float)m->rank * mult;
            }
            if (scale == 0.0f)
                continue; /* adds nothing: the layer stays (or goes back to) its base */
            layer *L = plan_layer(p, e);
            if (!L || add_contrib(L, m, scale, slice) != 0)
                return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory planning the LoRAs");
        }
    }
    return GS_OK;
}

/* t (numel = rows * cols, [rows][cin][k][k] when k > 1) as f32 rows in the kernels' order,
   on the threads, row by row exactly as the loader converts. tmp: cols floats per thread
   (omp_get_max_threads() of them) for reordering. */
static void read_rows(const st_tensor *t, size_t rows, int cin, int k, float *dst, float *tmp)
{
    size_t cols = (size_t)t->numel / rows;
#pragma omp parallel if (rows > 8)
    {
        float *mine = tmp + (size_t)omp_get_thread_num() * cols;
#pragma omp for schedule(static)
        for (size_t r = 0; r < rows; r++) {
            st_span_to_f32(t, r * cols, cols, dst + r * cols, NULL);
            if (k > 1) { /* in place through mine */
                wl_conv_row_order(dst + r * cols, mine, cin, k * k);
                memcpy(dst + r * cols, mine, cols * sizeof *mine);
            }
        }
    }
}

/* W (in buf) += scale * up @ down for one module: all of W's rows, or the
   slice's row block of a fused q/k/v weight. */
static void add_delta(const layer *L, const contrib *c, float *buf, float *ud, float *tmp)
{
    const lora_module *m = c->m;
    int r = m->rank, rows = c->slice < 0 ? L->out : L->out / 3;
    float *up = ud, *down = ud + (size_t)rows * r;
    float *dst = c->slice < 0 ? buf : buf + (size_t)c->slice * rows * L->cols;
    read_rows(m->up, (size_t)rows, r, 1, up, tmp);
    read_rows(m->down, (size_t)r, L->cin, L->k, down, tmp);
    for (size_t i = 0; i < (size_t)rows * r; i++)
        up[i] *= c->scale;
    gemm_f32(rows, (int)L->cols, r, up, r, down, (int)L->cols, 0, 1.0f, dst, (int)L->cols);
}

/* n rows of cols floats to f16 (f16) or bf16, rounded to nearest even. */
static void round_rows(const float *src, uint16_t *dst, int n, size_t cols, int f16)
{
    for (int r = 0; r < n; r++) {
        if (f16)
            gi_f32_to_f16_span(src + r * cols, dst + r * cols, cols);
        else
            f32_to_bf16(src + r * cols, dst + r * cols, (long)cols);
    }
}

/* The f32 rows in buf into L's packed resident weight (gemm_pack.h), a panel
   of 64 rows at a time: rounded to its dtype into the thread's part of pan
   (64 rows of cols floats each), then packed into place. */
static void store_packed(const layer *L, const float *buf, float *pan)
{
    int f32 = L->e->dtype == ST_F32, f16 = L->e->dtype == ST_F16;
    size_t cols = L->cols, panel_bytes = (size_t)GEMM_PACK_ROWS * cols * (f32 ? 4 : 2);
    char *dst = (char *)L->e->data;
#pragma omp parallel for schedule(static) if (L->out > GEMM_PACK_ROWS)
    for (int p = 0; p < L->out / GEMM_PACK_ROWS; p++) {
        const float *rows = buf + (size_t)p * GEMM_PACK_ROWS * cols;
        uint16_t *half = (uint16_t *)(pan + (size_t)omp_get_thread_num() * GEMM_PACK_ROWS * cols);
        if (!f32)
            round_rows(rows, half, GEMM_PACK_ROWS, cols, f16);
        gemm_pack_panel(f32 ? (const void *)rows : half, dst + p * panel_bytes, (int)cols, f32);
    }
}

/* Recomputes one resident weight from its base tensor t and L's deltas: f32
   weights in place (a pass fewer over the largest layers), 16-bit and packed
   ones through buf. */
static void recompute(const layer *L, const st_tensor *t, float *buf, float *ud, float *tmp,
                      float *pan)
{
    if (L->e->dtype == ST_F32 && !L->e->packed)
        buf = (float *)L->e->data;
    read_rows(t, (size_t)L->out, L->cin, L->k, buf, tmp);
    for (int i = 0; i < L->nc; i++)
        add_delta(L, &L->c[i], buf, ud, tmp);
    if (L->e->packed)
        store_packed(L, buf, pan);
    else if (L->e->dtype != ST_F32) {
#pragma omp parallel for schedule(static) if (L->out > 8)
        for (int r = 0; r < L->out; r++)
            round_rows(buf + (size_t)r * L->cols, (uint16_t *)L->e->data + (size_t)r * L->cols, 1,
                       L->cols, L->e->dtype == ST_F16);
    }
}

/* Adds the layers state touched that the plan does not (to restore). */
static gs_status add_restores(plan *p, const lora_applied *state, const weight_log *index,
                              gi_error *err)
{
    for (int i = 0; state && i < state->n; i++) {
        const weight_entry *e = weight_log_find(index, state->names[i]);
        if (e && !plan_layer(p, e))
            return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory planning the LoRAs");
    }
    return GS_OK;
}

static gs_status new_state(const plan *p, lora_applied **out, gi_error *err)
{
    lora_applied *a = gi_calloc(1, sizeof *a);
    if (!a || !(a->names = gi_calloc(p->n ? (size_t)p->n : 1, sizeof *a->names))) {
        gi_free(a);
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory");
    }
    for (int i = 0; i < p->n; i++) {
        if (p->l[i].nc == 0)
            continue;
        if (!(a->names[a->n] = gi_strdup(p->l[i].e->name))) {
            lora_applied_free(a);
            return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory");
        }
        a->n++;
    }
    *out = a;
    return GS_OK;
}

gs_status lora_apply(lora_applied **state, const weight_log *index, const char *ckpt_path,
                     const lora_net *nets, int n, int strict, int *skipped, char *note,
                     size_t note_size, gi_error *err)
{
    plan p = {0};
    st_file *ck = NULL;
    lora_applied *next = NULL;
    float *buf = NULL, *ud = NULL, *tmp = NULL, *pan = NULL;
    *skipped = 0;
    if (note_size)
        note[0] = '\0';
    gs_status st = build_plan(&p, index, nets, n, strict, skipped, note, note_size, err);
    if (st == GS_OK)
        st = add_restores(&p, *state, index, err);
    if (st == GS_OK)
        st = new_state(&p, &next, err);
    if (st != GS_OK || p.n == 0)
        goto out;
    if ((st = st_open(ckpt_path, &ck, err)) != GS_OK)
        goto out;
    /* every base tensor is checked before the first weight is written */
    size_t most = 0, most_ud = 0, most_cols = 1;
    for (int i = 0; i < p.n; i++) {
        const layer *L = &p.l[i];
        const st_tensor *t = st_find(ck, L->e->name);
        size_t numel = (size_t)L->out * L->cols;
        if (!t || (size_t)t->numel != numel || st_span_to_f32(t, 0, 0, NULL, NULL) != GS_OK) {
            st = gi_fail(err, GS_ERR_FORMAT,
                         "%s no longer holds '%s' as loaded: load the model again", ckpt_path,
                         L->e->name);
            goto out;
        }
        most_cols = L->cols > most_cols ? L->cols : most_cols;
        if (L->e->dtype != ST_F32 || L->e->packed) /* plain f32 ones are recomputed in place */
            most = numel > most ? numel : most;
        for (int j = 0; j < L->nc; j++) {
            size_t r = (size_t)L->c[j].m->rank, need = r * ((size_t)L->out + L->cols);
            most_ud = need > most_ud ? need : most_ud;
        }
    }
    buf = gi_aligned_alloc((most ? most : 1) * sizeof *buf);
    ud = gi_aligned_alloc((most_ud ? most_ud : 1) * sizeof *ud);
    tmp = gi_aligned_alloc((size_t)omp_get_max_threads() * most_cols * sizeof *tmp);
    pan =
        gi_aligned_alloc((size_t)omp_get_max_threads() * GEMM_PACK_ROWS * most_cols * sizeof *pan);
    if (!buf || !ud || !tmp || !pan) {
        st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory applying the LoRAs");
        goto out;
    }
    for (int i = 0; i < p.n; i++)
        recompute(&p.l[i], st_find(ck, p.l[i].e->name), buf, ud, tmp, pan);
out:
    if (st == GS_OK) {
        lora_applied_free(*state);
        *state = next;
        next = NULL;
    }
    lora_applied_free(next);
    gi_aligned_free(buf);
    gi_aligned_free(ud);
    gi_aligned_free(tmp);
    gi_aligned_free(pan);
    st_close(ck);
    plan_free(&p);
    return st;
}
