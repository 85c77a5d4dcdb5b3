/*
 * proc - the bridge's side of its generation child (child.h): starts it
 * (fork + exec of `gesso horde --child`), sends it a job, reads the images
 * back, and notices when it died (end of file on its pipe): that job has
 * failed, and the next job starts a new child. The bridge itself never runs
 * the engine, so no engine crash can take it down.
 */
#ifndef GS_HORDE_PROC_H
#define GS_HORDE_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct horde_proc {
    const char *self_exe;
    const char *models_dir;
    const char *lora_dir;    /* the LoRA cache the child reads; NULL: no LoRAs */
    const char *safety_clip; /* the image safety check's CLIP model; NULL: none */
    int threads;
    const char *precision; /* the child's --precision (args.h's names); NULL: auto */
    pid_t pid;             /* 0: not running */
    int to_child, from_child;
    int restarts;
} horde_proc;

typedef struct horde_images {
    int n;
    unsigned char *webp[20];
    size_t len[20];
    uint64_t seed[20];
    /* the child's image safety check (child.c), when it has one (checked) */
    int checked;
    int nsfw[20], csam[20];
    /* the child's timing of the generation (child.c): seconds in the
       sampler's steps, step rounds run, seconds of the whole generation */
    double sample_s, total_s;
    int steps;
} horde_images;

/* Runs one job (the spec's JSON); starts the child when none runs. 0 with
   *out filled; -1 with why filled (the child failed the job, died, or took
   longer than timeout_ms and was killed). *stop >= 2 kills the child and
   fails the job at once. */
int horde_proc_run(horde_proc *p, const char *spec_json, int timeout_ms, volatile int *stop,
                   horde_images *out, char *why, size_t why_size);

void horde_images_free(horde_images *im);

/* Ends the child: closes its input, waits up to grace_ms, then SIGKILL. */
void horde_proc_stop(horde_proc *p, int grace_ms);

#endif
