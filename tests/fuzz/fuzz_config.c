/*
 * fuzz_config - the configuration file gesso serve reads: the --api-keys
 * file (api_keys.h). After a NUL byte the input is an Authorization header
 * value matched against the keys read, as every request's is (Bearer, and
 * HTTP Basic with the key as password). Each key read must match itself.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api_keys.h"
#include "fuzzutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *sep = memchr(data, 0, size); /* file NUL authorization */
    size_t file_len = sep ? (size_t)(sep - data) : size;
    char path[64];
    int fd = fuzz_memfile(data, file_len, path);
    if (fd < 0)
        return 0;
    api_keys keys = {0};
    char msg[256];
    if (api_keys_load(path, &keys, msg, sizeof msg) == 0) {
        char *auth = sep ? fuzz_cstr(sep + 1, size - file_len - 1) : NULL;
        for (int i = 0; i < keys.n; i++) {
            char bearer[300];
            snprintf(bearer, sizeof bearer, "Bearer %s", keys.keys[i].key);
            if (api_keys_match(&keys, bearer) != &keys.keys[i])
                abort(); /* keys are unique (a duplicate fails the load) */
        }
        if (auth)
            (void)api_keys_match(&keys, auth);
        free(auth);
        api_keys_free(&keys);
    }
    close(fd);
    return 0;
}
