/* SPDX-License-Identifier: MIT */
/*
 * storage_pg.c - the PostgreSQL implementation of storage.h (libpq).
 *
 * All of the ledger's PostgreSQL text lives here: the schema with its migrations and one
 * SQL string per named statement, prepared once per connection (PQprepare) and always
 * run with bound parameters ($1..$n). The location is any libpq connection URI
 * (postgresql://... or postgres://...).
 *
 * Concurrency: every write transaction is SERIALIZABLE. PostgreSQL's serializable
 * snapshot isolation guarantees that concurrent write transactions have the effect of
 * running one at a time, which is exactly what the rules assume of begin(write) (SQLite
 * gets it from BEGIN IMMEDIATE), whichever rows a rule touches: one workspace's grants
 * in reserve, the hold's workspace in commit/release/renew/refund, every workspace in
 * sweep. A transaction that would break that is refused with SQLSTATE 40001 (or 40P01
 * for a deadlock); run() and commit() then return CM_ST_RETRY and the rules layer
 * (cm__tx_run) rolls back and runs the whole call again, within the busy timeout. Read
 * transactions (check) are REPEATABLE READ READ ONLY: one consistent snapshot, never
 * refused. lock_timeout is the busy timeout, so a lock held too long elsewhere gives
 * CM_ST_BUSY. The database refuses a negative counter by CHECK constraints, and the
 * journal refuses UPDATE, DELETE and TRUNCATE by trigger: it is append-only.
 *
 * Ids come from identity columns and the journal's operation numbers from a sequence,
 * so that writers to different workspaces never read the same "MAX(id)" and never
 * conflict; ids are unique and increasing but may have gaps (a rolled-back or retried
 * transaction burns the ids it took).
 *
 * Text columns use the "C" collation, so ORDER BY sorts bytes as SQLite's BINARY does
 * (check binary-searches the holds ordered by job).
 */
#include "storage.h"
#include "storage_sql.h"
#include "cm_ledger.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PG_INT2OID 21
#define PG_INT4OID 23
#define PG_INT8OID 20

/* pg_advisory_xact_lock key that serialises schema creation and migration among
 * processes opening one database at once ("cmledger" in ASCII). */
#define MIGRATION_LOCK_KEY "7164774775232538994"

struct cm_storage {
    PGconn *conn;
    unsigned char prepared[CM_Q__COUNT];
    int busy_timeout_ms;
    int synchronous;
    char err[512];
};

