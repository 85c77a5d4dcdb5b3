/*
 * fuzz_yaml - the Horde bridge's bridgeData.yaml reader (horde_config_load,
 * libyaml's event parser underneath) on arbitrary bytes, read from a file as
 * `gesso horde --config` reads it. Checks what the reader promises: on
 * success every count is within its array, every list entry and string is
 * terminated, the integers are in their documented ranges and max_pixels is
 * derived from max_power; on failure the message is a terminated string
 * (the buffer starts filled with junk, so a path that forgets to write it
 * is caught). The bytes are read twice: as a file (horde_config_load) and
 * from memory (horde_config_parse, whose message nothing rewrites).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzzutil.h"
#include "horde/config.h"
#include "support/log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    setenv("GESSO_LOG", "error", 1); /* unknown keys are warned about: not 10^6 times */
    log_init("fuzz");
    return 0;
}

static void check_list(char *const *list, int n, int max)
{
    if (n < 0 || n > max)
        abort();
    for (int i = 0; i < n; i++)
        if (!list[i] || strlen(list[i]) > 1u << 20)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    int fd = fuzz_memfile(data, size, path);
    if (fd < 0)
        return 0;
    horde_config c;
    horde_config_defaults(&c);
    char msg[300];
    memset(msg, 'x', sizeof msg);
    if (horde_config_load(&c, path, msg, sizeof msg) == 0) {
        check_list(c.models, c.n_models, HORDE_MAX_MODELS);
        check_list(c.blacklist, c.n_blacklist, HORDE_MAX_WORDS);
        check_list(c.censorlist, c.n_censorlist, HORDE_MAX_WORDS);
        if (memchr(c.api_key, 0, sizeof c.api_key) == NULL ||
            memchr(c.dreamer_name, 0, sizeof c.dreamer_name) == NULL ||
            memchr(c.horde_url, 0, sizeof c.horde_url) == NULL ||
            memchr(c.cache_home, 0, sizeof c.cache_home) == NULL)
            abort();
        if (c.max_power < 1 || c.max_power > 1024 || c.max_pixels != 64L * 64 * 8 * c.max_power ||
            c.queue_size < 0 || c.queue_size > 16 || c.max_batch < 1 || c.max_batch > 20 ||
            c.max_threads < 1 || c.max_threads > 50)
            abort();
    } else if (memchr(msg, 0, sizeof msg) == NULL) {
        abort(); /* an error path left the message unwritten */
    }
    horde_config_free(&c);
    close(fd);
    /* the same bytes from memory, where no wrapper rewrites the message */
    horde_config_defaults(&c);
    memset(msg, 'x', sizeof msg);
    if (horde_config_parse(&c, (const char *)data, size, msg, sizeof msg) != 0 &&
        memchr(msg, 0, sizeof msg) == NULL)
        abort();
    horde_config_free(&c);
    return 0;
}
