/* SPDX-License-Identifier: MIT */
/* errors.c - names of the media engine's results. */
#include "cmh_media.h"

const char *cmh_err_name(int code)
{
    switch (code) {
    case CMH_OK:
        return "ok";
    case CMH_E_INVALID:
        return "invalid_argument";
    case CMH_E_NOMEM:
        return "out_of_memory";
    case CMH_E_INPUT:
        return "bad_input";
    case CMH_E_NOVIDEO:
        return "no_video";
    case CMH_E_ENCODER:
        return "encoder";
    case CMH_E_OUTPUT:
        return "output";
    case CMH_E_CANCELLED:
        return "cancelled";
    case CMH_E_LIBAV:
        return "libav";
    default:
        return "unknown";
    }
}