static const char *const sql_text[CM_Q__COUNT] = {
    [CM_Q_PRICE_GET] = "SELECT currency, unit_minor FROM prices WHERE region = $1",
    [CM_Q_PRICE_UPSERT] = "INSERT INTO prices(region, currency, unit_minor) VALUES($1, $2, $3) "
                          "ON CONFLICT(region) DO UPDATE SET currency = excluded.currency, "
                          "unit_minor = excluded.unit_minor",
    [CM_Q_WS_GET] = "SELECT owner, region FROM workspaces WHERE id = $1",
    [CM_Q_WS_INSERT] = "INSERT INTO workspaces(id, owner, region, created_ms) VALUES($1,$2,$3,$4)",
    [CM_Q_WS_ALL] = "SELECT id FROM workspaces ORDER BY id",
    [CM_Q_WS_ACCESS] = "SELECT owner, region, "
                       "CASE WHEN EXISTS(SELECT 1 FROM members WHERE ws = $1 AND user_id = $2) "
                       "THEN 1::bigint ELSE 0::bigint END "
                       "FROM workspaces WHERE id = $1",
    [CM_Q_MEMBER_GET] = "SELECT 1::bigint FROM members WHERE ws = $1 AND user_id = $2",
    [CM_Q_MEMBER_INSERT] = "INSERT INTO members(ws, user_id) VALUES($1, $2) "
                           "ON CONFLICT DO NOTHING",
    [CM_Q_MEMBER_DELETE] = "DELETE FROM members WHERE ws = $1 AND user_id = $2",
    [CM_Q_PLAN_GET] =
        "SELECT credits, interval, tier, start_ms, next_period, cancelled_ms, "
        "sched_credits, sched_interval, sched_tier, sched_ms FROM plans WHERE ws = $1",
    [CM_Q_PLAN_PUT] = "INSERT INTO plans(ws, credits, interval, tier, start_ms, next_period, "
                      "cancelled_ms) VALUES($1, $2, $3, $4, $5, 0, NULL) "
                      "ON CONFLICT(ws) DO UPDATE SET credits = excluded.credits, "
                      "interval = excluded.interval, tier = excluded.tier, "
                      "start_ms = excluded.start_ms, next_period = 0, cancelled_ms = NULL, "
                      "sched_credits = NULL, sched_interval = NULL, sched_tier = NULL, "
                      "sched_ms = NULL",
    [CM_Q_PLAN_SET_NEXT] = "UPDATE plans SET next_period = $2 WHERE ws = $1",
    [CM_Q_PLAN_CANCEL] = "UPDATE plans SET cancelled_ms = $2 WHERE ws = $1",
    /* The lapse test is index-only (the partial index holds_lapse). */
    /* now: the clock, or the time of the workspace's last journal row if that is later
     * (journal_ws (ws, id): one index probe). */
    [CM_Q_TOUCH_STATE] =
        "WITH c(now) AS (SELECT GREATEST($2::bigint, COALESCE((SELECT at_ms FROM journal "
        "WHERE ws = $1 ORDER BY id DESC LIMIT 1), $2::bigint))) "
        "SELECT CASE WHEN EXISTS(SELECT 1 FROM holds WHERE ws = $1 AND state = 1 "
        "AND lease_until_ms <= c.now) THEN 1::bigint ELSE 0::bigint END, "
        "CASE WHEN EXISTS(SELECT 1 FROM grants WHERE ws = $1 AND remaining > 0 "
        "AND expires_ms IS NOT NULL AND expires_ms <= c.now) THEN 1::bigint ELSE 0::bigint END, "
        "p.credits, p.interval, p.start_ms, p.next_period, p.cancelled_ms, c.now "
        "FROM c LEFT JOIN plans p ON p.ws = $1",
    [CM_Q_GRANT_INSERT] =
        "INSERT INTO grants(ws, kind, granted, remaining, held, charged, expired, "
        "refunded_into, created_ms, expires_ms, period, ref, unit_minor, total_minor, currency) "
        "VALUES($1, $2, $3, $3, 0, 0, 0, 0, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
    [CM_Q_GRANT_GET] = "SELECT " GRANT_COLS " FROM grants WHERE id = $1",
    [CM_Q_GRANT_SPENDABLE] = "SELECT " GRANT_COLS " FROM grants WHERE ws = $1 AND remaining > 0 "
                             "AND (expires_ms IS NULL OR expires_ms > $2)" SPENDING_ORDER,
    [CM_Q_GRANT_LIVE] = "SELECT " GRANT_COLS " FROM grants WHERE ws = $1 "
                        "AND (remaining > 0 OR held > 0)" SPENDING_ORDER,
    [CM_Q_GRANT_EXPIRING] = "SELECT " GRANT_COLS " FROM grants WHERE ws = $1 AND remaining > 0 "
                            "AND expires_ms IS NOT NULL AND expires_ms <= $2 "
                            "ORDER BY expires_ms, id",
    [CM_Q_GRANT_ALL] = "SELECT " GRANT_COLS " FROM grants ORDER BY id",
    [CM_Q_GRANT_BY_REF] = "SELECT " GRANT_COLS " FROM grants WHERE ref = $1",
    [CM_Q_GRANT_SET] = "UPDATE grants SET granted = $7, remaining = $2, held = $3, charged = $4, "
                       "expired = $5, refunded_into = $6 WHERE id = $1",
    [CM_Q_HOLD_GET] = "SELECT " HOLD_COLS " FROM holds WHERE job = $1",
    [CM_Q_HOLD_INSERT] = "INSERT INTO holds(job, ws, user_id, credits, lease_s, state, "
                         "created_ms, lease_until_ms, resolved_ms, charged, refunded, commit_arg"
                         ", binding, note) "
                         "VALUES($1, $2, $3, $4, $5, 1, $6, $7, NULL, 0, 0, NULL, $8, $9)",
    [CM_Q_HOLD_LAPSABLE] = "SELECT job FROM holds WHERE ws = $1 AND state = 1 "
                           "AND lease_until_ms <= $2 ORDER BY lease_until_ms, job",
    [CM_Q_HOLD_RENEW] = "UPDATE holds SET lease_until_ms = $2 WHERE job = $1",
    [CM_Q_HOLD_RESOLVE] = "UPDATE holds SET state = $2, resolved_ms = $3, charged = $4, "
                          "commit_arg = $5 WHERE job = $1 AND state = 1",
    [CM_Q_HOLD_SET_REFUNDED] = "UPDATE holds SET refunded = $2 WHERE job = $1",
    [CM_Q_HOLD_ALL] = "SELECT " HOLD_COLS " FROM holds ORDER BY job",
    [CM_Q_TAKE_INSERT] = "INSERT INTO hold_takes(job, seq, grant_id, credits) "
                         "VALUES($1, $2, $3, $4)",
    [CM_Q_TAKES_OF] = "SELECT t.seq, t.grant_id, t.credits, g.kind, g.expires_ms "
                      "FROM hold_takes t JOIN grants g ON g.id = t.grant_id "
                      "WHERE t.job = $1 ORDER BY t.seq",
    [CM_Q_TAKES_GRANTS] = "SELECT " GRANT_COLS_G ", t.seq, t.credits "
                          "FROM hold_takes t JOIN grants g ON g.id = t.grant_id "
                          "WHERE t.job = $1 ORDER BY t.seq",
    [CM_Q_TAKES_ALL] = "SELECT t.job, t.seq, t.grant_id, t.credits, g.ws FROM hold_takes t "
                       "LEFT JOIN grants g ON g.id = t.grant_id ORDER BY t.job, t.seq",
    [CM_Q_REFUND_GET] = "SELECT job, credits, to_source, refund_grant_id, total_refunded "
                        "FROM refunds WHERE ref = $1",
    [CM_Q_REFUND_INSERT] = "INSERT INTO refunds(ref, job, credits, to_source, refund_grant_id, "
                           "total_refunded, at_ms) VALUES($1, $2, $3, $4, $5, $6, $7)",
    /* One sequence for every workspace (unique across them too); $1, the workspace, is
     * only checked. */
    [CM_Q_JOURNAL_NEXT_OP] = "SELECT nextval('journal_op') WHERE $1::text IS NOT NULL",
    [CM_Q_JOURNAL_INSERT] = "INSERT INTO journal(op, ws, at_ms, kind, grant_id, job, credits, "
                            "actor, reason, ref) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    [CM_Q_JOURNAL_OF_WS] = "SELECT id, at_ms, kind, grant_id, job, credits, actor, reason, ref "
                           "FROM journal WHERE ws = $1 ORDER BY id",
    [CM_Q_JOURNAL_ALL] = "SELECT id, op, kind, grant_id, job, credits, ws, at_ms FROM journal "
                         "ORDER BY ws, id",
    [CM_Q_HOLD_NOTE] = "SELECT reason FROM journal WHERE ws = $1 AND job = $2 AND kind = 'hold' "
                       "ORDER BY id LIMIT 1",
    /* ---- v3: plans ---- */
    [CM_Q_PLAN_UPDATE] = "UPDATE plans SET credits = $2, interval = $3, tier = $4, start_ms = $5, "
                         "next_period = $6, cancelled_ms = $7, sched_credits = $8, "
                         "sched_interval = $9, sched_tier = $10, sched_ms = $11 WHERE ws = $1",
    [CM_Q_PLAN_CHANGE_INSERT] =
        "INSERT INTO plan_changes(ws, at_ms, action, credits, interval, tier, ref, outcome, "
        "resumed, granted, effective_ms) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    [CM_Q_PLAN_CHANGE_BY_REF] = "SELECT ws, action, credits, interval, tier, outcome, resumed, "
                                "granted, effective_ms FROM plan_changes WHERE ref = $1",
    [CM_Q_PLAN_CHANGES_ALL] = "SELECT ws, at_ms, action, credits, interval FROM plan_changes "
                              "ORDER BY ws, id",
    [CM_Q_JOURNAL_V3_FROM] = "SELECT ws, id FROM journal_v3_from ORDER BY ws",
    /* The server's clock is the ledger's clock for every machine (read once per
     * transaction, right after BEGIN). */
    [CM_Q_CLOCK_NOW] = "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint",
    /* ---- end v3: plans ---- */
    /* v3: holds binding / prices */
    [CM_Q_HOLD_EXTRA] = "SELECT binding, note, commit_note FROM holds WHERE job = $1",
    [CM_Q_HOLD_SET_COMMIT_NOTE] = "UPDATE holds SET commit_note = $2 WHERE job = $1",
    [CM_Q_PRICE_LOG_INSERT] = "INSERT INTO prices_log(at_ms, actor, region, old_currency, "
                              "old_unit_minor, new_currency, new_unit_minor) "
                              "VALUES($1, $2, $3, $4, $5, $6, $7)",
    [CM_Q_PRICE_LOG_LIST] = "SELECT id, at_ms, actor, region, old_currency, old_unit_minor, "
                            "new_currency, new_unit_minor FROM prices_log "
                            "WHERE $1::text IS NULL OR region = $1::text ORDER BY id",
    [CM_Q_HOLD_BINDINGS_ALL] = "SELECT job, binding, state FROM holds "
                               "WHERE binding IS NOT NULL ORDER BY job",
    /* ---- v4: events, alerts, export, metrics, health ---- */
    /* tx: the writing transaction's id (its column default). */
    [CM_Q_EVENT_INSERT] = "INSERT INTO events(at_ms, ws, op, type, job, data) "
                          "VALUES($1, $2, $3, $4, $5, $6)",
    /* Ids are drawn before commit, so id order is not commit order. Delivery is in
     * (tx, id) order, and only of transactions older than the oldest one still running
     * (the snapshot's xmin): every later commit has a tx at or above it, so a cursor never
     * skips an event that commits late. A long transaction delays delivery, never loses. */
    [CM_Q_EVENTS_AFTER] = "SELECT id, tx, at_ms, type, ws, job, data FROM events "
                          "WHERE (tx, id) > ($1::bigint, $2::bigint) "
                          "AND tx < pg_snapshot_xmin(pg_current_snapshot())::text::bigint "
                          "ORDER BY tx, id LIMIT $3",
    /* Equalities only (a job id is never ''), so the anti-join can hash: events needs no
     * index of its own. */
    [CM_Q_EVENTS_UNMATCHED] =
        "SELECT j.ws, j.id, j.kind, j.job FROM journal j "
        "LEFT JOIN journal_v4_from f ON f.ws = j.ws "
        "WHERE j.id > COALESCE(f.id, 0) AND j.kind IN ('commit', 'release', 'lapse', 'refund', "
        "'purchase', 'plan_set', 'plan_cancel') AND NOT EXISTS (SELECT 1 FROM events e "
        "WHERE e.ws = j.ws AND e.op = j.op AND COALESCE(e.job, '') = COALESCE(j.job, '') "
        "AND (e.type = CASE j.kind WHEN 'plan_set' THEN 'plan_change' "
        "WHEN 'plan_cancel' THEN 'plan_change' ELSE j.kind END "
        "OR (j.kind = 'release' AND e.type = 'commit'))) "
        "ORDER BY j.ws, j.id LIMIT 1",
    [CM_Q_ALERT_STATE] = "SELECT a.below, a.armed, (SELECT COALESCE(SUM(remaining), 0)::bigint "
                         "FROM grants WHERE ws = $1 AND remaining > 0 AND (expires_ms IS NULL OR "
                         "expires_ms > $2)) FROM alerts a WHERE a.ws = $1",
    [CM_Q_ALERT_PUT] = "INSERT INTO alerts(ws, below, armed, set_by, set_ms) VALUES($1, $2, 1, $3, "
                       "$4) ON CONFLICT(ws) DO UPDATE SET below = excluded.below, armed = 1, "
                       "set_by = excluded.set_by, set_ms = excluded.set_ms",
    [CM_Q_ALERT_DELETE] = "DELETE FROM alerts WHERE ws = $1",
    [CM_Q_ALERT_ARM] = "UPDATE alerts SET armed = $2 WHERE ws = $1",
    [CM_Q_EXPORT_PAGE] =
        "SELECT j.id, j.op, j.ws, j.at_ms, j.kind, j.grant_id, j.job, j.credits, j.actor, "
        "j.reason, j.ref, h.binding, h.note, h.commit_note FROM journal j "
        "LEFT JOIN holds h ON h.job = j.job "
        "WHERE (j.ws, j.id) > ($1::text, $2::bigint) AND ($3::text IS NULL OR j.ws = $3::text) "
        "AND ($4::bigint IS NULL OR j.at_ms >= $4::bigint) "
        "AND ($5::bigint IS NULL OR j.at_ms < $5::bigint) "
        "ORDER BY j.ws, j.id LIMIT $6",
    [CM_Q_METRICS] =
        "SELECT (SELECT COUNT(*) FROM workspaces)::bigint, "
        "(SELECT COALESCE(SUM(remaining), 0) FROM grants WHERE remaining > 0 AND "
        "(expires_ms IS NULL OR expires_ms > $1::bigint))::bigint, "
        "(SELECT COALESCE(SUM(held), 0) FROM grants WHERE held > 0)::bigint, "
        "(SELECT COUNT(*) FROM holds WHERE state = 1)::bigint, "
        "(SELECT MIN(created_ms) FROM holds WHERE state = 1)::bigint, "
        "(SELECT COUNT(*) FROM holds WHERE state = 1 AND lease_until_ms <= $1::bigint)::bigint",
    [CM_Q_PING] = "INSERT INTO health(id, at_ms) VALUES(1, $1) "
                  "ON CONFLICT(id) DO UPDATE SET at_ms = excluded.at_ms",
};

