/* op_prof - the per-op-kind timers' clock, names and sums. */
#include "compute/op_prof.h"

#include <time.h>

_Thread_local op_prof *op_prof_cur;

double op_prof_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

const char *op_prof_name(op_kind k)
{
    static const char *const names[OPK_N] = {
        "other",      "gemm",       "im2col", "winograd_xform", "attn_fused", "softmax",
        "group_norm", "layer_norm", "geglu",  "elementwise",    "copy",       "widen",
    };
    return k >= 0 && k < OPK_N ? names[k] : "?";
}

void op_prof_add(op_prof *p, op_kind k, double t0, double flop, double bytes)
{
    p->s[k] += op_prof_now() - t0;
    p->flop[k] += flop;
    p->bytes[k] += bytes;
    p->calls[k]++;
}

void op_prof_print(FILE *out, const op_prof *a, const op_prof *b, int steps, double wall_s,
                   double flop)
{
    double per = steps > 0 ? 1.0 / steps : 1.0, step = wall_s * per, timed = 0;
    fprintf(out,
            "op timers: %d steps, %.3f s per step (all steps), %.1f GFLOP per step counted\n"
            "%-15s %9s %9s %6s %10s %9s %8s %8s\n",
            steps, step, flop * per * 1e-9, "kind", "calls/st", "ms/step", "%", "GFLOP/st",
            "GB/step", "GFLOP/s", "GB/s");
    for (int k = 0; k < OPK_N; k++) {
        double s = (b->s[k] - a->s[k]) * per;
        long calls = b->calls[k] - a->calls[k];
        if (calls == 0)
            continue;
        double gf = (b->flop[k] - a->flop[k]) * per * 1e-9;
        double gb = (b->bytes[k] - a->bytes[k]) * per * 1e-9;
        timed += s;
        fprintf(out, "%-15s %9.1f %9.1f %6.1f %10.1f %9.2f %8.1f %8.1f\n", op_prof_name((op_kind)k),
                calls * per, s * 1e3, step > 0 ? 100 * s / step : 0, gf, gb, s > 0 ? gf / s : 0,
                s > 0 ? gb / s : 0);
    }
    fprintf(out, "%-15s %9s %9.1f %6.1f   (sampler, CFG, layouts, serial parts of ops)\n",
            "untimed", "", (step - timed) * 1e3, step > 0 ? 100 * (step - timed) / step : 0);
}

double op_prof_gemm_s(const op_prof *p)
{
    return p->s[OPK_GEMM] + p->s[OPK_ATTN_FUSED];
}

double op_prof_conv_aux_s(const op_prof *p)
{
    return p->s[OPK_IM2COL] + p->s[OPK_WINO_XFORM];
}
