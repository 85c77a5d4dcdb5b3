/* weights - shape-checked tensor loading and conversion. */
#include "model/weights.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "compute/gemm_bf16.h"

void weight_store_free(weight_store *ws)
{
    for (int i = 0; i < ws->n; i++)
        gs_aligned_free(ws->bufs[i]);
    gs_free(ws->bufs);
    memset(ws, 0, sizeof *ws);
}

static void *store_alloc_bytes(weight_loader *l, size_t bytes)
{
    weight_store *ws = l->store;
    if (ws->n == ws->cap) {
        int cap = ws->cap ? ws->cap * 2 : 256;
        void **b = gs_realloc(ws->bufs, (size_t)cap * sizeof *b);
        if (!b)
            return NULL;
        ws->bufs = b;
        ws->cap = cap;
    }
    void *p = gs_aligned_alloc(bytes);
    if (p) {
        ws->bufs[ws->n++] = p;
        ws->bytes += bytes;
    }
    return p;
}

/* The bf16 copy of a GEMM weight converted into the scratch (bf16 loaders only). */
static uint16_t *to_bf16_weights(weight_loader *l, float **w, size_t n)
{
    if (!l->bf16 || !*w)
        return NULL;
    uint16_t *b = store_alloc_bytes(l, n * sizeof *b);
    if (!b) {
        l->st = gs_fail(l->err, GS_ERR_NO_MEMORY, "out of memory converting weights to bf16");
        return NULL;
    }
    f32_to_bf16(*w, b, (long)n);
    *w = NULL; /* it lived in the scratch */
    return b;
}

static float *store_alloc(weight_loader *l, size_t n)
{
    return store_alloc_bytes(l, n * sizeof(float));
}

const char *wl_name(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return buf;
}

const st_tensor *wl_find(weight_loader *l, const char *name)
{
    char full[512];
    snprintf(full, sizeof full, "%s%s", l->prefix, name);
    return st_find(l->f, full);
}

int64_t wl_dim(weight_loader *l, const char *name, int d)
{
    const st_tensor *t = wl_find(l, name);
    if (!t || d >= t->ndim)
        return -1;
    return t->shape[d];
}