/* Migrations: migration[v - 1] takes the schema from version v - 1 to v. Append only.
 * The same tables, columns and constraints as storage_sqlite.c, in PostgreSQL's
 * dialect: BIGINT counters, identity ids, "C" collation for texts. */
static const char *const migrations[CM_LEDGER_SCHEMA_VERSION] = {
    "CREATE TABLE prices(region TEXT COLLATE \"C\" PRIMARY KEY, "
    "  currency TEXT COLLATE \"C\" NOT NULL, "
    "  unit_minor BIGINT NOT NULL CHECK (unit_minor >= 0));"
    "INSERT INTO prices(region, currency, unit_minor) VALUES('default', 'USD', 15);"
    "CREATE TABLE workspaces(id TEXT COLLATE \"C\" PRIMARY KEY, owner TEXT COLLATE \"C\" NOT NULL,"
    "  region TEXT COLLATE \"C\" NOT NULL, created_ms BIGINT NOT NULL);"
    "CREATE TABLE members(ws TEXT COLLATE \"C\" NOT NULL REFERENCES workspaces(id), "
    "  user_id TEXT COLLATE \"C\" NOT NULL, PRIMARY KEY (ws, user_id));"
    "CREATE TABLE plans(ws TEXT COLLATE \"C\" PRIMARY KEY REFERENCES workspaces(id), "
    "  credits BIGINT NOT NULL CHECK (credits > 0), interval BIGINT NOT NULL, "
    "  tier TEXT COLLATE \"C\", start_ms BIGINT NOT NULL, next_period BIGINT NOT NULL, "
    "  cancelled_ms BIGINT);"
    "CREATE TABLE grants(id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
    "  ws TEXT COLLATE \"C\" NOT NULL REFERENCES workspaces(id), kind BIGINT NOT NULL, "
    "  granted BIGINT NOT NULL CHECK (granted >= 0), "
    "  remaining BIGINT NOT NULL CHECK (remaining >= 0), held BIGINT NOT NULL CHECK (held >= 0),"
    "  charged BIGINT NOT NULL CHECK (charged >= 0), expired BIGINT NOT NULL CHECK (expired >= 0),"
    "  refunded_into BIGINT NOT NULL CHECK (refunded_into >= 0), created_ms BIGINT NOT NULL, "
    "  expires_ms BIGINT, period BIGINT, ref TEXT COLLATE \"C\" UNIQUE, unit_minor BIGINT, "
    "  total_minor BIGINT, currency TEXT COLLATE \"C\");"
    "CREATE INDEX grants_ws ON grants(ws);"
    "CREATE TABLE holds(job TEXT COLLATE \"C\" PRIMARY KEY, "
    "  ws TEXT COLLATE \"C\" NOT NULL REFERENCES workspaces(id), "
    "  user_id TEXT COLLATE \"C\" NOT NULL, credits BIGINT NOT NULL CHECK (credits > 0), "
    "  lease_s BIGINT NOT NULL, state BIGINT NOT NULL, created_ms BIGINT NOT NULL, "
    "  lease_until_ms BIGINT NOT NULL, resolved_ms BIGINT, "
    "  charged BIGINT NOT NULL CHECK (charged >= 0), "
    "  refunded BIGINT NOT NULL CHECK (refunded >= 0 AND refunded <= charged), "
    "  commit_arg BIGINT);"
    "CREATE INDEX holds_lapse ON holds(ws, lease_until_ms) WHERE state = 1;"
    "CREATE TABLE hold_takes(job TEXT COLLATE \"C\" NOT NULL REFERENCES holds(job), "
    "  seq BIGINT NOT NULL, grant_id BIGINT NOT NULL REFERENCES grants(id), "
    "  credits BIGINT NOT NULL CHECK (credits > 0), charged BIGINT NOT NULL, "
    "  refunded BIGINT NOT NULL, PRIMARY KEY (job, seq));"
    "CREATE TABLE refunds(ref TEXT COLLATE \"C\" PRIMARY KEY, "
    "  job TEXT COLLATE \"C\" NOT NULL REFERENCES holds(job), credits BIGINT NOT NULL, "
    "  to_source BIGINT NOT NULL, refund_grant_id BIGINT, total_refunded BIGINT NOT NULL, "
    "  at_ms BIGINT NOT NULL);"
    "CREATE TABLE journal(id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
    "  op BIGINT NOT NULL, ws TEXT COLLATE \"C\" NOT NULL, at_ms BIGINT NOT NULL, "
    "  kind TEXT COLLATE \"C\" NOT NULL, grant_id BIGINT REFERENCES grants(id), "
    "  job TEXT COLLATE \"C\", credits BIGINT NOT NULL CHECK (credits >= 0), "
    "  actor TEXT COLLATE \"C\" NOT NULL, reason TEXT COLLATE \"C\", ref TEXT COLLATE \"C\");"
    "CREATE INDEX journal_ws ON journal(ws, id);"
    "CREATE SEQUENCE journal_op;"
    "CREATE FUNCTION journal_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "  'BEGIN RAISE EXCEPTION ''the journal is append-only''; END';"
    "CREATE TRIGGER journal_no_update BEFORE UPDATE OR DELETE ON journal "
    "  FOR EACH ROW EXECUTE FUNCTION journal_append_only();"
    "CREATE TRIGGER journal_no_truncate BEFORE TRUNCATE ON journal "
    "  FOR EACH STATEMENT EXECUTE FUNCTION journal_append_only();",

    /* v2: a take is written once; what a commit charged and a refund gave back of it
     * follow from its hold's charged and refunded (as v1 wrote them). */
    "ALTER TABLE hold_takes DROP COLUMN charged, DROP COLUMN refunded;",

    /* ---- v3: plans ---- (see storage_sqlite.c) */
    "ALTER TABLE plans ADD COLUMN sched_credits BIGINT, ADD COLUMN sched_interval BIGINT, "
    "  ADD COLUMN sched_tier TEXT COLLATE \"C\", ADD COLUMN sched_ms BIGINT;"
    "CREATE TABLE plan_changes(id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
    "  ws TEXT COLLATE \"C\" NOT NULL REFERENCES workspaces(id), at_ms BIGINT NOT NULL, "
    "  action TEXT COLLATE \"C\" NOT NULL CHECK (action IN ('set', 'cancel')), "
    "  credits BIGINT NOT NULL CHECK (credits >= 0), interval BIGINT NOT NULL, "
    "  tier TEXT COLLATE \"C\" NOT NULL, ref TEXT COLLATE \"C\" UNIQUE, "
    "  outcome BIGINT NOT NULL, resumed BIGINT NOT NULL, "
    "  granted BIGINT NOT NULL CHECK (granted >= 0), effective_ms BIGINT);"
    "CREATE INDEX plan_changes_ws ON plan_changes(ws, id);"
    "CREATE TABLE journal_v3_from(ws TEXT COLLATE \"C\" PRIMARY KEY, id BIGINT NOT NULL);"
    "INSERT INTO journal_v3_from(ws, id) SELECT ws, MAX(id) FROM journal GROUP BY ws;"
    /* ---- end v3: plans ---- */
    /* v3: holds binding / prices (as storage_sqlite.c). */
    "ALTER TABLE holds ADD COLUMN binding TEXT COLLATE \"C\", ADD COLUMN note TEXT COLLATE \"C\", "
    "  ADD COLUMN commit_note TEXT COLLATE \"C\";"
    "CREATE TABLE prices_log(id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
    "  at_ms BIGINT NOT NULL, actor TEXT COLLATE \"C\" NOT NULL, "
    "  region TEXT COLLATE \"C\" NOT NULL, old_currency TEXT COLLATE \"C\", "
    "  old_unit_minor BIGINT, new_currency TEXT COLLATE \"C\" NOT NULL, "
    "  new_unit_minor BIGINT NOT NULL CHECK (new_unit_minor >= 1));"
    "CREATE TRIGGER prices_log_no_update BEFORE UPDATE OR DELETE ON prices_log "
    "  FOR EACH ROW EXECUTE FUNCTION journal_append_only();"
    "CREATE TRIGGER prices_log_no_truncate BEFORE TRUNCATE ON prices_log "
    "  FOR EACH STATEMENT EXECUTE FUNCTION journal_append_only();",

    /* ---- v4: events, alerts, health ---- (see storage_sqlite.c). events.tx is the
     * writing transaction's id (pg_current_xact_id, PostgreSQL 13+): delivery order. */
    "CREATE TABLE events(id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
    "  tx BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint), "
    "  at_ms BIGINT NOT NULL, ws TEXT COLLATE \"C\" NOT NULL, op BIGINT NOT NULL, "
    "  type TEXT COLLATE \"C\" NOT NULL, job TEXT COLLATE \"C\", data TEXT NOT NULL);"
    "CREATE INDEX events_tx ON events(tx, id);"
    "CREATE TRIGGER events_no_update BEFORE UPDATE OR DELETE ON events "
    "  FOR EACH ROW EXECUTE FUNCTION journal_append_only();"
    "CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events "
    "  FOR EACH STATEMENT EXECUTE FUNCTION journal_append_only();"
    "CREATE TABLE alerts(ws TEXT COLLATE \"C\" PRIMARY KEY REFERENCES workspaces(id), "
    "  below BIGINT NOT NULL CHECK (below >= 1), armed BIGINT NOT NULL, "
    "  set_by TEXT COLLATE \"C\" NOT NULL, set_ms BIGINT NOT NULL);"
    "CREATE TABLE journal_v4_from(ws TEXT COLLATE \"C\" PRIMARY KEY, id BIGINT NOT NULL);"
    "INSERT INTO journal_v4_from(ws, id) SELECT ws, MAX(id) FROM journal GROUP BY ws;"
    "CREATE TABLE health(id BIGINT PRIMARY KEY CHECK (id = 1), at_ms BIGINT NOT NULL);",
};

