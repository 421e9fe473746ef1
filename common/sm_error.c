/* SPDX-License-Identifier: Apache-2.0 */
/* sm_error.c — see sm_error.h. */
#include "sm_error.h"

#include <stdio.h>

sm_status sm_fail(sm_error *err, sm_status status, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->status = status;
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return status;
}

void sm_error_clear(sm_error *err)
{
    if (err) {
        err->status = SM_OK;
        err->message[0] = '\0';
    }
}

const char *sm_status_code(sm_status status)
{
    switch (status) {
    case SM_OK:               return "ok";
    case SM_ERR_INVALID:      return "invalid_request";
    case SM_ERR_RULE:         return "rule_violation";
    case SM_ERR_NOT_FOUND:    return "not_found";
    case SM_ERR_METHOD:       return "method_not_allowed";
    case SM_ERR_CONFLICT:     return "conflict";
    case SM_ERR_PRECONDITION: return "precondition_failed";
    case SM_ERR_TOO_LARGE:    return "payload_too_large";
    case SM_ERR_MEDIA_TYPE:   return "unsupported_media_type";
    case SM_ERR_UNAVAILABLE:  return "unavailable";
    case SM_ERR_INTERNAL:     return "internal";
    case SM_ERR_TIMEOUT:      return "request_timeout";
    case SM_ERR_UNAUTHENTICATED: return "unauthenticated";
    case SM_ERR_FORBIDDEN:    return "forbidden";
    }
    return "internal";
}
