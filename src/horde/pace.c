/* pace - the speed estimate and the Horde's time-out (pace.h). */
#include "horde/pace.h"

#define SMOOTH 0.3 /* weight of the newest job: a few jobs follow a change of load */

void horde_pace_init(horde_pace *p)
{
    p->mps = 0;
    p->rest_s = 0;
    p->ttl_scale = 1;
    p->jobs = 0;
    p->idle_since = -1;
}

void horde_pace_observe(horde_pace *p, long pixels, int images, int steps, double sample_s,
                        double total_s)
{
    if (pixels <= 0 || images <= 0 || steps <= 0 || sample_s <= 0 || total_s < sample_s)
        return;
    double mp = (double)pixels * images / 1e6;
    double mps = mp * steps / sample_s;
    double rest = (total_s - sample_s) / mp;
    if (p->jobs++ == 0) {
        p->mps = mps;
        p->rest_s = rest;
    } else {
        p->mps += SMOOTH * (mps - p->mps);
        p->rest_s += SMOOTH * (rest - p->rest_s);
    }
}

double horde_pace_ttl(const horde_pace *p, long pixels, int steps)
{
    double ttl = 30.0 + 2.0 * steps * ((double)pixels / (512.0 * 512.0));
    return (ttl < 150.0 ? 150.0 : ttl) * p->ttl_scale;
}

double horde_pace_estimate(const horde_pace *p, long pixels, int steps, int images)
{
    if (p->mps <= 0)
        return 0;
    return (double)pixels * images / 1e6 * (steps / p->mps + p->rest_s);
}

long horde_pace_max_pixels(const horde_pace *p, long cfg_max, double held_s)
{
    if (p->mps <= 0)
        return cfg_max;
    for (long px = cfg_max / HORDE_PACE_PIXEL_UNIT * HORDE_PACE_PIXEL_UNIT; px > 0;
         px -= HORDE_PACE_PIXEL_UNIT)
        if (held_s + horde_pace_estimate(p, px, HORDE_PACE_REF_STEPS, 1) <=
            HORDE_PACE_MARGIN * horde_pace_ttl(p, px, HORDE_PACE_REF_STEPS))
            return px;
    return 0;
}

long horde_pace_pop_pixels(horde_pace *p, long cfg_max, double held_s, int held_n, double now_s)
{
    long px = horde_pace_max_pixels(p, cfg_max, held_s);
    if (px > 0 || held_n > 0) { /* popping, or a held job will time the engine again */
        p->idle_since = -1;
        return px;
    }
    if (p->idle_since < 0)
        p->idle_since = now_s;
    if (now_s - p->idle_since < HORDE_PACE_RETRY_S * p->ttl_scale)
        return 0;
    double scale = p->ttl_scale; /* the operator's (or a test's), not a measurement */
    horde_pace_init(p);
    p->ttl_scale = scale;
    return cfg_max;
}