/* Keep libpq's message as one line (its messages may span several: DETAIL, HINT). */
static void set_err(cm_storage *st, const char *what, const char *msg)
{
    snprintf(st->err, sizeof st->err, "postgresql: %s%s%s", what ? what : "", what ? ": " : "",
             msg && *msg ? msg : "unknown error");
    for (char *p = st->err; *p; p++)
        if (*p == '\n' || *p == '\t')
            *p = ' ';
    size_t n = strlen(st->err);
    while (n && st->err[n - 1] == ' ')
        st->err[--n] = 0;
}

/* Map a failed result to a storage code and keep libpq's message. */
static int map_result(cm_storage *st, const PGresult *res)
{
    ExecStatusType s = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK)
        return CM_ST_OK;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (primary && state) {
        snprintf(st->err, sizeof st->err, "postgresql: %s (SQLSTATE %s)", primary, state);
    } else {
        const char *msg = res ? PQresultErrorMessage(res) : NULL;
        set_err(st, NULL, msg && *msg ? msg : PQerrorMessage(st->conn));
    }
    if (!state)
        return CM_ST_ERROR; /* e.g. the connection was lost */
    if (!strcmp(state, "40001") || !strcmp(state, "40P01"))
        return CM_ST_RETRY; /* serialization failure, deadlock: run the call again */
    if (!strcmp(state, "55P03") || !strcmp(state, "57014"))
        return CM_ST_BUSY; /* lock_timeout, statement_timeout */
    if (!strncmp(state, "23", 2))
        return CM_ST_CONSTRAINT; /* integrity constraint violation */
    return CM_ST_ERROR;
}

