/*
 * lora_list - the LoRAs of the server's folder (gesso serve --lora-dir), as
 * GET /v1/loras lists them ({"loras":[{name, file, bytes}]}) and as A1111's
 * GET /sdapi/v1/loras does ([{name, alias, path, metadata}]). The names are
 * those a job's "loras" field and <lora:NAME:W> prompt tags take; a server
 * without a folder lists none.
 */
#ifndef GS_LORA_LIST_H
#define GS_LORA_LIST_H

#include "api/http.h"

enum MHD_Result native_list_loras(http_request *r);
enum MHD_Result a1111_list_loras(http_request *r);

#endif
