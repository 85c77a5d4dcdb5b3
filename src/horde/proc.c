/* proc - fork/exec, pipes and reaping of the generation child. */
#include "horde/proc.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "horde/frame.h"
#include "support/log.h"
#include "support/pipes.h"

static int start(horde_proc *p)
{
    int in[2], out[2];
    if (pipes_cloexec(in, out) != 0)
        return -1;
    char threads[16];
    snprintf(threads, sizeof threads, "%d", p->threads);
    pid_t pid = fork();
    if (pid < 0) {
        pipes_close(in, out);
        return -1;
    }
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        const char *argv[18] = {p->self_exe,   "horde",     "--child", "--models",
                                p->models_dir, "--threads", threads};
        int argc = 7;
        if (p->precision) {
            argv[argc++] = "--precision";
            argv[argc++] = p->precision;
        }
        if (p->lora_dir) {
            argv[argc++] = "--lora-dir";
            argv[argc++] = p->lora_dir;
        }
        if (p->safety_clip) {
            argv[argc++] = "--safety-clip";
            argv[argc++] = p->safety_clip;
        }
        argv[argc] = NULL;
        execv(p->self_exe, (char *const *)argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    p->pid = pid;
    p->to_child = in[1];
    p->from_child = out[0];
    log_info("generation process %d started", (int)pid);
    return 0;
}

/* After the child failed: kill what is left of it and reap it. */
static void reap(horde_proc *p, int kill_first)
{
    if (!p->pid)
        return;
    if (kill_first)
        kill(p->pid, SIGKILL);
    close(p->to_child);
    close(p->from_child);
    int status = 0;
    while (waitpid(p->pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFSIGNALED(status))
        log_warn("generation process %d ended by signal %d", (int)p->pid, WTERMSIG(status));
    else
        log_warn("generation process %d exited with %d", (int)p->pid, WEXITSTATUS(status));
    p->pid = 0;
    p->restarts++;
}

void horde_images_free(horde_images *im)
{
    for (int i = 0; i < im->n; i++)
        free(im->webp[i]);
    im->n = 0;
}

int horde_proc_run(horde_proc *p, const char *spec_json, int timeout_ms, volatile int *stop,
                   horde_images *out, char *why, size_t why_size)
{
    memset(out, 0, sizeof *out);
    if (!p->pid && start(p) != 0) {
        snprintf(why, why_size, "cannot start the generation process: %s", strerror(errno));
        return -1;
    }
    if (horde_frame_write(p->to_child, spec_json, strlen(spec_json)) != 0) {
        snprintf(why, why_size, "the generation process is gone");
        reap(p, 1);
        return -1;
    }
    unsigned char *msg = NULL;
    size_t len;
    int rc = horde_frame_read(p->from_child, &msg, &len, timeout_ms, stop);
    if (rc != 0) {
        snprintf(why, why_size, "%s",
                 rc == -2   ? "the generation took longer than the job's time limit"
                 : rc == -3 ? "stopped before the generation finished"
                            : "the generation process died");
        reap(p, 1);
        return -1;
    }
    json_t *head = json_loadb((const char *)msg, len, 0, NULL);
    free(msg);
    if (!json_is_true(json_object_get(head, "ok"))) {
        const char *e = json_string_value(json_object_get(head, "error"));
        snprintf(why, why_size, "%s", e ? e : "the generation process answered nonsense");
        int bad = !e;
        json_decref(head);
        if (bad)
            reap(p, 1);
        return -1;
    }
    const json_t *seeds = json_object_get(head, "seeds");
    size_t n = json_array_size(seeds);
    if (n == 0 || n > 20) {
        json_decref(head);
        snprintf(why, why_size, "the generation process answered nonsense");
        reap(p, 1);
        return -1;
    }
    out->sample_s = json_number_value(json_object_get(head, "sample_s"));
    out->total_s = json_number_value(json_object_get(head, "total_s"));
    out->steps = (int)json_integer_value(json_object_get(head, "steps"));
    const json_t *nsfw = json_object_get(head, "nsfw"), *csam = json_object_get(head, "csam");
    out->checked = json_array_size(nsfw) == n && json_array_size(csam) == n;
    for (size_t i = 0; i < n; i++) {
        out->seed[i] = (uint64_t)json_integer_value(json_array_get(seeds, i));
        /* a flag that is not false counts as set: never pass an image unchecked */
        out->nsfw[i] = out->checked && !json_is_false(json_array_get(nsfw, i));
        out->csam[i] = out->checked && !json_is_false(json_array_get(csam, i));
        if (horde_frame_read(p->from_child, &out->webp[i], &out->len[i], timeout_ms, stop) != 0) {
            horde_images_free(out);
            json_decref(head);
            snprintf(why, why_size, "the generation process died");
            reap(p, 1);
            return -1;
        }
        out->n = (int)i + 1;
    }
    json_decref(head);
    return 0;
}

void horde_proc_stop(horde_proc *p, int grace_ms)
{
    if (!p->pid)
        return;
    close(p->to_child);
    p->to_child = -1;
    for (int waited = 0; waited < grace_ms; waited += 20) {
        if (waitpid(p->pid, NULL, WNOHANG) == p->pid) {
            close(p->from_child);
            p->pid = 0;
            return;
        }
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    close(p->from_child);
    p->pid = 0;
}