static int exec_sql(cm_storage *st, const char *sql)
{
    PGresult *res = PQexec(st->conn, sql);
    int rc = map_result(st, res);
    PQclear(res);
    return rc;
}

static int exec_params(cm_storage *st, const char *sql, int n, const char *const *vals,
                       int64_t *out)
{
    PGresult *res = PQexecParams(st->conn, sql, n, NULL, vals, NULL, NULL, 0);
    int rc = map_result(st, res);
    if (!rc && out)
        *out = PQntuples(res) && !PQgetisnull(res, 0, 0) ? strtoll(PQgetvalue(res, 0, 0), NULL, 10)
                                                         : 0;
    PQclear(res);
    return rc;
}

static void quiet_notices(void *arg, const char *message)
{
    (void)arg;
    (void)message; /* NOTICEs ("... already exists, skipping") are not the caller's business */
}

/* Per-connection settings; run again after a reconnect. Values are bound, not pasted. */
static int session_setup(cm_storage *st)
{
    PQsetNoticeProcessor(st->conn, quiet_notices, NULL);
    memset(st->prepared, 0, sizeof st->prepared);
    char ms[24];
    snprintf(ms, sizeof ms, "%d", st->busy_timeout_ms);
    const char *lock_args[] = {ms};
    int rc = exec_params(st, "SELECT set_config('lock_timeout', $1, false)", 1, lock_args, NULL);
    if (rc)
        return rc;
    /* FULL: an acknowledged commit is on disk (synchronous_commit must not be off; a
     * server set to remote_write/remote_apply/local keeps its stronger setting). NORMAL:
     * commits are acknowledged before the flush, like SQLite's WAL at NORMAL: a crash of
     * the server may lose the last transactions, never corrupt. */
    if (st->synchronous == CM_LEDGER_SYNC_NORMAL)
        return exec_sql(st, "SET synchronous_commit = off");
    return exec_sql(st, "SELECT set_config('synchronous_commit', 'on', false) "
                        "WHERE current_setting('synchronous_commit') = 'off'");
}

