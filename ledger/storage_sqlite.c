/* SPDX-License-Identifier: MIT */
/*
 * storage_sqlite.c - the SQLite implementation of storage.h.
 *
 * All of the ledger's SQLite text lives here: the schema with its migrations and one
 * SQL string per named statement, prepared once per connection and always run with
 * bound parameters. Settings: WAL journal (readers never block the writer), BEGIN
 * IMMEDIATE for every write transaction (the write lock is taken up front, so two
 * writers never deadlock on a lock upgrade and every read-modify-write is
 * serialised), a busy timeout, synchronous FULL or NORMAL, foreign keys on. The
 * journal table refuses UPDATE and DELETE by trigger: it is append-only.
 */
#include "storage.h"
#include "storage_sql.h"
#include "cm_ledger.h"

#include <errno.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { TX_BEGIN_WRITE, TX_BEGIN_READ, TX_COMMIT, TX_ROLLBACK, TX__COUNT };

static const char *const tx_sql[TX__COUNT] = {"BEGIN IMMEDIATE", "BEGIN", "COMMIT", "ROLLBACK"};

struct cm_storage {
    sqlite3 *db;
    sqlite3_stmt *stmts[CM_Q__COUNT];
    sqlite3_stmt *tx_stmts[TX__COUNT]; /* prepared once: parsing them is per-call work */
    char err[256];
};

/* What CM_Q_TOUCH_STATE and CM_Q_TOUCH_STATE_JOB read of workspace WS, at c.now. */
#define SQ_TOUCH(WS, FROM)                                                                         \
    "SELECT EXISTS(SELECT 1 FROM holds WHERE ws = " WS " AND state = 1 "                           \
    "AND lease_until_ms <= c.now), "                                                               \
    "EXISTS(SELECT 1 FROM grants WHERE ws = " WS " AND remaining > 0 "                             \
    "AND expires_ms IS NOT NULL AND expires_ms <= c.now), "                                        \
    "p.credits, p.interval, p.start_ms, p.next_period, p.cancelled_ms, c.now, "                    \
    "EXISTS(SELECT 1 FROM alerts WHERE ws = " WS ") "                                              \
    "FROM " FROM " LEFT JOIN plans p ON p.ws = " WS

