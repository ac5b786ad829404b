/* SPDX-License-Identifier: MIT */
/* Reading a plugin handle's metrics in tests (cmocka): the text as a host reads it, and
 * one sample of it. Include after <cmocka.h> and "creditmeter_plugin.h". */
#ifndef TEST_PLUGIN_METRICS_H
#define TEST_PLUGIN_METRICS_H

#include <stdlib.h>
#include <string.h>

/* The metrics text, as a host reads it: ask the size, then read with room to spare (the
 * keepalive may count between the two calls), again if it still grew. The length
 * metrics() returns is the text's. Free it. */
static inline char *cmt_metrics(const cm_plugin_api *api, cm_plugin *p)
{
    int64_t n = api->metrics(p, NULL, 0);
    assert_true(n > 0);
    for (;;) {
        size_t cap = (size_t)n + 256;
        char *buf = malloc(cap);
        assert_non_null(buf);
        n = api->metrics(p, buf, cap);
        assert_true(n > 0);
        if ((size_t)n < cap) {
            assert_int_equal(strlen(buf), (size_t)n);
            return buf;
        }
        free(buf);
    }
}

/* The value of the sample written exactly as series (name with its labels); -1 if none. */
static inline long long cmt_sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (strncmp(l, series, n) == 0 && l[n] == ' ')
            return strtoll(l + n + 1, NULL, 10);
    return -1;
}

#endif