static int migrate(cm_storage *st, int create)
{
    int rc = exec_sql(st, "BEGIN ISOLATION LEVEL READ COMMITTED");
    if (rc)
        return rc;
    int64_t version = 0, has = 0;
    rc = exec_sql(st, "SELECT pg_advisory_xact_lock(" MIGRATION_LOCK_KEY ")");
    /* A database (or search_path schema) without the ledger's tables is no ledger unless
     * creation was asked for. */
    if (!rc)
        rc = exec_params(st, "SELECT (to_regclass('schema_version') IS NOT NULL)::int", 0, NULL,
                         &has);
    if (!rc && !has && !create) {
        snprintf(st->err, sizeof st->err, "the database holds no creditmeter ledger");
        PQclear(PQexec(st->conn, "ROLLBACK"));
        return CM_ST_NO_LEDGER;
    }
    if (!rc)
        rc = exec_sql(st, "CREATE TABLE IF NOT EXISTS schema_version(version BIGINT NOT NULL)");
    if (!rc)
        rc = exec_params(st, "SELECT MAX(version) FROM schema_version", 0, NULL, &version);
    if (!rc && version > CM_LEDGER_SCHEMA_VERSION) {
        snprintf(st->err, sizeof st->err,
                 "the ledger's schema is version %lld, newer than this library's %d",
                 (long long)version, CM_LEDGER_SCHEMA_VERSION);
        rc = CM_ST_ERROR;
    }
    for (int v = (int)version + 1; !rc && v <= CM_LEDGER_SCHEMA_VERSION; v++) {
        rc = exec_sql(st, migrations[v - 1]);
        if (!rc) {
            char n[16];
            snprintf(n, sizeof n, "%d", v);
            const char *args[] = {n};
            rc = exec_params(st, "INSERT INTO schema_version(version) VALUES($1)", 1, args, NULL);
        }
    }
    if (rc) {
        PQclear(PQexec(st->conn, "ROLLBACK"));
        return rc;
    }
    return exec_sql(st, "COMMIT");
}