static const char *const sql_text[CM_Q__COUNT] = {
    [CM_Q_PRICE_GET] = "SELECT currency, unit_minor FROM prices WHERE region = ?1",
    [CM_Q_PRICE_UPSERT] = "INSERT INTO prices(region, currency, unit_minor) VALUES(?1, ?2, ?3) "
                          "ON CONFLICT(region) DO UPDATE SET currency = excluded.currency, "
                          "unit_minor = excluded.unit_minor",
    [CM_Q_WS_GET] = "SELECT owner, region FROM workspaces WHERE id = ?1",
    [CM_Q_WS_INSERT] = "INSERT INTO workspaces(id, owner, region, created_ms) VALUES(?1,?2,?3,?4)",
    [CM_Q_WS_ALL] = "SELECT id FROM workspaces ORDER BY id",
    [CM_Q_WS_ACCESS] = "SELECT owner, region, "
                       "EXISTS(SELECT 1 FROM members WHERE ws = ?1 AND user_id = ?2) "
                       "FROM workspaces WHERE id = ?1",
    [CM_Q_MEMBER_GET] = "SELECT 1 FROM members WHERE ws = ?1 AND user_id = ?2",
    [CM_Q_MEMBER_INSERT] = "INSERT INTO members(ws, user_id) VALUES(?1, ?2) "
                           "ON CONFLICT DO NOTHING",
    [CM_Q_MEMBER_DELETE] = "DELETE FROM members WHERE ws = ?1 AND user_id = ?2",
    [CM_Q_PLAN_GET] =
        "SELECT credits, interval, tier, start_ms, next_period, cancelled_ms, "
        "sched_credits, sched_interval, sched_tier, sched_ms FROM plans WHERE ws = ?1",
    [CM_Q_PLAN_PUT] = "INSERT INTO plans(ws, credits, interval, tier, start_ms, next_period, "
                      "cancelled_ms) VALUES(?1, ?2, ?3, ?4, ?5, 0, NULL) "
                      "ON CONFLICT(ws) DO UPDATE SET credits = excluded.credits, "
                      "interval = excluded.interval, tier = excluded.tier, "
                      "start_ms = excluded.start_ms, next_period = 0, cancelled_ms = NULL, "
                      "sched_credits = NULL, sched_interval = NULL, sched_tier = NULL, "
                      "sched_ms = NULL",
    [CM_Q_PLAN_SET_NEXT] = "UPDATE plans SET next_period = ?2 WHERE ws = ?1",
    [CM_Q_PLAN_CANCEL] = "UPDATE plans SET cancelled_ms = ?2 WHERE ws = ?1",
    /* The lapse test is index-only (the partial index holds_lapse). */
    /* now: the clock, or the time of the workspace's last journal row if that is later
     * (the journal is clustered by (ws, id): its last row is one probe). */
    [CM_Q_TOUCH_STATE] =
        "WITH c(now) AS (SELECT MAX(?2, COALESCE((SELECT at_ms FROM journal WHERE ws = ?1 "
        "ORDER BY id DESC LIMIT 1), ?2))) " SQ_TOUCH("?1", "c"),
    /* The same of the job's workspace (w: no row without the hold). */
    [CM_Q_TOUCH_STATE_JOB] =
        "WITH w(wsid) AS (SELECT ws FROM holds WHERE job = ?1), "
        "c(now) AS (SELECT MAX(?2, COALESCE((SELECT at_ms FROM journal WHERE ws = w.wsid "
        "ORDER BY id DESC LIMIT 1), ?2)) FROM w) " SQ_TOUCH("w.wsid", "w CROSS JOIN c"),
    [CM_Q_GRANT_INSERT] =
        "INSERT INTO grants(ws, kind, granted, remaining, held, charged, expired, "
        "refunded_into, created_ms, expires_ms, period, ref, unit_minor, total_minor, currency) "
        "VALUES(?1, ?2, ?3, ?3, 0, 0, 0, 0, ?4, ?5, ?6, ?7, ?8, ?9, ?10) RETURNING id",
    [CM_Q_GRANT_GET] = "SELECT " GRANT_COLS " FROM grants WHERE id = ?1",
    [CM_Q_GRANT_SPENDABLE] = "SELECT " GRANT_COLS " FROM grants WHERE ws = ?1 AND remaining > 0 "
                             "AND (expires_ms IS NULL OR expires_ms > ?2)" SPENDING_ORDER,
    [CM_Q_GRANT_LIVE] = "SELECT " GRANT_COLS " FROM grants WHERE ws = ?1 "
                        "AND (remaining > 0 OR held > 0)" SPENDING_ORDER,
    [CM_Q_GRANT_EXPIRING] = "SELECT " GRANT_COLS " FROM grants WHERE ws = ?1 AND remaining > 0 "
                            "AND expires_ms IS NOT NULL AND expires_ms <= ?2 "
                            "ORDER BY expires_ms, id",
    [CM_Q_GRANT_ALL] = "SELECT " GRANT_COLS " FROM grants ORDER BY id",
    [CM_Q_GRANT_BY_REF] = "SELECT " GRANT_COLS " FROM grants WHERE ref = ?1",
    [CM_Q_GRANT_SET] =
        "UPDATE grants SET granted = ?7, remaining = ?2, held = ?3, charged = ?4, expired = ?5, "
        "refunded_into = ?6 WHERE id = ?1",
    [CM_Q_HOLD_GET] = "SELECT " HOLD_COLS " FROM holds WHERE job = ?1",
    [CM_Q_HOLD_INSERT] = "INSERT INTO holds(job, ws, user_id, credits, lease_s, state, "
                         "created_ms, lease_until_ms, resolved_ms, charged, refunded, commit_arg"
                         ", binding, note) "
                         "VALUES(?1, ?2, ?3, ?4, ?5, 1, ?6, ?7, NULL, 0, 0, NULL, ?8, ?9)",
    [CM_Q_HOLD_LAPSABLE] = "SELECT job FROM holds WHERE ws = ?1 AND state = 1 "
                           "AND lease_until_ms <= ?2 ORDER BY lease_until_ms, job",
    [CM_Q_HOLD_RENEW] = "UPDATE holds SET lease_until_ms = ?2 WHERE job = ?1",
    [CM_Q_HOLD_RESOLVE] = "UPDATE holds SET state = ?2, resolved_ms = ?3, charged = ?4, "
                          "commit_arg = ?5 WHERE job = ?1 AND state = 1",
    [CM_Q_HOLD_SET_REFUNDED] = "UPDATE holds SET refunded = ?2 WHERE job = ?1",
    [CM_Q_HOLD_ALL] = "SELECT " HOLD_COLS " FROM holds ORDER BY job",
    [CM_Q_TAKE_INSERT] = "INSERT INTO hold_takes(job, seq, grant_id, credits) "
                         "VALUES(?1, ?2, ?3, ?4)",
    [CM_Q_TAKES_OF] = "SELECT t.seq, t.grant_id, t.credits, g.kind, g.expires_ms "
                      "FROM hold_takes t JOIN grants g ON g.id = t.grant_id "
                      "WHERE t.job = ?1 ORDER BY t.seq",
    [CM_Q_TAKES_GRANTS] = "SELECT " GRANT_COLS_G ", t.seq, t.credits "
                          "FROM hold_takes t JOIN grants g ON g.id = t.grant_id "
                          "WHERE t.job = ?1 ORDER BY t.seq",
    [CM_Q_TAKES_ALL] = "SELECT t.job, t.seq, t.grant_id, t.credits, g.ws FROM hold_takes t "
                       "LEFT JOIN grants g ON g.id = t.grant_id ORDER BY t.job, t.seq",
    [CM_Q_REFUND_GET] = "SELECT job, credits, to_source, refund_grant_id, total_refunded "
                        "FROM refunds WHERE ref = ?1",
    [CM_Q_REFUND_INSERT] = "INSERT INTO refunds(ref, job, credits, to_source, refund_grant_id, "
                           "total_refunded, at_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    /* The journal is clustered by (ws, id): a row's id is the next in its workspace (one
     * probe of the primary key), and an operation is numbered by the id its first row
     * gets. (Plain VALUES: INSERT ... SELECT from the same table, or RETURNING, would
     * each cost more than the insert itself.) */
    [CM_Q_JOURNAL_NEXT_OP] = "SELECT COALESCE(MAX(id), 0) + 1 FROM journal WHERE ws = ?1",
    [CM_Q_JOURNAL_INSERT] = "INSERT INTO journal(id, op, ws, at_ms, kind, grant_id, job, credits, "
                            "actor, reason, ref) "
                            "VALUES((SELECT COALESCE(MAX(id), 0) + 1 FROM journal WHERE ws = ?2), "
                            "?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [CM_Q_JOURNAL_OF_WS] = "SELECT id, at_ms, kind, grant_id, job, credits, actor, reason, ref "
                           "FROM journal WHERE ws = ?1 ORDER BY id",
    [CM_Q_JOURNAL_ALL] = "SELECT id, op, kind, grant_id, job, credits, ws, at_ms FROM journal "
                         "ORDER BY ws, id",
    [CM_Q_HOLD_NOTE] = "SELECT reason FROM journal WHERE ws = ?1 AND job = ?2 AND kind = 'hold' "
                       "ORDER BY id LIMIT 1",
    /* ---- v3: plans ---- */
    [CM_Q_PLAN_UPDATE] = "UPDATE plans SET credits = ?2, interval = ?3, tier = ?4, start_ms = ?5, "
                         "next_period = ?6, cancelled_ms = ?7, sched_credits = ?8, "
                         "sched_interval = ?9, sched_tier = ?10, sched_ms = ?11 WHERE ws = ?1",
    [CM_Q_PLAN_CHANGE_INSERT] =
        "INSERT INTO plan_changes(ws, at_ms, action, credits, interval, tier, ref, outcome, "
        "resumed, granted, effective_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    [CM_Q_PLAN_CHANGE_BY_REF] = "SELECT ws, action, credits, interval, tier, outcome, resumed, "
                                "granted, effective_ms FROM plan_changes WHERE ref = ?1",
    [CM_Q_PLAN_CHANGES_ALL] = "SELECT ws, at_ms, action, credits, interval FROM plan_changes "
                              "ORDER BY ws, id",
    [CM_Q_JOURNAL_V3_FROM] = "SELECT ws, id FROM journal_v3_from ORDER BY ws",
    [CM_Q_CLOCK_NOW] = "SELECT NULL",
    /* ---- end v3: plans ---- */
    /* v3: holds binding / prices */
    [CM_Q_HOLD_EXTRA] = "SELECT binding, note, commit_note FROM holds WHERE job = ?1",
    [CM_Q_HOLD_SET_COMMIT_NOTE] = "UPDATE holds SET commit_note = ?2 WHERE job = ?1",
    [CM_Q_PRICE_LOG_INSERT] = "INSERT INTO prices_log(at_ms, actor, region, old_currency, "
                              "old_unit_minor, new_currency, new_unit_minor) "
                              "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [CM_Q_PRICE_LOG_LIST] = "SELECT id, at_ms, actor, region, old_currency, old_unit_minor, "
                            "new_currency, new_unit_minor FROM prices_log "
                            "WHERE ?1 IS NULL OR region = ?1 ORDER BY id",
    [CM_Q_HOLD_BINDINGS_ALL] = "SELECT job, binding, state FROM holds "
                               "WHERE binding IS NOT NULL ORDER BY job",
    /* ---- v4: events, alerts, export, metrics, health ---- */
    [CM_Q_EVENT_INSERT] = "INSERT INTO events(tx, at_ms, ws, op, type, job, data) "
                          "VALUES(0, ?1, ?2, ?3, ?4, ?5, ?6)",
    /* Writers are serialised (BEGIN IMMEDIATE): ids follow commit order. */
    [CM_Q_EVENTS_AFTER] = "SELECT id, tx, at_ms, type, ws, job, data FROM events "
                          "WHERE ?1 >= 0 AND id > ?2 ORDER BY id LIMIT ?3",
    /* An anti-join (LEFT JOIN ... IS NULL), not NOT EXISTS: SQLite then builds an
     * automatic index on events(ws, op, job) for the check, so events needs no index of
     * its own (one page less per event written) and the check is not quadratic. */
    [CM_Q_EVENTS_UNMATCHED] =
        "SELECT j.ws, j.id, j.kind, j.job FROM journal j "
        "LEFT JOIN journal_v4_from f ON f.ws = j.ws "
        "LEFT JOIN events e ON e.ws = j.ws AND e.op = j.op AND e.job IS j.job "
        "AND (e.type = CASE j.kind WHEN 'plan_set' THEN 'plan_change' "
        "WHEN 'plan_cancel' THEN 'plan_change' ELSE j.kind END "
        "OR (j.kind = 'release' AND e.type = 'commit')) "
        "WHERE j.id > COALESCE(f.id, 0) AND j.kind IN ('commit', 'release', 'lapse', 'refund', "
        "'purchase', 'plan_set', 'plan_cancel') AND e.id IS NULL "
        "ORDER BY j.ws, j.id LIMIT 1",
    [CM_Q_ALERT_STATE] = "SELECT a.below, a.armed, (SELECT COALESCE(SUM(remaining), 0) FROM grants "
                         "WHERE ws = ?1 AND remaining > 0 AND (expires_ms IS NULL OR "
                         "expires_ms > ?2)) FROM alerts a WHERE a.ws = ?1",
    [CM_Q_ALERT_PUT] = "INSERT INTO alerts(ws, below, armed, set_by, set_ms) VALUES(?1, ?2, 1, ?3, "
                       "?4) ON CONFLICT(ws) DO UPDATE SET below = excluded.below, armed = 1, "
                       "set_by = excluded.set_by, set_ms = excluded.set_ms",
    [CM_Q_ALERT_DELETE] = "DELETE FROM alerts WHERE ws = ?1",
    [CM_Q_ALERT_ARM] = "UPDATE alerts SET armed = ?2 WHERE ws = ?1",
    [CM_Q_EXPORT_PAGE] =
        "SELECT j.id, j.op, j.ws, j.at_ms, j.kind, j.grant_id, j.job, j.credits, j.actor, "
        "j.reason, j.ref, h.binding, h.note, h.commit_note FROM journal j "
        "LEFT JOIN holds h ON h.job = j.job "
        "WHERE (j.ws, j.id) > (?1, ?2) AND (?3 IS NULL OR j.ws = ?3) "
        "AND (?4 IS NULL OR j.at_ms >= ?4) AND (?5 IS NULL OR j.at_ms < ?5) "
        "ORDER BY j.ws, j.id LIMIT ?6",
    [CM_Q_METRICS] = "SELECT (SELECT COUNT(*) FROM workspaces), "
                     "(SELECT COALESCE(SUM(remaining), 0) FROM grants WHERE remaining > 0 AND "
                     "(expires_ms IS NULL OR expires_ms > ?1)), "
                     "(SELECT COALESCE(SUM(held), 0) FROM grants WHERE held > 0), "
                     "(SELECT COUNT(*) FROM holds WHERE state = 1), "
                     "(SELECT MIN(created_ms) FROM holds WHERE state = 1), "
                     "(SELECT COUNT(*) FROM holds WHERE state = 1 AND lease_until_ms <= ?1)",
    [CM_Q_PING] = "INSERT INTO health(id, at_ms) VALUES(1, ?1) "
                  "ON CONFLICT(id) DO UPDATE SET at_ms = excluded.at_ms",
};

