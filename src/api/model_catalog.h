/*
 * model_catalog - what GET /v1/models says about each checkpoint file without
 * loading it: family and weight dtype from the safetensors header. Parsing a
 * header of a thousand tensors costs milliseconds, so the answer is kept per
 * (name, mtime, size) and read again only when the file changes.
 * Thread-safe: the HTTP pool's threads share one catalog.
 */
#ifndef GS_MODEL_CATALOG_H
#define GS_MODEL_CATALOG_H

#include <sys/stat.h>

typedef struct model_catalog model_catalog;

/* NULL when out of memory; free with model_catalog_free. */
model_catalog *model_catalog_create(void);
void model_catalog_free(model_catalog *c);

typedef struct model_facts {
    char family[16]; /* "sd1" or "unknown" */
    char dtype[8];   /* "f16", "bf16", "f32"; "" when the header cannot be read */
} model_facts;

/* Facts of the checkpoint called name at path, whose stat is sb. */
void model_catalog_facts(model_catalog *c, const char *name, const char *path,
                         const struct stat *sb, model_facts *out);

#endif
