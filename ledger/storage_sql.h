/* SPDX-License-Identifier: MIT */
/*
 * storage_sql.h - SQL fragments both backends share (internal).
 *
 * The column lists of the GRANT_COLS and HOLD_COLS results (their order is the
 * CM_GC_* and CM_HC_* enums of storage.h) and the spending order, written once so the
 * two backends cannot drift apart. Each backend keeps the rest of its SQL itself.
 */
#ifndef CM_LEDGER_STORAGE_SQL_H
#define CM_LEDGER_STORAGE_SQL_H

#define GRANT_COLS                                                                                 \
    "id, ws, kind, granted, remaining, held, charged, expired, refunded_into, created_ms, "        \
    "expires_ms, ref, unit_minor, total_minor, currency"
#define GRANT_COLS_G                                                                               \
    "g.id, g.ws, g.kind, g.granted, g.remaining, g.held, g.charged, g.expired, g.refunded_into, "  \
    "g.created_ms, g.expires_ms, g.ref, g.unit_minor, g.total_minor, g.currency"
#define HOLD_COLS                                                                                  \
    "job, ws, user_id, credits, lease_s, state, created_ms, lease_until_ms, resolved_ms, "         \
    "charged, refunded, commit_arg"
/* Plan grants first, soonest-expiring first; then add-on and refund grants, oldest. */
#define SPENDING_ORDER                                                                             \
    " ORDER BY CASE WHEN kind = 1 THEN 0 ELSE 1 END, CASE WHEN kind = 1 THEN expires_ms ELSE 0 "   \
    "END, created_ms, id"

#endif
