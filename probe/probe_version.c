/* SPDX-License-Identifier: MIT */
/* probe_version.c - the release of the probe library (cm_version.h, from project(VERSION)). */
#include "cm_probe.h"
#include "cm_version.h"

const char *cm_probe_version(void)
{
    return CM_VERSION_STRING;
}