/* Migrations: migration[v - 1] takes the schema from version v - 1 to v. Append only. */
static const char *const migrations[CM_LEDGER_SCHEMA_VERSION] = {
    "CREATE TABLE prices(region TEXT PRIMARY KEY, currency TEXT NOT NULL, "
    "  unit_minor INTEGER NOT NULL CHECK (unit_minor >= 0));"
    "INSERT INTO prices(region, currency, unit_minor) VALUES('default', 'USD', 15);"
    "CREATE TABLE workspaces(id TEXT PRIMARY KEY, owner TEXT NOT NULL, region TEXT NOT NULL, "
    "  created_ms INTEGER NOT NULL);"
    "CREATE TABLE members(ws TEXT NOT NULL REFERENCES workspaces(id), user_id TEXT NOT NULL, "
    "  PRIMARY KEY (ws, user_id)) WITHOUT ROWID;"
    "CREATE TABLE plans(ws TEXT PRIMARY KEY REFERENCES workspaces(id), "
    "  credits INTEGER NOT NULL CHECK (credits > 0), interval INTEGER NOT NULL, tier TEXT, "
    "  start_ms INTEGER NOT NULL, next_period INTEGER NOT NULL, cancelled_ms INTEGER);"
    "CREATE TABLE grants(id INTEGER PRIMARY KEY, ws TEXT NOT NULL REFERENCES workspaces(id), "
    "  kind INTEGER NOT NULL, granted INTEGER NOT NULL CHECK (granted >= 0), "
    "  remaining INTEGER NOT NULL CHECK (remaining >= 0), held INTEGER NOT NULL CHECK (held >= 0),"
    "  charged INTEGER NOT NULL CHECK (charged >= 0), expired INTEGER NOT NULL CHECK (expired >= "
    "0),"
    "  refunded_into INTEGER NOT NULL CHECK (refunded_into >= 0), created_ms INTEGER NOT NULL, "
    "  expires_ms INTEGER, period INTEGER, ref TEXT UNIQUE, unit_minor INTEGER, "
    "  total_minor INTEGER, currency TEXT);"
    "CREATE INDEX grants_ws ON grants(ws);"
    "CREATE TABLE holds(job TEXT PRIMARY KEY, ws TEXT NOT NULL REFERENCES workspaces(id), "
    "  user_id TEXT NOT NULL, credits INTEGER NOT NULL CHECK (credits > 0), "
    "  lease_s INTEGER NOT NULL, state INTEGER NOT NULL, created_ms INTEGER NOT NULL, "
    "  lease_until_ms INTEGER NOT NULL, resolved_ms INTEGER, "
    "  charged INTEGER NOT NULL CHECK (charged >= 0), "
    "  refunded INTEGER NOT NULL CHECK (refunded >= 0 AND refunded <= charged), "
    "  commit_arg INTEGER) WITHOUT ROWID;"
    "CREATE INDEX holds_lapse ON holds(ws, lease_until_ms) WHERE state = 1;"
    "CREATE TABLE hold_takes(job TEXT NOT NULL REFERENCES holds(job), seq INTEGER NOT NULL, "
    "  grant_id INTEGER NOT NULL REFERENCES grants(id), credits INTEGER NOT NULL CHECK (credits > "
    "0),"
    "  charged INTEGER NOT NULL, refunded INTEGER NOT NULL, PRIMARY KEY (job, seq)) WITHOUT ROWID;"
    "CREATE TABLE refunds(ref TEXT PRIMARY KEY, job TEXT NOT NULL REFERENCES holds(job), "
    "  credits INTEGER NOT NULL, to_source INTEGER NOT NULL, refund_grant_id INTEGER, "
    "  total_refunded INTEGER NOT NULL, at_ms INTEGER NOT NULL);"
    "CREATE TABLE journal(id INTEGER PRIMARY KEY, op INTEGER NOT NULL, ws TEXT NOT NULL, "
    "  at_ms INTEGER NOT NULL, kind TEXT NOT NULL, grant_id INTEGER REFERENCES grants(id), "
    "  job TEXT, credits INTEGER NOT NULL CHECK (credits >= 0), actor TEXT NOT NULL, "
    "  reason TEXT, ref TEXT);"
    "CREATE INDEX journal_ws ON journal(ws, id);"
    "CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal "
    "  BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;"
    "CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal "
    "  BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;",

    /* v2: fewer pages written per hold. A take is written once at reserve: what a commit
     * charged and a refund gave back of it follow from its hold's charged and refunded
     * (in take order, and last take first, as v1 wrote them). The journal is clustered by
     * (ws, id) instead of a rowid table plus an index on (ws, id), keeping every row's
     * id; new ids are per workspace. */
    "ALTER TABLE hold_takes DROP COLUMN charged;"
    "ALTER TABLE hold_takes DROP COLUMN refunded;"
    "CREATE TABLE journal_v2(id INTEGER NOT NULL, op INTEGER NOT NULL, ws TEXT NOT NULL, "
    "  at_ms INTEGER NOT NULL, kind TEXT NOT NULL, grant_id INTEGER REFERENCES grants(id), "
    "  job TEXT, credits INTEGER NOT NULL CHECK (credits >= 0), actor TEXT NOT NULL, "
    "  reason TEXT, ref TEXT, PRIMARY KEY (ws, id)) WITHOUT ROWID;"
    "INSERT INTO journal_v2(id, op, ws, at_ms, kind, grant_id, job, credits, actor, reason, ref) "
    "  SELECT id, op, ws, at_ms, kind, grant_id, job, credits, actor, reason, ref FROM journal;"
    "DROP TABLE journal;"
    "ALTER TABLE journal_v2 RENAME TO journal;"
    "CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal "
    "  BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;"
    "CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal "
    "  BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;",

    /* ---- v3: plans ----
     * A plan may have one scheduled change (a downgrade, or annual -> monthly) taking
     * effect at sched_ms, the end of its current period. plan_changes records every
     * plan set/cancel that was not a replay: its payment reference (replays return the
     * stored outcome) and the plan history check proves the plan grants against.
     * journal_v3_from: each workspace's last journal id before v3; the clock rules
     * (times never decrease) are checked on the rows after it. */
    "ALTER TABLE plans ADD COLUMN sched_credits INTEGER;"
    "ALTER TABLE plans ADD COLUMN sched_interval INTEGER;"
    "ALTER TABLE plans ADD COLUMN sched_tier TEXT;"
    "ALTER TABLE plans ADD COLUMN sched_ms INTEGER;"
    "CREATE TABLE plan_changes(id INTEGER PRIMARY KEY, "
    "  ws TEXT NOT NULL REFERENCES workspaces(id), at_ms INTEGER NOT NULL, "
    "  action TEXT NOT NULL CHECK (action IN ('set', 'cancel')), "
    "  credits INTEGER NOT NULL CHECK (credits >= 0), interval INTEGER NOT NULL, "
    "  tier TEXT NOT NULL, ref TEXT UNIQUE, outcome INTEGER NOT NULL, "
    "  resumed INTEGER NOT NULL, granted INTEGER NOT NULL CHECK (granted >= 0), "
    "  effective_ms INTEGER);"
    "CREATE INDEX plan_changes_ws ON plan_changes(ws, id);"
    "CREATE TABLE journal_v3_from(ws TEXT PRIMARY KEY, id INTEGER NOT NULL) WITHOUT ROWID;"
    "INSERT INTO journal_v3_from(ws, id) SELECT ws, MAX(id) FROM journal GROUP BY ws;"
    /* ---- end v3: plans ---- */
    /* v3: holds binding / prices. A hold keeps the input binding that is part of its
     * job id's idempotency key, its reserve note and its commit note (the journal's
     * default reasons "reserved" and "charged" can no longer be mistaken for a note);
     * price changes go to an append-only log, since the price table belongs to no
     * workspace's journal. */
    "ALTER TABLE holds ADD COLUMN binding TEXT;"
    "ALTER TABLE holds ADD COLUMN note TEXT;"
    "ALTER TABLE holds ADD COLUMN commit_note TEXT;"
    "CREATE TABLE prices_log(id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, "
    "  actor TEXT NOT NULL, region TEXT NOT NULL, old_currency TEXT, old_unit_minor INTEGER, "
    "  new_currency TEXT NOT NULL, new_unit_minor INTEGER NOT NULL CHECK (new_unit_minor >= 1));"
    "CREATE TRIGGER prices_log_no_update BEFORE UPDATE ON prices_log "
    "  BEGIN SELECT RAISE(ABORT, 'the price log is append-only'); END;"
    "CREATE TRIGGER prices_log_no_delete BEFORE DELETE ON prices_log "
    "  BEGIN SELECT RAISE(ABORT, 'the price log is append-only'); END;",

    /* ---- v4: events, alerts, health ----
     * events: the outbox a webhook sender reads (cm_ledger_events), one row per movement
     * written in the movement's transaction; append-only. alerts: a workspace's
     * low-balance threshold and whether it is armed. journal_v4_from: each workspace's last
     * journal id before v4 (check holds the rows after it to having their events).
     * health: the one row cm_ledger_ping writes. Tables only: quick on any file. */
    "CREATE TABLE events(id INTEGER PRIMARY KEY, tx INTEGER NOT NULL, at_ms INTEGER NOT NULL, "
    "  ws TEXT NOT NULL, op INTEGER NOT NULL, type TEXT NOT NULL, job TEXT, "
    "  data TEXT NOT NULL);"
    "CREATE TRIGGER events_no_update BEFORE UPDATE ON events "
    "  BEGIN SELECT RAISE(ABORT, 'the event outbox is append-only'); END;"
    "CREATE TRIGGER events_no_delete BEFORE DELETE ON events "
    "  BEGIN SELECT RAISE(ABORT, 'the event outbox is append-only'); END;"
    "CREATE TABLE alerts(ws TEXT PRIMARY KEY REFERENCES workspaces(id), "
    "  below INTEGER NOT NULL CHECK (below >= 1), armed INTEGER NOT NULL, "
    "  set_by TEXT NOT NULL, set_ms INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE journal_v4_from(ws TEXT PRIMARY KEY, id INTEGER NOT NULL) WITHOUT ROWID;"
    "INSERT INTO journal_v4_from(ws, id) SELECT ws, MAX(id) FROM journal GROUP BY ws;"
    "CREATE TABLE health(id INTEGER PRIMARY KEY CHECK (id = 1), at_ms INTEGER NOT NULL);",
};

