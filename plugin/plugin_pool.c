/* SPDX-License-Identifier: MIT */
/*
 * plugin_pool.c - the handle's pool of ledger connections (ABI 1.3).
 *
 * A cm_ledger handle is thread-safe by taking its own mutex around each call: every
 * call on it runs on its one connection, one at a time. A host that runs jobs in many
 * threads through one plugin handle would queue them all on that connection, so the
 * plugin handle keeps up to ledger_pool_size ledger handles and checks one out for
 * each ledger call (the keepalive's included), returning it right after.
 *
 * The first handle is opened by open (it proves the location holds a ledger, and
 * creates it when the host asked); the others only when a call finds every open one
 * checked out, so a host that calls from one thread keeps one connection. A handle that
 * cannot be opened then (a PostgreSQL server at max_connections, say) is not an error
 * of the call: the call waits for a busy handle instead, and no new open is tried for
 * a second. Handles are closed only with the plugin handle.
 *
 * pool.mu is a leaf lock, held only to pick, mark and count handles: never across a
 * ledger call, an open, or anything that takes another lock. Nothing of a handle is
 * reset when it comes back after a failed call: the ledger itself reconnects to the
 * server at the next call made on it (storage_pg.c), whichever thread makes it.
 *
 * Metrics: the pool's gauges and counters, and each handle's cm_ledger_stats as read
 * when it last came back (reading them from a handle in use would wait for its call).
 */
#include "plugin_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RETRY_OPEN_NS 1000000000LL /* after a failed lazy open, none for a second */

int cm__pool_open(cm__pool *pool, int size, const cm_ledger_config *lc)
{
    memset(pool, 0, sizeof *pool); /* location NULL: cm__pool_close does nothing */
    pool->size = size;
    pool->lc = *lc;
    char *location = strdup(lc->location ? lc->location : "");
    if (!location)
        return CM_LEDGER_E_NOMEM;
    pthread_condattr_t a;
    if (pthread_condattr_init(&a) != 0) {
        free(location);
        return CM_LEDGER_E_NOMEM;
    }
    int rc = pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&pool->freed, &a);
    pthread_condattr_destroy(&a);
    if (rc != 0) {
        free(location);
        return CM_LEDGER_E_NOMEM;
    }
    if (pthread_mutex_init(&pool->mu, NULL) != 0) {
        pthread_cond_destroy(&pool->freed);
        free(location);
        return CM_LEDGER_E_NOMEM;
    }
    pool->lc.location = location;
    rc = cm_ledger_open(&pool->h[0], &pool->lc);
    if (rc != CM_LEDGER_OK) {
        pthread_mutex_destroy(&pool->mu);
        pthread_cond_destroy(&pool->freed);
        free(location);
        return rc;
    }
    pool->location = location; /* from here on, cm__pool_close closes it all */
    pool->opened = 1;
    pool->lc.create = 0; /* it exists now: the others only open it */
    return CM_LEDGER_OK;
}

void cm__pool_close(cm__pool *pool)
{
    if (!pool->location)
        return; /* never opened */
    for (int i = 0; i < pool->opened; i++)
        cm_ledger_close(pool->h[i]);
    pthread_mutex_destroy(&pool->mu);
    pthread_cond_destroy(&pool->freed);
    free(pool->location);
    pool->location = NULL;
}

/* Marks h[i] checked out. Under mu. */
static cm_ledger *take_locked(cm__pool *pool, int i)
{
    pool->busy[i] = 1;
    pool->checkouts++;
    if (++pool->in_use > pool->high_water)
        pool->high_water = pool->in_use;
    return pool->h[i];
}

