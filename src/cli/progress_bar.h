/* progress_bar - a one-line terminal progress bar with step time and ETA. */
#ifndef GS_CLI_PROGRESS_BAR_H
#define GS_CLI_PROGRESS_BAR_H

#include <stdio.h>

typedef struct progress_bar {
    FILE *out;
    int enabled; /* only on a terminal */
    int width;
    double last_elapsed;
} progress_bar;

void progress_bar_init(progress_bar *pb, FILE *out);
void progress_bar_update(progress_bar *pb, int step, int steps, double elapsed_s, double eta_s);
void progress_bar_finish(progress_bar *pb);

#endif