static int map_rc(cm_storage *st, int rc)
{
    if (rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW)
        return CM_ST_OK;
    snprintf(st->err, sizeof st->err, "sqlite: %s", sqlite3_errmsg(st->db));
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return CM_ST_BUSY;
    case SQLITE_CONSTRAINT:
        return CM_ST_CONSTRAINT;
    default:
        return CM_ST_ERROR;
    }
}

static int exec_sql(cm_storage *st, const char *sql)
{
    return map_rc(st, sqlite3_exec(st->db, sql, NULL, NULL, NULL));
}

/* PRAGMA journal_mode=WAL needs a moment of exclusive access to a fresh file; the busy
 * handler does not cover it in every SQLite version, so retry for the busy timeout. */
static int exec_retry(cm_storage *st, const char *sql, int timeout_ms)
{
    int rc;
    for (int waited = 0;; waited += 10) {
        rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
        if ((rc & 0xff) != SQLITE_BUSY || waited >= timeout_ms)
            break;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return map_rc(st, rc);
}

static int read_version(void *ctx, int ncols, char **vals, char **names)
{
    (void)ncols;
    (void)names;
    *(int *)ctx = vals[0] ? atoi(vals[0]) : 0;
    return 0;
}

/* Whether the file holds a ledger (its schema_version table): 1, 0, or -1 with st->err. */
static int has_ledger(cm_storage *st)
{
    int n = 0;
    int rc = map_rc(st, sqlite3_exec(st->db,
                                     "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' "
                                     "AND name = 'schema_version'",
                                     read_version, &n, NULL));
    return rc ? -1 : n > 0;
}

static int migrate(cm_storage *st, int timeout_ms)
{
    int rc = exec_retry(st, "BEGIN IMMEDIATE", timeout_ms);
    if (rc)
        return rc;
    int version = 0;
    rc = exec_sql(st, "CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)");
    if (!rc)
        rc = map_rc(st, sqlite3_exec(st->db, "SELECT MAX(version) FROM schema_version",
                                     read_version, &version, NULL));
    if (!rc && version > CM_LEDGER_SCHEMA_VERSION) {
        snprintf(st->err, sizeof st->err,
                 "the ledger's schema is version %d, newer than this library's %d", version,
                 CM_LEDGER_SCHEMA_VERSION);
        rc = CM_ST_ERROR;
    }
    for (int v = version + 1; !rc && v <= CM_LEDGER_SCHEMA_VERSION; v++) {
        rc = exec_sql(st, migrations[v - 1]);
        if (!rc) {
            char sql[80];
            snprintf(sql, sizeof sql, "INSERT INTO schema_version(version) VALUES(%d)", v);
            rc = exec_sql(st, sql);
        }
    }
    if (rc) {
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    return exec_sql(st, "COMMIT");
}

static void st_close(cm_storage *st)
{
    if (!st)
        return;
    for (int i = 0; i < CM_Q__COUNT; i++)
        sqlite3_finalize(st->stmts[i]);
    for (int i = 0; i < TX__COUNT; i++)
        sqlite3_finalize(st->tx_stmts[i]);
    sqlite3_close(st->db);
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
    /* Without create, a missing file (or directory) is no ledger: SQLite is not asked to
     * create it, and a file without the ledger's schema is left as it is. */
    struct stat sb;
    if (!opt->create && stat(location, &sb) != 0 && (errno == ENOENT || errno == ENOTDIR)) {
        snprintf(err, errlen,
                 "there is no ledger at %s (no such file%s); create one with "
                 "`cm-ledger --ledger %s init`",
                 location, errno == ENOTDIR ? " or directory" : "", location);
        free(st);
        return CM_ST_NO_LEDGER;
    }
    int flags =
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (opt->create ? SQLITE_OPEN_CREATE : 0);
    int rc = sqlite3_open_v2(location, &st->db, flags, NULL);
    if (rc != SQLITE_OK && opt->create && (rc & 0xff) == SQLITE_CANTOPEN &&
        stat(location, &sb) != 0 && errno == ENOENT) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", location);
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir)
            *slash = 0;
        if (slash && stat(dir, &sb) != 0) { /* no directory to create the file in */
            snprintf(err, errlen,
                     "there is no ledger at %s and it cannot be created there: "
                     "no such directory",
                     location);
            st_close(st);
            return CM_ST_NO_LEDGER;
        }
    }
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", location,
                 st->db ? sqlite3_errmsg(st->db) : "out of memory");
        st_close(st);
        return CM_ST_ERROR;
    }
    sqlite3_extended_result_codes(st->db, 1);
    sqlite3_busy_timeout(st->db, opt->busy_timeout_ms);
    if (!opt->create) {
        int has = has_ledger(st);
        if (has <= 0) {
            if (has == 0)
                snprintf(err, errlen,
                         "there is no ledger at %s (the file holds no creditmeter "
                         "schema); create one with `cm-ledger --ledger %s init`",
                         location, location);
            else
                snprintf(err, errlen, "cannot open ledger %s: %s", location, st->err);
            st_close(st);
            return has == 0 ? CM_ST_NO_LEDGER : CM_ST_ERROR;
        }
    }
    rc = exec_retry(st, "PRAGMA journal_mode=WAL", opt->busy_timeout_ms);
    if (!rc)
        rc = exec_sql(st, opt->synchronous == CM_LEDGER_SYNC_NORMAL ? "PRAGMA synchronous=NORMAL"
                                                                    : "PRAGMA synchronous=FULL");
    if (!rc)
        rc = exec_sql(st, "PRAGMA foreign_keys=ON");
    if (!rc)
        rc = migrate(st, opt->busy_timeout_ms);
    if (rc) {
        snprintf(err, errlen, "cannot open ledger %s: %s", location, st->err);
        st_close(st);
        return rc;
    }
    *out = st;
    return CM_ST_OK;
}