static void st_close(cm_storage *st)
{
    if (!st)
        return;
    PQfinish(st->conn);
    free(st);
}

static int st_open(cm_storage **out, const char *location, const cm_storage_options *opt, char *err,
                   size_t errlen)
{
    *out = NULL;
    cm_storage *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return CM_ST_ERROR;
    }
    st->busy_timeout_ms = opt->busy_timeout_ms;
    st->synchronous = opt->synchronous;
    st->conn = PQconnectdb(location);
    if (!st->conn || PQstatus(st->conn) != CONNECTION_OK) {
        /* The location may hold a password: name the server by host and database only. */
        set_err(st, NULL, st->conn ? PQerrorMessage(st->conn) : "out of memory");
        snprintf(err, errlen, "cannot open ledger on PostgreSQL (database '%s' at '%s'): %s",
                 st->conn && PQdb(st->conn) ? PQdb(st->conn) : "?",
                 st->conn && PQhost(st->conn) ? PQhost(st->conn) : "?", st->err);
        st_close(st);
        return CM_ST_ERROR;
    }
    int rc = session_setup(st);
    if (!rc)
        rc = migrate(st, opt->create);
    if (rc == CM_ST_NO_LEDGER) {
        snprintf(err, errlen,
                 "there is no ledger in PostgreSQL database '%s' (no creditmeter schema); create "
                 "one with `cm-ledger --db URI init`",
                 PQdb(st->conn));
        st_close(st);
        return rc;
    }
    if (rc) {
        snprintf(err, errlen, "cannot open ledger on PostgreSQL (database '%s'): %s",
                 PQdb(st->conn), st->err);
        st_close(st);
        return rc == CM_ST_RETRY ? CM_ST_BUSY : rc;
    }
    *out = st;
    return CM_ST_OK;
}

