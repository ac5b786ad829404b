/* SPDX-License-Identifier: MIT */
/* ledger_version.c - the release of the ledger library (cm_version.h, from project(VERSION)). */
#include "cm_ledger.h"
#include "cm_version.h"

const char *cm_ledger_version(void)
{
    return CM_VERSION_STRING;
}