static int run_tx_stmt(cm_storage *st, int which)
{
    sqlite3_stmt *s = st->tx_stmts[which];
    if (!s) {
        int rc = sqlite3_prepare_v3(st->db, tx_sql[which], -1, SQLITE_PREPARE_PERSISTENT, &s, NULL);
        if (rc != SQLITE_OK)
            return map_rc(st, rc);
        st->tx_stmts[which] = s;
    }
    int rc = sqlite3_step(s);
    int result = map_rc(st, rc);
    sqlite3_reset(s);
    return result;
}

static int st_begin(cm_storage *st, int write)
{
    return run_tx_stmt(st, write ? TX_BEGIN_WRITE : TX_BEGIN_READ);
}

/* BEGIN IMMEDIATE already made this transaction the only writer of the database. */
static int st_lock(cm_storage *st, int what, const char *key)
{
    (void)st;
    (void)what;
    (void)key;
    return CM_ST_OK;
}

static int st_commit(cm_storage *st)
{
    return run_tx_stmt(st, TX_COMMIT);
}

static int st_rollback(cm_storage *st)
{
    if (sqlite3_get_autocommit(st->db))
        return CM_ST_OK; /* SQLite already rolled back (e.g. after an I/O error) */
    return run_tx_stmt(st, TX_ROLLBACK);
}