cm_ledger *cm__ledger_get(cm_plugin *p)
{
    cm__pool *pool = &p->pool;
    int64_t wait_from = -1;
    pthread_mutex_lock(&pool->mu);
    for (;;) {
        for (int i = 0; i < pool->opened; i++) {
            if (!pool->busy[i]) {
                cm_ledger *l = take_locked(pool, i);
                if (wait_from >= 0)
                    pool->wait_ns += cm__mono_ns() - wait_from;
                pthread_mutex_unlock(&pool->mu);
                return l;
            }
        }
        if (pool->opened + pool->opening < pool->size && cm__mono_ns() >= pool->retry_open_ns) {
            /* every open handle is busy and the pool may grow: open one, outside mu */
            pool->opening++;
            pthread_mutex_unlock(&pool->mu);
            cm_ledger *l = NULL;
            int rc = cm_ledger_open(&l, &pool->lc);
            char why[256] = "";
            if (rc != CM_LEDGER_OK)
                cmp_strlcpy(why, cm_ledger_errmsg(NULL), sizeof why);
            pthread_mutex_lock(&pool->mu);
            pool->opening--;
            if (rc == CM_LEDGER_OK) {
                int i = pool->opened++;
                pool->h[i] = l;
                l = take_locked(pool, i);
                if (wait_from >= 0)
                    pool->wait_ns += cm__mono_ns() - wait_from;
                int n = pool->opened;
                pthread_mutex_unlock(&pool->mu);
                cm__ev ev = {.event = "ledger_pool", .credits = -1};
                cm__log_event(p, CM_PLUGIN_LOG_DEBUG, &ev,
                              "ledger pool: opened connection %d of at most %d", n, pool->size);
                return l;
            }
            pool->open_failures++;
            pool->retry_open_ns = cm__mono_ns() + RETRY_OPEN_NS;
            pthread_cond_broadcast(&pool->freed);
            pthread_mutex_unlock(&pool->mu);
            cm__ev ev = {.event = "ledger_pool",
                         .code = CM_PLUGIN_E_LEDGER,
                         .cause = CM_PLUGIN_CAUSE_LEDGER,
                         .cause_code = rc,
                         .credits = -1};
            cm__log_event(p, CM_PLUGIN_LOG_WARN, &ev,
                          "ledger pool: cannot open another connection (%s: %s); waiting for a "
                          "busy one",
                          cm_ledger_err_name(rc), why);
            pthread_mutex_lock(&pool->mu);
            continue;
        }
        if (wait_from < 0) {
            wait_from = cm__mono_ns();
            pool->waits++;
        }
        /* woken by a return or an open; the deadline only ends a back-off after a
         * failed open, so that a waiter may try again */
        if (pool->opened + pool->opening < pool->size && pool->retry_open_ns > 0) {
            struct timespec ts = {(time_t)(pool->retry_open_ns / 1000000000),
                                  (long)(pool->retry_open_ns % 1000000000)};
            pthread_cond_timedwait(&pool->freed, &pool->mu, &ts);
        } else {
            pthread_cond_wait(&pool->freed, &pool->mu);
        }
    }
}

void cm__ledger_put(cm_plugin *p, cm_ledger *l, int rc, char *why, size_t cap)
{
    if (why && cap) {
        if (rc != CM_LEDGER_OK)
            cmp_strlcpy(why, cm_ledger_errmsg(l), cap); /* before another thread's call */
        else
            why[0] = '\0';
    }
    /* the handle's counters, read now that no call runs on it: metrics read these copies
     * and never wait for a ledger call (cm_ledger_stats_read would) */
    cm_ledger_stats ls = {.struct_size = sizeof ls};
    int have = cm_ledger_stats_read(l, &ls) == CM_LEDGER_OK;
    cm__pool *pool = &p->pool;
    pthread_mutex_lock(&pool->mu);
    for (int i = 0; i < pool->opened; i++) {
        if (pool->h[i] == l && pool->busy[i]) {
            if (have)
                pool->stats[i] = ls;
            pool->busy[i] = 0;
            pool->in_use--;
            break;
        }
    }
    pthread_cond_signal(&pool->freed);
    pthread_mutex_unlock(&pool->mu);
}

void cm__pool_read(cm_plugin *p, cm__pool_stats *out)
{
    cm__pool *pool = &p->pool;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&pool->mu);
    out->size = pool->size;
    out->opened = pool->opened;
    out->in_use = pool->in_use;
    out->high_water = pool->high_water;
    out->checkouts = pool->checkouts;
    out->waits = pool->waits;
    out->open_failures = pool->open_failures;
    out->wait_ns = pool->wait_ns;
    for (int i = 0; i < pool->opened; i++) { /* as of each handle's last return */
        out->transactions += pool->stats[i].transactions;
        out->retries += pool->stats[i].retries;
        out->reconnects += pool->stats[i].reconnects;
    }
    pthread_mutex_unlock(&pool->mu);
}
