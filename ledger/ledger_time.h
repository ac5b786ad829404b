/* SPDX-License-Identifier: MIT */
/*
 * ledger_time.h - exact civil-time arithmetic for the ledger (internal).
 *
 * Unix milliseconds <-> proleptic Gregorian UTC dates with Howard Hinnant's
 * days_from_civil / civil_from_days: no time zone database, no timegm(), exact for
 * every year from -9999 to 9999. Plan periods use cm__time_add_months(), which always
 * counts from the plan's start instant: period k ends at start + k months with the
 * day clamped to that month's length, so Jan 31 -> Feb 28/29 -> Mar 31 (never the
 * chained Mar 28).
 */
#ifndef CM_LEDGER_TIME_H
#define CM_LEDGER_TIME_H

#include <stdint.h>

typedef struct cm_civil {
    int64_t year;
    int month; /* 1..12 */
    int day;   /* 1..31 */
    int64_t ms_of_day;
} cm_civil;

int64_t cm__time_days_from_civil(int64_t y, int m, int d);
void cm__time_civil_from_days(int64_t days, int64_t *y, int *m, int *d);
int cm__time_days_in_month(int64_t y, int m);
void cm__time_split(int64_t ms, cm_civil *out);
int64_t cm__time_join(const cm_civil *c);
/* start_ms plus months calendar months, the day clamped to the target month. */
int64_t cm__time_add_months(int64_t start_ms, int64_t months);

#endif