static int st_run(cm_storage *st, cm_stmt id, const cm_sv *params, int nparams, cm_row_fn fn,
                  void *ctx)
{
    sqlite3_stmt *s = st->stmts[id];
    if (!s) {
        int rc = sqlite3_prepare_v3(st->db, sql_text[id], -1, SQLITE_PREPARE_PERSISTENT, &s, NULL);
        if (rc != SQLITE_OK)
            return map_rc(st, rc);
        st->stmts[id] = s;
    }
    for (int i = 0; i < nparams; i++) {
        int rc;
        if (params[i].type == CM_SV_INT)
            rc = sqlite3_bind_int64(s, i + 1, params[i].i);
        else if (params[i].type == CM_SV_TEXT && params[i].s)
            rc = sqlite3_bind_text(s, i + 1, params[i].s, -1, SQLITE_STATIC);
        else
            rc = sqlite3_bind_null(s, i + 1);
        if (rc != SQLITE_OK) {
            sqlite3_reset(s);
            sqlite3_clear_bindings(s);
            return map_rc(st, rc);
        }
    }
    int result = CM_ST_OK, rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (!fn)
            continue;
        cm_sv cols[CM_MAX_COLS];
        int n = sqlite3_column_count(s);
        if (n > (int)(sizeof cols / sizeof cols[0]))
            n = (int)(sizeof cols / sizeof cols[0]);
        for (int i = 0; i < n; i++) {
            switch (sqlite3_column_type(s, i)) {
            case SQLITE_NULL:
                cols[i] = (cm_sv){CM_SV_NULL, 0, NULL};
                break;
            case SQLITE_INTEGER:
                cols[i] = (cm_sv){CM_SV_INT, sqlite3_column_int64(s, i), NULL};
                break;
            default:
                cols[i] = (cm_sv){CM_SV_TEXT, 0, (const char *)sqlite3_column_text(s, i)};
                break;
            }
        }
        if (fn(ctx, cols, n)) {
            result = CM_ST_ABORT;
            break;
        }
    }
    if (result == CM_ST_OK && rc != SQLITE_DONE)
        result = map_rc(st, rc);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return result;
}

static const char *st_errmsg(cm_storage *st)
{
    return st->err;
}

const cm_storage_ops cm__storage_sqlite = {
    .name = "sqlite",
    .open = st_open,
    .close = st_close,
    .begin = st_begin,
    .lock = st_lock,
    .commit = st_commit,
    .rollback = st_rollback,
    .run = st_run,
    .errmsg = st_errmsg,
};
