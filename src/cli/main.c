/* gesso - command-line entry point: dispatches to subcommands. */
#include <stdio.h>
#include <string.h>

#include "gesso.h"

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("gesso %s\n", GESSO_VERSION);
        return 0;
    }
    fprintf(stderr, "usage: gesso <generate|bench|models> [options]\n");
    return 2;
}