/* A connection the server dropped (restart, failover, idle timeout) is re-established
 * at the start of the next transaction; one inside a transaction is an error, and the
 * transaction is lost like any other failed one. */
static int reconnect_if_lost(cm_storage *st)
{
    if (PQstatus(st->conn) == CONNECTION_OK)
        return CM_ST_OK;
    PQreset(st->conn);
    if (PQstatus(st->conn) != CONNECTION_OK) {
        set_err(st, "the connection to the server was lost", PQerrorMessage(st->conn));
        return CM_ST_ERROR;
    }
    return session_setup(st);
}

static int st_begin(cm_storage *st, int write)
{
    int rc = reconnect_if_lost(st);
    if (rc)
        return rc;
    return exec_sql(st, write ? "BEGIN ISOLATION LEVEL SERIALIZABLE"
                              : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
}

static int st_rollback(cm_storage *st)
{
    if (PQtransactionStatus(st->conn) == PQTRANS_IDLE)
        return CM_ST_OK;
    return exec_sql(st, "ROLLBACK");
}

static int st_commit(cm_storage *st)
{
    /* COMMIT of a transaction that had an error would silently roll back: refuse. */
    if (PQtransactionStatus(st->conn) == PQTRANS_INERROR) {
        snprintf(st->err, sizeof st->err,
                 "postgresql: a statement of the transaction failed; it was rolled back");
        st_rollback(st);
        return CM_ST_ERROR;
    }
    return exec_sql(st, "COMMIT");
}

#define MAX_PARAMS 12

static int st_run(cm_storage *st, cm_stmt id, const cm_sv *params, int nparams, cm_row_fn fn,
                  void *ctx)
{
    char name[16];
    snprintf(name, sizeof name, "cm_q%d", (int)id);
    if (nparams > MAX_PARAMS) {
        snprintf(st->err, sizeof st->err, "postgresql: too many parameters (%d)", nparams);
        return CM_ST_ERROR;
    }
    if (!st->prepared[id]) {
        PGresult *res = PQprepare(st->conn, name, sql_text[id], 0, NULL);
        int rc = map_result(st, res);
        PQclear(res);
        if (rc)
            return rc;
        st->prepared[id] = 1;
    }
    char ints[MAX_PARAMS][24];
    const char *vals[MAX_PARAMS];
    for (int i = 0; i < nparams; i++) {
        if (params[i].type == CM_SV_INT) {
            snprintf(ints[i], sizeof ints[i], "%lld", (long long)params[i].i);
            vals[i] = ints[i];
        } else if (params[i].type == CM_SV_TEXT) {
            vals[i] = params[i].s; /* NULL pointer: SQL NULL */
        } else {
            vals[i] = NULL;
        }
    }
    PGresult *res = PQexecPrepared(st->conn, name, nparams, vals, NULL, NULL, 0);
    int rc = map_result(st, res);
    if (rc) {
        PQclear(res);
        return rc;
    }
    int result = CM_ST_OK;
    int nrows = PQntuples(res), n = PQnfields(res);
    cm_sv cols[CM_MAX_COLS];
    if (n > (int)(sizeof cols / sizeof cols[0]))
        n = (int)(sizeof cols / sizeof cols[0]);
    for (int r = 0; fn && r < nrows; r++) {
        for (int c = 0; c < n; c++) {
            if (PQgetisnull(res, r, c)) {
                cols[c] = (cm_sv){CM_SV_NULL, 0, NULL};
                continue;
            }
            Oid t = PQftype(res, c);
            const char *v = PQgetvalue(res, r, c);
            if (t == PG_INT8OID || t == PG_INT4OID || t == PG_INT2OID)
                cols[c] = (cm_sv){CM_SV_INT, strtoll(v, NULL, 10), NULL};
            else
                cols[c] = (cm_sv){CM_SV_TEXT, 0, v};
        }
        if (fn(ctx, cols, n)) {
            result = CM_ST_ABORT;
            break;
        }
    }
    PQclear(res);
    return result;
}

static const char *st_errmsg(cm_storage *st)
{
    return st->err;
}

const cm_storage_ops cm__storage_pg = {
    .name = "postgresql",
    .open = st_open,
    .close = st_close,
    .begin = st_begin,
    .commit = st_commit,
    .rollback = st_rollback,
    .run = st_run,
    .errmsg = st_errmsg,
};
