/* client - libcurl under the bridge's two kinds of request. */
#include "horde/client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gesso.h"

int horde_client_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

static size_t on_data(char *p, size_t size, size_t n, void *user)
{
    horde_reply *r = user;
    size_t add = size * n;
    char *nb = realloc(r->body, r->len + add + 1);
    if (!nb)
        return 0; /* curl fails the transfer */
    memcpy(nb + r->len, p, add);
    r->len += add;
    nb[r->len] = '\0';
    r->body = nb;
    return add;
}

typedef struct upload_src {
    const char *data;
    size_t len, pos;
} upload_src;

static size_t on_read(char *p, size_t size, size_t n, void *user)
{
    upload_src *u = user;
    size_t k = size * n;
    if (k > u->len - u->pos)
        k = u->len - u->pos;
    memcpy(p, u->data + u->pos, k);
    u->pos += k;
    return k;
}

static int perform(CURL *h, struct curl_slist *hdr, int timeout_s, horde_reply *r)
{
    memset(r, 0, sizeof *r);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)timeout_s);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* the bridge's own signal handlers stay */
    curl_easy_setopt(h, CURLOPT_USERAGENT, "gesso/" GESSO_VERSION);
    CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
        snprintf(r->error, sizeof r->error, "%s", curl_easy_strerror(rc));
        free(r->body);
        r->body = NULL;
        r->len = 0;
        return -1;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    if (!r->body && !(r->body = calloc(1, 1))) {
        r->status = 0;
        return -1;
    }
    return 0;
}

int horde_post_json(const char *url, const char *apikey, const char *json, int timeout_s,
                    horde_reply *r)
{
    CURL *h = curl_easy_init();
    if (!h) {
        memset(r, 0, sizeof *r);
        snprintf(r->error, sizeof r->error, "out of memory");
        return -1;
    }
    char key[200];
    snprintf(key, sizeof key, "apikey: %s", apikey);
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    hdr = curl_slist_append(hdr, key);
    hdr = curl_slist_append(hdr, "Client-Agent: gesso:" GESSO_VERSION ":https://github.com/gesso");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, json);
    int rc = perform(h, hdr, timeout_s, r);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    return rc;
}

int horde_put(const char *url, const void *data, size_t len, int timeout_s, horde_reply *r)
{
    CURL *h = curl_easy_init();
    if (!h) {
        memset(r, 0, sizeof *r);
        snprintf(r->error, sizeof r->error, "out of memory");
        return -1;
    }
    upload_src u = {data, len, 0};
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: image/webp");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(h, CURLOPT_READDATA, &u);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
    int rc = perform(h, hdr, timeout_s, r);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    return rc;
}

void horde_reply_free(horde_reply *r)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
}
