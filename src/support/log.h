/*
 * log - the service's one logger: a line per event on stderr with a UTC
 * timestamp, a level and who wrote it (the server or a named worker), so the
 * logs of a server and its workers interleave readably in one journal.
 *
 *   2026-12-06T05:59:01.123Z info  serve: serving on http://127.0.0.1:7860
 *
 * The level comes from GESSO_LOG (debug, info, warn, error; default info).
 * Thread-safe: each line is one write.
 */
#ifndef GS_LOG_H
#define GS_LOG_H

typedef enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;

/* Names the writer ("serve", "worker w0-123"); read GESSO_LOG. Call once at start. */
void log_init(const char *who);

/* -1 when name is not a level. */
int log_level_parse(const char *name);

void log_msg(log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
