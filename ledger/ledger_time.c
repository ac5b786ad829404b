/* SPDX-License-Identifier: MIT */
/*
 * ledger_time.c - civil dates, ISO 8601 parsing/formatting and month arithmetic.
 *
 * Days from the civil date follow H. Hinnant, "chrono-Compatible Low-Level Date
 * Algorithms": the year is shifted to start in March so the leap day is the last day
 * of a 400-year era's year, which makes the arithmetic branch-free and exact.
 */
#include "ledger_time.h"
#include "cm_ledger.h"

#include <stdio.h>
#include <string.h>

#define MS_PER_DAY INT64_C(86400000)

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

int64_t cm__time_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;                                  /* [0, 399] */
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1; /* [0, 365] */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;          /* [0, 146096] */
    return era * 146097 + doe - 719468;
}

void cm__time_civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

int cm__time_days_in_month(int64_t y, int m)
{
    static const int len[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2) {
        int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        return 28 + leap;
    }
    return len[m - 1];
}

void cm__time_split(int64_t ms, cm_civil *out)
{
    /* From the remainder, not ms - days * MS_PER_DAY: that product overflows for the
       first hours of the int64 range (ms near INT64_MIN). */
    int64_t days = ms / MS_PER_DAY, rem = ms % MS_PER_DAY;
    if (rem < 0) {
        rem += MS_PER_DAY;
        days--;
    }
    out->ms_of_day = rem;
    cm__time_civil_from_days(days, &out->year, &out->month, &out->day);
}

int64_t cm__time_join(const cm_civil *c)
{
    return cm__time_days_from_civil(c->year, c->month, c->day) * MS_PER_DAY + c->ms_of_day;
}

int64_t cm__time_add_months(int64_t start_ms, int64_t months)
{
    cm_civil c;
    cm__time_split(start_ms, &c);
    int64_t m0 = c.year * 12 + (c.month - 1) + months;
    c.year = floor_div(m0, 12);
    c.month = (int)(m0 - c.year * 12) + 1;
    int dim = cm__time_days_in_month(c.year, c.month);
    if (c.day > dim)
        c.day = dim;
    return cm__time_join(&c);
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int cm_ledger_time_parse(const char *text, int64_t *out_ms)
{
    int y, mo, d, h, mi, s, frac = 0;
    if (!text || !out_ms || strlen(text) < 20)
        return CM_LEDGER_E_INVALID;
    if (digits(text, 4, &y) || text[4] != '-' || digits(text + 5, 2, &mo) || text[7] != '-' ||
        digits(text + 8, 2, &d) || text[10] != 'T' || digits(text + 11, 2, &h) || text[13] != ':' ||
        digits(text + 14, 2, &mi) || text[16] != ':' || digits(text + 17, 2, &s))
        return CM_LEDGER_E_INVALID;
    const char *p = text + 19;
    if (*p == '.') {
        int n = 0;
        p++;
        while (*p >= '0' && *p <= '9') {
            if (n < 3)
                frac = frac * 10 + (*p - '0');
            n++;
            p++;
        }
        if (n == 0)
            return CM_LEDGER_E_INVALID;
        for (; n < 3; n++)
            frac *= 10;
    }
    if (p[0] != 'Z' || p[1] != '\0')
        return CM_LEDGER_E_INVALID;
    if (mo < 1 || mo > 12 || d < 1 || d > cm__time_days_in_month(y, mo) || h > 23 || mi > 59 ||
        s > 59)
        return CM_LEDGER_E_INVALID;
    cm_civil c = {y, mo, d, ((int64_t)h * 3600 + mi * 60 + s) * 1000 + frac};
    *out_ms = cm__time_join(&c);
    return CM_LEDGER_OK;
}

char *cm_ledger_time_format(int64_t ms, char *buf, size_t size)
{
    cm_civil c;
    cm__time_split(ms, &c);
    int64_t sec = c.ms_of_day / 1000;
    int frac = (int)(c.ms_of_day % 1000);
    if (frac)
        snprintf(buf, size, "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ", (long long)c.year, c.month,
                 c.day, (int)(sec / 3600), (int)(sec / 60 % 60), (int)(sec % 60), frac);
    else
        snprintf(buf, size, "%04lld-%02d-%02dT%02d:%02d:%02dZ", (long long)c.year, c.month, c.day,
                 (int)(sec / 3600), (int)(sec / 60 % 60), (int)(sec % 60));
    return buf;
}
