/* protocols - the HTTP protocols `gesso serve` speaks; router.c lists them. */
#ifndef GS_PROTOCOLS_H
#define GS_PROTOCOLS_H

#include "api/http.h"

/* gesso's own API: /v1/jobs, /v1/models, /v1/queue, /v1/stats, /metrics, /healthz. */
extern const protocol native_protocol;
/* The web page: GET /, /app.js, /app.css (web_page.c). */
extern const protocol web_protocol;
/* OpenAI's Images API: /v1/images/generations, edits, variations. */
extern const protocol openai_protocol;
/* AUTOMATIC1111's web UI API: /sdapi/v1/txt2img, img2img, progress, options, the lists. */
extern const protocol a1111_protocol;

#endif
