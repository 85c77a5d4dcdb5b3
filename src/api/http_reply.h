/* http_reply - JSON, error and byte responses for the libmicrohttpd handlers. */
#ifndef GS_HTTP_REPLY_H
#define GS_HTTP_REPLY_H

#include <jansson.h>
#include <microhttpd.h>

/* mode as for MHD_create_response_from_buffer; extra_header ("Name: value")
   may be NULL. */
enum MHD_Result reply_bytes(struct MHD_Connection *c, int status, const char *type, void *data,
                            size_t n, enum MHD_ResponseMemoryMode mode, const char *extra_header);
/* Takes the reference to j. */
enum MHD_Result reply_json(struct MHD_Connection *c, int status, json_t *j);
/* {"error":{"code":code,"message":message}} */
enum MHD_Result reply_error(struct MHD_Connection *c, int status, const char *code,
                            const char *message);
enum MHD_Result reply_error_with(struct MHD_Connection *c, int status, const char *code,
                                 const char *message, const char *extra_header);

/* A whole file of at most max bytes, malloc'd, size in *n; NULL when it is
   missing, empty, larger than max or unreadable. */
unsigned char *file_read(const char *path, size_t max, size_t *n);

/* Standard base64 of n bytes, NUL-terminated; malloc'd, NULL when out of memory. */
char *base64_encode(const unsigned char *data, size_t n);

#endif
