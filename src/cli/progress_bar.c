/* progress_bar - redraws one line with \r; silent when the stream is not a tty. */
#include "cli/progress_bar.h"

#include <unistd.h>

void progress_bar_init(progress_bar *pb, FILE *out)
{
    pb->out = out;
    pb->enabled = isatty(fileno(out));
    pb->width = 30;
    pb->last_elapsed = 0;
}

void progress_bar_update(progress_bar *pb, int step, int steps, double elapsed_s, double eta_s)
{
    double step_time = elapsed_s - pb->last_elapsed;
    pb->last_elapsed = elapsed_s;
    if (!pb->enabled || steps <= 0)
        return;
    int filled = (int)((long)pb->width * step / steps);
    char bar[128];
    int i = 0;
    for (; i < pb->width && i < (int)sizeof bar - 1; i++)
        bar[i] = i < filled ? '#' : '-';
    bar[i] = '\0';
    fprintf(pb->out, "\r[%s] %d/%d  %.2fs/step  elapsed %.1fs  eta %.1fs ", bar, step, steps,
            step_time, elapsed_s, eta_s);
    fflush(pb->out);
}

void progress_bar_finish(progress_bar *pb)
{
    if (pb->enabled) {
        fputc('\n', pb->out);
        fflush(pb->out);
    }
}