static void shape_str(char *buf, size_t size, int ndim, const int64_t *shape)
{
    size_t o = 0;
    o += (size_t)snprintf(buf + o, size - o, "[");
    for (int i = 0; i < ndim && o < size; i++)
        o += (size_t)snprintf(buf + o, size - o, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (o < size)
        snprintf(buf + o, size - o, "]");
}

/* Converts prefix+name (checked against shape) to f32, into the store or, for
   weights about to become bf16, into the loader's reusable scratch (reusing it
   avoids the kernel zeroing fresh pages for every tensor). */
static float *load_f32(weight_loader *l, const char *name, int ndim, const int64_t *shape,
                       int scratch)
{
    if (l->st != GS_OK)
        return NULL;
    const st_tensor *t = wl_find(l, name);
    if (!t) {
        l->st = gs_fail(l->err, GS_ERR_FORMAT, "tensor '%s%s' is missing", l->prefix, name);
        return NULL;
    }
    if (!st_shape_is(t, ndim, shape)) {
        char want[128], have[128];
        shape_str(want, sizeof want, ndim, shape);
        shape_str(have, sizeof have, t->ndim, t->shape);
        l->st = gs_fail(l->err, GS_ERR_FORMAT, "tensor '%s%s' has shape %s, expected %s", l->prefix,
                        name, have, want);
        return NULL;
    }
    float *p;
    if (scratch) {
        if ((size_t)t->numel > l->tmp_cap) {
            gs_aligned_free(l->tmp);
            l->tmp = gs_aligned_alloc((size_t)t->numel * sizeof *l->tmp);
            l->tmp_cap = l->tmp ? (size_t)t->numel : 0;
        }
        p = l->tmp;
    } else {
        p = store_alloc(l, (size_t)t->numel);
    }
    if (!p) {
        l->st = gs_fail(l->err, GS_ERR_NO_MEMORY, "out of memory loading '%s%s'", l->prefix, name);
        return NULL;
    }
    gs_status st = st_to_f32(t, p, l->err);
    if (st != GS_OK) {
        l->st = st;
        return NULL;
    }
    st_drop_pages(l->f, t);
    return p;
}

float *wl_tensor(weight_loader *l, const char *name, int ndim, const int64_t *shape)
{
    return load_f32(l, name, ndim, shape, 0);
}

uint16_t *wl_tensor_bf16(weight_loader *l, const char *name, int ndim, const int64_t *shape)
{
    float *f = load_f32(l, name, ndim, shape, 1);
    if (!f)
        return NULL;
    size_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= (size_t)shape[i];
    uint16_t *b = store_alloc_bytes(l, n * sizeof *b);
    if (!b) {
        l->st = gs_fail(l->err, GS_ERR_NO_MEMORY, "out of memory loading '%s%s'", l->prefix, name);
        return NULL;
    }
    f32_to_bf16(f, b, (long)n);
    return b;
}

void weight_loader_done(weight_loader *l)
{
    gs_aligned_free(l->tmp);
    l->tmp = NULL;
    l->tmp_cap = 0;
}

void wl_linear(weight_loader *l, const char *name, int out, int in, int bias, linear_weights *lw)
{
    char n[256];
    memset(lw, 0, sizeof *lw);
    lw->out = out;
    lw->in = in;
    lw->w = load_f32(l, wl_name(n, sizeof n, "%s.weight", name), 2, (int64_t[]){out, in}, l->bf16);
    if (bias)
        lw->b = wl_tensor(l, wl_name(n, sizeof n, "%s.bias", name), 1, (int64_t[]){out});
    lw->wb = to_bf16_weights(l, &lw->w, (size_t)out * in);
}

void wl_conv(weight_loader *l, const char *name, int cout, int cin, int k, conv_weights *cw)
{
    char n[256];
    memset(cw, 0, sizeof *cw);
    cw->cout = cout;
    cw->cin = cin;
    cw->k = k;
    wl_name(n, sizeof n, "%s.weight", name);
    const st_tensor *t = wl_find(l, n);
    if (k == 1 && t && t->ndim == 2) {
        /* attention projections saved as linear layers */
        cw->w = load_f32(l, n, 2, (int64_t[]){cout, cin}, l->bf16);
    } else {
        float *oihw = load_f32(l, n, 4, (int64_t[]){cout, cin, k, k}, l->bf16);
        if (oihw && k > 1) {
            /* [cout, cin, ky, kx] -> [cout, ky, kx, cin] to match NHWC patches */
            size_t per = (size_t)cin * k * k;
            float *tmp = gs_aligned_alloc(per * sizeof *tmp);
            if (!tmp) {
                l->st = gs_fail(l->err, GS_ERR_NO_MEMORY, "out of memory loading '%s'", n);
                return;
            }
            for (int o = 0; o < cout; o++) {
                float *wo = oihw + (size_t)o * per;
                for (int i = 0; i < cin; i++)
                    for (int y = 0; y < k; y++)
                        for (int x = 0; x < k; x++)
                            tmp[((size_t)y * k + x) * cin + i] = wo[((size_t)i * k + y) * k + x];
                memcpy(wo, tmp, per * sizeof *tmp);
            }
            gs_aligned_free(tmp);
        }
        cw->w = oihw;
    }
    cw->b = wl_tensor(l, wl_name(n, sizeof n, "%s.bias", name), 1, (int64_t[]){cout});
    cw->wb = to_bf16_weights(l, &cw->w, (size_t)cout * cin * k * k);
}

void wl_norm(weight_loader *l, const char *name, int c, norm_weights *nw)
{
    char n[256];
    nw->c = c;
    nw->g = wl_tensor(l, wl_name(n, sizeof n, "%s.weight", name), 1, (int64_t[]){c});
    nw->b = wl_tensor(l, wl_name(n, sizeof n, "%s.bias", name), 1, (int64_t[]){c});
}
