/*
 * pace - how much work the bridge asks the Horde for. A job the Horde hands
 * out must be submitted within its time-out (the pop reply's ttl), or the
 * Horde drops it and gives it to another worker: the failure a worker must
 * avoid. The Horde's time-out for a job of P pixels and S steps is
 * max(150, 30 + 2 * S * P / 512^2) seconds (AI-Horde's set_job_ttl: 2 s per
 * step at 512x512, plus 30 s to load a model, at least 2.5 minutes).
 *
 * The engine's speed comes from the generation child's own timing of each
 * job (proc.h): megapixel-steps per second of the sampler's steps, and
 * seconds per megapixel-image of the rest (text encoding, VAE decoding),
 * each smoothed (exponential average, weight 0.3 to the newest job).
 *
 * The rule: a job of P pixels, S steps, n images is expected to take
 *   T(P, S, n) = P * n / 1e6 * (S / mps + rest).
 * Before each pop, with R seconds of work already held (what is left of the
 * running job and the whole of the queued ones), the bridge advertises the
 * largest max_pixels P (a multiple of 64*64, at most the config's) with
 *   R + T(P, ref_steps, 1) <= margin * ttl(P, ref_steps)
 * (ref_steps 50, margin 0.75), and sends no pop at all when no P fits. Until
 * a first job has been timed the speed is unknown: the config's max_pixels
 * is sent and no job is popped ahead of the running one.
 *
 * A pause with nothing held would last for ever: no job runs, so the speed
 * is never measured again, and a worker that was slow for a while (another
 * program on its cores) would stay paused until restarted. So after
 * HORDE_PACE_RETRY_S seconds paused with nothing held (times ttl_scale) the
 * measurement is forgotten, as a restart would, and the next job measures
 * the speed afresh; a worker still too slow pauses again after it.
 */
#ifndef GS_HORDE_PACE_H
#define GS_HORDE_PACE_H

#define HORDE_PACE_REF_STEPS 50
#define HORDE_PACE_MARGIN 0.75
#define HORDE_PACE_PIXEL_UNIT (64L * 64)
#define HORDE_PACE_RETRY_S 300.0 /* paused with nothing held this long: measure again */

typedef struct horde_pace {
    double mps;        /* smoothed megapixel-steps per second; 0: not measured yet */
    double rest_s;     /* smoothed seconds per megapixel-image outside the steps */
    double ttl_scale;  /* 1 (the Horde's formula); tests shrink it (GESSO_HORDE_TTL_SCALE) */
    int jobs;          /* jobs timed */
    double idle_since; /* when pops paused with nothing held (the caller's clock, s); <0 not */
} horde_pace;

void horde_pace_init(horde_pace *p);

/* One generation's timing: its pixels per image, images, step rounds run,
   seconds in those steps and seconds in all. Timings of nothing are ignored. */
void horde_pace_observe(horde_pace *p, long pixels, int images, int steps, double sample_s,
                        double total_s);

/* The Horde's time-out for a job, in seconds (times ttl_scale). */
double horde_pace_ttl(const horde_pace *p, long pixels, int steps);

/* T(P, S, n) in seconds; 0 while the speed is unknown. */
double horde_pace_estimate(const horde_pace *p, long pixels, int steps, int images);

/* The max_pixels to advertise with held_s seconds of work held: the largest
   multiple of 64*64 up to cfg_max that fits the rule; 0 when none fits (do
   not pop); cfg_max while the speed is unknown. */
long horde_pace_max_pixels(const horde_pace *p, long cfg_max, double held_s);

/* horde_pace_max_pixels for the pop about to be sent, held_n jobs held, at
   now_s seconds (any monotonic clock): after HORDE_PACE_RETRY_S * ttl_scale
   seconds of 0 with nothing held, the speed is forgotten and cfg_max is
   returned (the next job re-measures it). */
long horde_pace_pop_pixels(horde_pace *p, long cfg_max, double held_s, int held_n, double now_s);

#endif
