/* SPDX-License-Identifier: MIT */
/*
 * storage_pg.c - the PostgreSQL implementation of storage.h (libpq).
 *
 * All of the ledger's PostgreSQL text lives here: the schema with its migrations and one
 * SQL string per named statement, prepared once per connection (PQprepare) and always
 * run with bound parameters ($1..$n). The location is any libpq connection URI
 * (postgresql://... or postgres://...).
 *
 * Concurrency: a write transaction is READ COMMITTED and takes, before it reads, the
 * advisory lock of each workspace it works on (lock(): CM_LOCK_WS by id, CM_LOCK_JOB by
 * the workspace of a job's hold, in one statement). So calls on one workspace run one at
 * a time, as the rules assume of begin(write) (SQLite gets it from BEGIN IMMEDIATE),
 * and calls on different workspaces never wait for or conflict with each other: there
 * is no SERIALIZABLE predicate locking over shared index pages, and nothing to retry.
 * renew_many, the one call that locks several workspaces, locks them all in one statement
 * in lock-key order (lock_jobs), so two such calls cannot deadlock; sweep is one
 * transaction per workspace. What workspaces share is either locked (a price row) or a
 * unique key (job ids, payment, refund and plan references): the loser of such a race
 * gets SQLSTATE 23505, which run() and commit() return as CM_ST_RETRY, like a deadlock
 * (40P01) or a serialization failure (40001), and the rules layer (cm__tx_run) rolls back
 * and runs the call again; its reads then see the winner's row. Read transactions
 * (check) are REPEATABLE READ READ ONLY: one consistent snapshot, never refused.
 * lock_timeout is the busy timeout, so a lock held too long elsewhere gives CM_ST_BUSY.
 * The database refuses a negative counter by CHECK constraints, and the journal refuses
 * UPDATE, DELETE and TRUNCATE by trigger: it is append-only.
 *
 * Round trips: a transaction runs in libpq pipeline mode (see "transactions in pipeline
 * mode" below): statements whose rows are not read are queued and sent with the next
 * read or with the COMMIT, so BEGIN + lock + clock is one round trip and the writes of a
 * call travel with its COMMIT. The reads a call declares (st_prefetch) go in that first
 * round trip too, and answer the call's later run() of them: a hot call is 2 round trips.
 *
 * Failover: a location may name several hosts (a primary and its standbys) with
 * target_session_attrs=read-write. A lost connection, a server shutting down, or a
 * server that turned read-only fails the transaction in flight with CM_ST_UNAVAILABLE;
 * the next begin() connects again (PQreset: the first host that accepts writes).
 *
 * Ids come from identity columns and the journal's operation numbers from a sequence
 * (taken while the workspace is locked, so they increase within a workspace); a
 * sequence is not a lock: writers to different workspaces never wait on it. Ids are
 * unique and increasing but may have gaps (a rolled-back or retried transaction burns
 * the ids it took).
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
/* Classes (first key) of the two-key advisory locks: "cmws" and "cmpr" in ASCII. */
#define WS_LOCK_CLASS "1668118387"
#define PRICE_LOCK_CLASS "1668116594"
/* The second key of a two-key advisory lock: a hash of the schema and the id, so that
 * ledgers kept in separate schemas of one database (see ledger/README.md) never wait
 * for each other's locks (advisory locks are per database, not per schema). */
#define LOCK_KEY(id) "hashtext(COALESCE(current_schema(), '') || '/' || " id ")"
/* A workspace id with its NUL (CM_ID_MAX of ledger_internal.h is 255 bytes). */
#define CM_ID_BUF 256

/* Statements of this backend's own, after the rules' named statements. */
enum {
    PQ_LOCK_WS = CM_Q__COUNT, /* (ws): the workspace's advisory lock */
    PQ_LOCK_JOB,              /* (job) -> ws: the advisory lock of the job's workspace */
    PQ_LOCK_PRICE,            /* (region): the price row's advisory lock */
    PQ_LOCK_JOBS,             /* (jobs[]) -> ws: the locks of the jobs' workspaces (lock_jobs) */
    PQ_LOCK_WS_OP,            /* (ws) -> op, clock: PQ_LOCK_WS, a journal number, the clock */
    PQ_LOCK_JOB_OP,           /* (job) -> ws|NULL, op, clock: the same by the job */
    PQ__COUNT
};

/* What a queued result is (pipeline mode, see pipe_sync). */
enum { P_PREP, P_TX, P_CMD, P_ROWS, P_JOBLOCK, P_PREFETCH, P_JOBSLOCK, P_LOCKOP };
enum { OP_NONE, OP_PENDING, OP_READY, OP_USED };
enum { JOB_NONE, JOB_PENDING, JOB_LOCKED, JOB_MISSED };
/* Queued statements after which a run of writes is sent without waiting for a read. */
#define PIPE_MAX 4096
#define MAX_PARAMS 12

/* A queued statement whose result is not read yet. */
typedef struct pipe_q {
    unsigned char kind;
    int id;
} pipe_q;

/* A read declared by st_prefetch: sent with the transaction's first round trip, its
 * result kept (PGresult outlives the round trip) until run() asks for it. */
enum { PF_SENT, PF_READY, PF_USED, PF_DEAD };
typedef struct pf_entry {
    int id, nparams, state;
    cm_sv p[MAX_PARAMS]; /* texts point into buf */
    char *buf;
    PGresult *res;
} pf_entry;

struct cm_storage {
    PGconn *conn;
    char *location;                    /* to connect afresh after a failover */
    unsigned char prepared[PQ__COUNT]; /* 0 no, 1 yes, 2 queued */
    int busy_timeout_ms;
    int synchronous;
    int in_tx, write;   /* in a transaction (pipeline mode); a write one */
    int broken;         /* the connection was lost in this transaction */
    int reset;          /* connect again at the next begin */
    int unique_retries; /* unique violations in a row taken for lost races */
    int commit_sent;    /* this transaction's COMMIT was sent */
    int retrying;       /* this transaction ends in a retry for a unique key */
    int lost_retried;   /* a lost connection was retried and no round trip worked since */
    pipe_q *q;          /* sent, result not read yet */
    int nq, qcap;
    pf_entry *pf; /* declared reads of this transaction (st_prefetch) */
    int npf, pfcap;
    int pf_valid;     /* only declared reads were sent since they were declared */
    int64_t clock_ms; /* the clock CM_Q_CLOCK_NOW read in this transaction */
    int clock_known;
    char **locked; /* workspaces lock_jobs locked, sorted (bsearch) */
    size_t nlocked;
    int jobs_lock;  /* 0: no lock_jobs in this transaction, 1: sent, 2: its rows read */
    int lock_clock; /* the first lock reads the clock too: 0 no, 1 sent, 2 read (clock_ms),
                       3 given to run() */
    int job_lock;   /* JOB_*: what CM_LOCK_JOB found */
    int op_state;   /* OP_*: the operation number taken with the first lock */
    long long op_value;
    char op_ws[CM_ID_BUF]; /* the workspace it is for ("" while unknown) */
    char job_ws[CM_ID_BUF];
    char err[512];
    /* What this connection sent, for CM_LEDGER_PG_STATS (see st_close). */
    long long n_stmt, n_rt, n_tx;
    int64_t n_reconnect; /* connections made again after one was lost (cm_ledger_stats) */
};

/* A clock parameter: a value bound, or NULL for the transaction's clock, which
 * CM_Q_CLOCK_NOW (or the first lock) keeps in the transaction-local setting cm.clock (for
 * a read declared before that clock came back, see st_prefetch). After a transaction
 * that set it the setting reads '' in the session, and PostgreSQL may evaluate it even
 * when P is given: hence NULLIF. */
#define PG_CLOCK(P) "COALESCE(" P "::bigint, NULLIF(current_setting('cm.clock', true), '')::bigint)"
/* Ledger time in workspace WS: the clock $2, or its last journal row's time if later. */
#define PG_NOW(WS)                                                                                 \
    "GREATEST(" PG_CLOCK("$2") ", COALESCE((SELECT at_ms FROM journal WHERE ws = " WS              \
                               " ORDER BY id DESC LIMIT 1), " PG_CLOCK("$2") "))"
/* The server's clock, Unix ms, kept in cm.clock for the rest of the transaction. */
#define PG_CLOCK_SET                                                                               \
    "set_config('cm.clock', (extract(epoch FROM clock_timestamp()) * 1000)::bigint::text, "        \
    "true)::bigint"
/* What CM_Q_TOUCH_STATE and CM_Q_TOUCH_STATE_JOB read of workspace WS, at c.now. */
#define PG_TOUCH(WS, FROM)                                                                         \
    "SELECT CASE WHEN EXISTS(SELECT 1 FROM holds WHERE ws = " WS " AND state = 1 "                 \
    "AND lease_until_ms <= c.now) THEN 1::bigint ELSE 0::bigint END, "                             \
    "CASE WHEN EXISTS(SELECT 1 FROM grants WHERE ws = " WS " AND remaining > 0 "                   \
    "AND expires_ms IS NOT NULL AND expires_ms <= c.now) THEN 1::bigint ELSE 0::bigint END, "      \
    "p.credits, p.interval, p.start_ms, p.next_period, p.cancelled_ms, c.now, "                    \
    "CASE WHEN EXISTS(SELECT 1 FROM alerts WHERE ws = " WS ") THEN 1::bigint ELSE 0::bigint END "  \
    "FROM " FROM " LEFT JOIN plans p ON p.ws = " WS

static void tx_clear(cm_storage *st);

static const char *const sql_text[PQ__COUNT] = {
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
    [CM_Q_TOUCH_STATE] = "WITH c(now) AS (SELECT " PG_NOW("$1") ") " PG_TOUCH("$1", "c"),
    /* The same of the job's workspace (w: no row without the hold). */
    [CM_Q_TOUCH_STATE_JOB] =
        "WITH w(wsid) AS (SELECT ws FROM holds WHERE job = $1), "
        "c(now) AS (SELECT " PG_NOW("w.wsid") " FROM w) " PG_TOUCH("w.wsid", "w CROSS JOIN c"),
    [CM_Q_GRANT_INSERT] =
        "INSERT INTO grants(ws, kind, granted, remaining, held, charged, expired, "
        "refunded_into, created_ms, expires_ms, period, ref, unit_minor, total_minor, currency) "
        "VALUES($1, $2, $3, $3, 0, 0, 0, 0, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
    [CM_Q_GRANT_GET] = "SELECT " GRANT_COLS " FROM grants WHERE id = $1",
    [CM_Q_GRANT_SPENDABLE] =
        "SELECT " GRANT_COLS " FROM grants WHERE ws = $1 AND remaining > 0 "
        "AND (expires_ms IS NULL OR expires_ms > " PG_CLOCK("$2") ")" SPENDING_ORDER,
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
    [CM_Q_CLOCK_NOW] = "SELECT " PG_CLOCK_SET,
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
    /* Per-workspace (and per-price-row) locks: transaction-scoped advisory locks keyed
     * by a hash of the id in their own class (the two-key form: it never meets the
     * migration's one-key lock). They exist whether or not the workspace does (create),
     * take no row, write nothing, and end with the transaction. Two ids with one hash
     * share a lock: they wait for each other, nothing worse. */
    [PQ_LOCK_WS] = "SELECT pg_advisory_xact_lock(" WS_LOCK_CLASS ", " LOCK_KEY("$1") ")",
    [PQ_LOCK_JOB] = "SELECT h.ws FROM holds h, LATERAL (SELECT pg_advisory_xact_lock(" WS_LOCK_CLASS
                    ", " LOCK_KEY("h.ws") ")) l WHERE h.job = $1",
    [PQ_LOCK_PRICE] = "SELECT pg_advisory_xact_lock(" PRICE_LOCK_CLASS ", " LOCK_KEY("$1") ")",
    /* The workspaces of the holds of jobs $1 (a text array), each locked once, in the
     * order of their lock keys: the one order of every call that locks several (the
     * subquery's order is kept: OFFSET 0 keeps it a subquery, scanned in order). */
    /* A call's first lock, its operation number and the clock in one statement: the
     * subquery (kept one by OFFSET 0) takes the lock before the outer row is made, so the
     * number and the clock are taken once the lock is held (see st_lock, st_run). */
    [PQ_LOCK_WS_OP] = "SELECT nextval('journal_op'), " PG_CLOCK_SET " FROM (SELECT "
                      "pg_advisory_xact_lock(" WS_LOCK_CLASS ", " LOCK_KEY("$1") ") OFFSET 0) l",
    /* One row whether or not the job has a hold (ws NULL: none, nothing locked). */
    [PQ_LOCK_JOB_OP] = "SELECT h.ws, nextval('journal_op'), " PG_CLOCK_SET " FROM (SELECT 1) o "
                       "LEFT JOIN LATERAL (SELECT h.ws FROM holds h, LATERAL (SELECT "
                       "pg_advisory_xact_lock(" WS_LOCK_CLASS
                       ", " LOCK_KEY("h.ws") ")) l "
                                             "WHERE h.job = $1 OFFSET 0) h ON true",
    [PQ_LOCK_JOBS] = "SELECT s.ws FROM (SELECT DISTINCT ws, " LOCK_KEY(
        "ws") " AS k FROM holds "
              "WHERE job = ANY($1::text[]) ORDER BY k, ws OFFSET 0) s, "
              "LATERAL (SELECT pg_advisory_xact_lock(" WS_LOCK_CLASS ", s.k)) l",
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

/* The server cannot take this transaction (connection lost, shut down, failed over,
 * read-only): drop the connection at the next begin and connect again. */
static int is_unavailable(const char *state)
{
    return !strncmp(state, "08", 2) || /* connection exception */
           !strcmp(state, "57P01") ||  /* admin shutdown (fast stop, failover) */
           !strcmp(state, "57P02") ||  /* crash shutdown */
           !strcmp(state, "57P03") ||  /* cannot connect now (starting, recovering) */
           !strcmp(state, "25006") ||  /* read-only transaction: a standby, not a primary */
           !strcmp(state, "53300");    /* too many connections */
}

/* The connection is gone, or its server cannot take this transaction. Before the COMMIT
 * was sent nothing of the transaction can have taken effect: the call runs again
 * (CM_ST_RETRY) on a new connection, once; a drop the connection met while it sat idle
 * (a server restart, an idle timeout) then costs the caller nothing. Should that fail
 * too, or the COMMIT itself be in flight (it may or may not have taken effect), the call
 * fails with CM_ST_UNAVAILABLE and its caller retries it as it is. */
static int lost(cm_storage *st)
{
    st->reset = 1;
    if (st->in_tx && !st->commit_sent && !st->lost_retried) {
        st->lost_retried = 1;
        return CM_ST_RETRY;
    }
    return CM_ST_UNAVAILABLE;
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
        return PQstatus(st->conn) == CONNECTION_OK ? CM_ST_ERROR : lost(st);
    if (is_unavailable(state)) {
        st->reset = 1;
        return lost(st);
    }
    if (!strcmp(state, "40001") || !strcmp(state, "40P01"))
        return CM_ST_RETRY; /* serialization failure, deadlock: run the call again */
    /* A unique key (job id, payment, refund or plan reference) that a transaction on
     * another workspace took first: the call runs again and its reads see that row. A
     * second one in a row would be no race but a bug: reported as it is. */
    if (!strcmp(state, "23505") && st->in_tx && st->write && st->unique_retries < 2) {
        st->unique_retries++;
        st->retrying = 1;
        return CM_ST_RETRY;
    }
    if (!strcmp(state, "55P03") || !strcmp(state, "57014"))
        return CM_ST_BUSY; /* lock_timeout, statement_timeout */
    if (!strncmp(state, "23", 2))
        return CM_ST_CONSTRAINT; /* integrity constraint violation */
    return CM_ST_ERROR;
}

static int exec_sql(cm_storage *st, const char *sql)
{
    PGresult *res = PQexec(st->conn, sql);
    st->n_stmt++;
    st->n_rt++;
    int rc = map_result(st, res);
    PQclear(res);
    return rc;
}

static int exec_params(cm_storage *st, const char *sql, int n, const char *const *vals,
                       int64_t *out)
{
    PGresult *res = PQexecParams(st->conn, sql, n, NULL, vals, NULL, NULL, 0);
    st->n_stmt++;
    st->n_rt++;
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
    if (getenv("CM_LEDGER_PG_STATS"))
        fprintf(stderr, "postgresql: %lld transactions, %lld statements, %lld round trips\n",
                st->n_tx, st->n_stmt, st->n_rt);
    tx_clear(st);
    PQfinish(st->conn);
    free(st->location);
    free(st->q);
    free(st->pf);
    free(st);
}

static int st_open(cm_storage **out, const char *location, const cm_storage_options *opt, char *err,
                   size_t errlen)
{
    *out = NULL;
    cm_storage *st = calloc(1, sizeof *st);
    if (!st || !(st->location = strdup(location))) {
        free(st);
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
        int rc = st->conn ? CM_ST_UNAVAILABLE : CM_ST_ERROR;
        st_close(st);
        return rc;
    }
    int rc = session_setup(st);
    if (!rc)
        rc = migrate(st, opt->create);
    if (rc == CM_ST_NO_LEDGER) {
        snprintf(err, errlen,
                 "there is no ledger in PostgreSQL database '%s' (no creditmeter schema); create "
                 "one with `cm-ledger --ledger URI init`",
                 PQdb(st->conn));
        st_close(st);
        return rc;
    }
    if (rc) {
        snprintf(err, errlen, "cannot open ledger on PostgreSQL (database '%s'): %s",
                 PQdb(st->conn), st->err);
        if (PQstatus(st->conn) != CONNECTION_OK)
            rc = CM_ST_UNAVAILABLE;
        st_close(st);
        return rc == CM_ST_RETRY ? CM_ST_BUSY : rc;
    }
    *out = st;
    return CM_ST_OK;
}

/* A connection the server dropped (restart, failover, idle timeout), or that answered
 * that it cannot take writes, is re-established at the start of the next transaction:
 * PQreset tries the location's hosts again in order (with target_session_attrs=read-write,
 * until one is a primary). A connection lost inside a transaction fails that
 * transaction with CM_ST_UNAVAILABLE. */
static int reconnect_if_lost(cm_storage *st)
{
    if (PQstatus(st->conn) == CONNECTION_OK && !st->reset)
        return CM_ST_OK;
    PQreset(st->conn);
    if (PQstatus(st->conn) == CONNECTION_OK && PQpipelineStatus(st->conn) != PQ_PIPELINE_OFF) {
        PQfinish(st->conn); /* a reset that kept the lost pipeline: start afresh */
        st->conn = PQconnectdb(st->location);
    }
    if (!st->conn || PQstatus(st->conn) != CONNECTION_OK) {
        set_err(st, "the connection to the server was lost and cannot be made again",
                st->conn ? PQerrorMessage(st->conn) : "out of memory");
        return CM_ST_UNAVAILABLE;
    }
    st->reset = 0;
    st->n_reconnect++;
    int rc = session_setup(st);
    if (rc && PQstatus(st->conn) != CONNECTION_OK)
        rc = CM_ST_UNAVAILABLE;
    return rc;
}

static int64_t st_reconnects(cm_storage *st)
{
    return st->n_reconnect;
}

/* ---- transactions in pipeline mode ----
 *
 * A transaction runs in libpq's pipeline mode: BEGIN, the locks and every statement whose
 * rows the rules do not read (the UPDATEs and INSERTs) are queued, not waited for; a
 * statement whose rows are wanted, or the COMMIT, sends the queue with a sync point and
 * reads every result in order. So BEGIN, the workspace lock and the clock cost one round
 * trip, and a call's writes travel with its COMMIT. A queued statement that fails makes
 * the server skip the rest up to the sync point; the failure is reported by that run() or
 * commit(), and the transaction is rolled back: nothing of it remains. */

static int pipe_broken(cm_storage *st)
{
    if (!st->err[0] || !strstr(st->err, "connection"))
        set_err(st, "the connection to the server was lost", PQerrorMessage(st->conn));
    st->broken = 1;
    st->reset = 1;
    return lost(st);
}

/* The connection broke while results were read: the first failure (rc) is the answer,
 * if there was one (a server shutting down says so before it closes). */
static int broken_after(cm_storage *st, int rc)
{
    int b = pipe_broken(st);
    return rc ? rc : b;
}

/* Remember what was sent, to read its result in order. */
static int pipe_push(cm_storage *st, int kind, int id, int sent)
{
    if (!sent)
        return pipe_broken(st);
    if (st->nq == st->qcap) {
        int cap = st->qcap ? st->qcap * 2 : 64;
        void *p = realloc(st->q, (size_t)cap * sizeof *st->q);
        if (!p) { /* the statement is sent and its result unread: the connection is lost */
            set_err(st, "out of memory queueing a statement", NULL);
            st->broken = 1;
            st->reset = 1;
            return CM_ST_ERROR;
        }
        st->q = p;
        st->qcap = cap;
    }
    st->q[st->nq].kind = (unsigned char)kind;
    st->q[st->nq].id = id;
    st->nq++;
    st->n_stmt += kind != P_PREP;
    return CM_ST_OK;
}

/* What a transaction declared, read and locked: gone with it. */
static void tx_clear(cm_storage *st)
{
    for (int i = 0; i < st->npf; i++) {
        PQclear(st->pf[i].res);
        free(st->pf[i].buf);
    }
    st->npf = 0;
    st->pf_valid = 0;
    st->clock_known = 0;
    st->lock_clock = 0;
    for (size_t i = 0; i < st->nlocked; i++)
        free(st->locked[i]);
    free(st->locked);
    st->locked = NULL;
    st->nlocked = 0;
    st->jobs_lock = 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The workspaces lock_jobs locked (one per row), kept sorted. Non-zero: out of memory. */
static int jobs_locked(cm_storage *st, const PGresult *res)
{
    int n = PQntuples(res);
    st->jobs_lock = 2;
    st->locked = n ? calloc((size_t)n, sizeof *st->locked) : NULL;
    if (n && !st->locked) {
        set_err(st, "out of memory locking workspaces", NULL);
        return 1;
    }
    for (int r = 0; r < n; r++) {
        size_t len = strlen(PQgetvalue(res, r, 0)) + 1;
        if (!(st->locked[r] = malloc(len))) {
            st->nlocked = (size_t)r;
            set_err(st, "out of memory locking workspaces", NULL);
            return 1;
        }
        memcpy(st->locked[r], PQgetvalue(res, r, 0), len);
    }
    st->nlocked = (size_t)n;
    qsort(st->locked, st->nlocked, sizeof *st->locked, cmp_str);
    return 0;
}

/* The operation number and the clock a first lock read (columns col, col + 1). */
static void lock_op_read(cm_storage *st, const PGresult *res, int col)
{
    st->lock_clock = 0; /* read by its own statement, unless this row has it */
    if (PQntuples(res) != 1 || PQgetisnull(res, 0, col) || PQgetisnull(res, 0, col + 1))
        return;
    st->op_value = strtoll(PQgetvalue(res, 0, col), NULL, 10);
    st->op_state = OP_READY;
    st->clock_ms = strtoll(PQgetvalue(res, 0, col + 1), NULL, 10);
    st->lock_clock = 2;
}

/* Send the queue with a sync point and read every result. The rows of the last queued
 * statement, if it is a P_ROWS, are handed back in *rows (the caller clears them). */
static int pipe_sync(cm_storage *st, PGresult **rows)
{
    if (rows)
        *rows = NULL;
    if (st->broken)
        return CM_ST_UNAVAILABLE;
    if (!PQpipelineSync(st->conn))
        return pipe_broken(st);
    st->n_rt++;
    int rc = CM_ST_OK;
    for (int i = 0; i < st->nq; i++) {
        PGresult *res = PQgetResult(st->conn);
        if (!res) {
            st->nq = 0;
            return broken_after(st, rc);
        }
        ExecStatusType s = PQresultStatus(res);
        int ok = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
        if (!ok && s != PGRES_PIPELINE_ABORTED && !rc) {
            rc = map_result(st, res);
            if (!rc)
                rc = CM_ST_ERROR;
        }
        switch (st->q[i].kind) {
        case P_PREP:
            st->prepared[st->q[i].id] = ok ? 1 : 0;
            break;
        case P_JOBLOCK:
            if (ok) {
                int found = PQntuples(res) && !PQgetisnull(res, 0, 0);
                st->job_lock = found ? JOB_LOCKED : JOB_MISSED;
                if (found) {
                    snprintf(st->job_ws, sizeof st->job_ws, "%s", PQgetvalue(res, 0, 0));
                    snprintf(st->op_ws, sizeof st->op_ws, "%s", st->job_ws);
                }
                if (PQnfields(res) == 3) /* PQ_LOCK_JOB_OP */
                    lock_op_read(st, res, 1);
            }
            if (!ok && st->lock_clock == 1)
                st->lock_clock = 0;
            break;
        case P_LOCKOP:
            st->lock_clock = 0;
            if (ok)
                lock_op_read(st, res, 0);
            break;
        case P_ROWS:
            if (ok && rows && i == st->nq - 1) {
                *rows = res;
                res = NULL;
            }
            break;
        case P_PREFETCH: /* kept for the run() that asks for it */
            if (ok && st->pf[st->q[i].id].state == PF_SENT) {
                st->pf[st->q[i].id].res = res;
                st->pf[st->q[i].id].state = PF_READY;
                res = NULL;
            } else {
                st->pf[st->q[i].id].state = PF_DEAD;
            }
            break;
        case P_JOBSLOCK:
            if (ok && jobs_locked(st, res) && !rc)
                rc = CM_ST_ERROR;
            break;
        }
        PQclear(res);
        /* Each statement's result ends with a NULL. */
        while ((res = PQgetResult(st->conn)) != NULL) {
            if (PQresultStatus(res) == PGRES_FATAL_ERROR && !rc)
                rc = map_result(st, res);
            PQclear(res);
            if (PQstatus(st->conn) != CONNECTION_OK)
                break;
        }
        if (PQstatus(st->conn) != CONNECTION_OK) {
            st->nq = 0;
            if (rows && *rows) {
                PQclear(*rows);
                *rows = NULL;
            }
            return broken_after(st, rc);
        }
    }
    st->nq = 0;
    PGresult *res = PQgetResult(st->conn);
    int synced = res && PQresultStatus(res) == PGRES_PIPELINE_SYNC;
    PQclear(res);
    if (!synced) {
        if (rows && *rows) {
            PQclear(*rows);
            *rows = NULL;
        }
        return broken_after(st, rc);
    }
    if (!rc)
        st->lost_retried = 0; /* a round trip worked */
    if (rc && rows && *rows) {
        PQclear(*rows);
        *rows = NULL;
    }
    return rc;
}

/* Queue a statement of the transaction itself (BEGIN, COMMIT, ROLLBACK). */
static int pipe_tx(cm_storage *st, const char *sql)
{
    return pipe_push(st, P_TX, 0, PQsendQueryParams(st->conn, sql, 0, NULL, NULL, NULL, NULL, 0));
}

/* Leave pipeline mode once everything was read. */
static void pipe_end(cm_storage *st)
{
    if (!st->broken && PQpipelineStatus(st->conn) != PQ_PIPELINE_OFF &&
        !PQexitPipelineMode(st->conn))
        st->reset = 1; /* cannot happen with nothing pending; start afresh if it does */
    st->in_tx = 0;
    tx_clear(st);
}

/* Queue named statement id (preparing it first on this connection). */
static int pipe_stmt(cm_storage *st, int id, int kind, const cm_sv *params, int nparams)
{
    char name[16];
    snprintf(name, sizeof name, "cm_q%d", id);
    if (nparams > MAX_PARAMS) {
        snprintf(st->err, sizeof st->err, "postgresql: too many parameters (%d)", nparams);
        return CM_ST_ERROR;
    }
    if (kind != P_PREFETCH)
        st->pf_valid = 0;        /* a statement other than a declared read: see st_prefetch */
    if (st->nq + 2 > PIPE_MAX) { /* a long run of writes: send what is queued */
        int rc = pipe_sync(st, NULL);
        if (rc)
            return rc;
    }
    if (!st->prepared[id]) {
        int rc = pipe_push(st, P_PREP, id, PQsendPrepare(st->conn, name, sql_text[id], 0, NULL));
        if (rc)
            return rc;
        st->prepared[id] = 2; /* queued; pipe_sync says 1 or 0 */
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
    return pipe_push(st, kind, id,
                     PQsendQueryPrepared(st->conn, name, nparams, vals, NULL, NULL, 0));
}

static int st_begin(cm_storage *st, int write)
{
    if (st->in_tx) { /* the rules always end a transaction; be safe if they did not */
        snprintf(st->err, sizeof st->err, "postgresql: a transaction is already open");
        return CM_ST_ERROR;
    }
    st->broken = 0;
    int rc = reconnect_if_lost(st);
    if (rc)
        return rc;
    if (!PQenterPipelineMode(st->conn)) {
        set_err(st, "cannot enter pipeline mode", PQerrorMessage(st->conn));
        st->reset = 1;
        return CM_ST_UNAVAILABLE;
    }
    st->in_tx = 1;
    st->write = write;
    st->nq = 0;
    st->job_lock = JOB_NONE;
    st->op_state = OP_NONE;
    st->op_ws[0] = 0;
    st->commit_sent = 0;
    st->retrying = 0;
    tx_clear(st);
    st->n_tx++;
    /* Writes: READ COMMITTED, each statement sees what committed before it, and the
     * workspace locks (lock()) make calls on one workspace run one at a time. Reads
     * (check): one snapshot of everything, never refused. */
    rc = pipe_tx(st, write ? "BEGIN ISOLATION LEVEL READ COMMITTED"
                           : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    if (rc)
        pipe_end(st);
    return rc;
}

/* With the transaction's first workspace lock (PQ_LOCK_WS_OP, PQ_LOCK_JOB_OP) go, in the
 * same statement, a journal operation number for that workspace and the server's clock:
 * taken once the lock is held, the number is greater than every number the workspace's
 * earlier calls took, as CM_Q_JOURNAL_NEXT_OP requires, and the clock is the moment the
 * call runs; the call's first journal row and its clock then cost no statement of their
 * own (st_run). A call that writes no journal row leaves a gap in the sequence, which ids
 * and numbers may have. */
static int st_lock(cm_storage *st, int what, const char *key)
{
    if (!st->in_tx || !st->write)
        return CM_ST_OK;
    int rc;
    switch (what) {
    case CM_LOCK_WS:
        if (st->job_lock == JOB_LOCKED && strcmp(st->job_ws, key) == 0)
            return CM_ST_OK; /* the job's lock was this workspace's */
        if (st->jobs_lock) {
            if (st->jobs_lock == 1 && (rc = pipe_sync(st, NULL)) != CM_ST_OK)
                return rc;
            if (bsearch(&key, st->locked, st->nlocked, sizeof *st->locked, cmp_str))
                return CM_ST_OK; /* lock_jobs locked it */
            /* A hold of one of the jobs made after lock_jobs ran (a concurrent reserve):
             * its workspace was read unlocked. Run the call again. */
            snprintf(st->err, sizeof st->err,
                     "postgresql: a job's hold was made by a concurrent call; running again");
            return CM_ST_RETRY;
        }
        if (st->job_lock == JOB_MISSED) {
            /* The job's hold appeared after CM_LOCK_JOB looked: what was read of it was
             * read unlocked. Run the call again (it will find the hold and lock first). */
            snprintf(st->err, sizeof st->err,
                     "postgresql: the job's hold was made by a concurrent call; running again");
            return CM_ST_RETRY;
        }
        if (st->op_state == OP_NONE) { /* the first lock: with the number and the clock */
            snprintf(st->op_ws, sizeof st->op_ws, "%s", key);
            st->op_state = OP_PENDING;
            st->lock_clock = 1;
            return pipe_stmt(st, PQ_LOCK_WS_OP, P_LOCKOP, (const cm_sv[]){{CM_SV_TEXT, 0, key}}, 1);
        }
        return pipe_stmt(st, PQ_LOCK_WS, P_CMD, (const cm_sv[]){{CM_SV_TEXT, 0, key}}, 1);
    case CM_LOCK_JOB:
        st->job_lock = JOB_PENDING;
        if (st->op_state == OP_NONE) { /* its workspace: when the lock's row comes */
            st->op_ws[0] = 0;
            st->op_state = OP_PENDING;
            st->lock_clock = 1;
            return pipe_stmt(st, PQ_LOCK_JOB_OP, P_JOBLOCK, (const cm_sv[]){{CM_SV_TEXT, 0, key}},
                             1);
        }
        return pipe_stmt(st, PQ_LOCK_JOB, P_JOBLOCK, (const cm_sv[]){{CM_SV_TEXT, 0, key}}, 1);
    case CM_LOCK_PRICE:
        return pipe_stmt(st, PQ_LOCK_PRICE, P_CMD, (const cm_sv[]){{CM_SV_TEXT, 0, key}}, 1);
    }
    snprintf(st->err, sizeof st->err, "postgresql: unknown lock %d", what);
    return CM_ST_ERROR;
}

static int st_rollback(cm_storage *st)
{
    if (!st->retrying)
        st->unique_retries = 0; /* the call ends here: the next one starts afresh */
    if (!st->in_tx)
        return CM_ST_OK;
    int rc = CM_ST_OK;
    if (!st->broken) {
        /* Whatever is queued goes with the ROLLBACK; its results do not matter. */
        char keep[sizeof st->err];
        memcpy(keep, st->err, sizeof keep);
        rc = pipe_tx(st, "ROLLBACK");
        if (!rc)
            rc = pipe_sync(st, NULL);
        memcpy(st->err, keep, sizeof keep); /* the message of what failed first */
    }
    pipe_end(st);
    return rc;
}

static int st_commit(cm_storage *st)
{
    if (!st->in_tx) {
        snprintf(st->err, sizeof st->err, "postgresql: COMMIT without a transaction");
        return CM_ST_ERROR;
    }
    st->commit_sent = 1;
    int rc = pipe_tx(st, "COMMIT");
    if (!rc)
        rc = pipe_sync(st, NULL);
    /* COMMIT of a transaction that had an error would silently roll back: refuse. */
    if (!rc && PQtransactionStatus(st->conn) != PQTRANS_IDLE) {
        snprintf(st->err, sizeof st->err,
                 "postgresql: a statement of the transaction failed; it was rolled back");
        rc = CM_ST_ERROR;
    }
    if (rc) /* st_rollback (the rules call it next) ends the transaction */
        return rc;
    st->unique_retries = 0;
    pipe_end(st);
    return CM_ST_OK;
}

/* Hand the rows of res to fn. */
static int serve_rows(const PGresult *res, cm_row_fn fn, void *ctx)
{
    int nrows = PQntuples(res), n = PQnfields(res);
    cm_sv cols[CM_MAX_COLS];
    if (n > (int)(sizeof cols / sizeof cols[0]))
        n = (int)(sizeof cols / sizeof cols[0]);
    for (int r = 0; r < nrows; r++) {
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
        if (fn(ctx, cols, n))
            return CM_ST_ABORT;
    }
    return CM_ST_OK;
}

/* A declared parameter against the one run() was given. */
static int param_same(const cm_storage *st, const cm_sv *decl, const cm_sv *p)
{
    if (decl->type == CM_SV_CLOCK)
        return p->type == CM_SV_INT && st->clock_known && p->i == st->clock_ms;
    int dt = decl->type == CM_SV_TEXT && !decl->s ? CM_SV_NULL : decl->type;
    int pt = p->type == CM_SV_TEXT && !p->s ? CM_SV_NULL : p->type;
    if (dt != pt)
        return 0;
    return dt == CM_SV_NULL || (dt == CM_SV_INT && decl->i == p->i) ||
           (dt == CM_SV_TEXT && strcmp(decl->s, p->s) == 0);
}

/* The declared read that answers run(id, params), or NULL. While only declared reads
 * were sent (pf_valid), every one of them read what the transaction's locks guard with
 * nothing of this transaction written yet, so each answers its run() whatever the order
 * they are asked in; the first other statement sets pf_valid to 0 (pipe_stmt). */
static pf_entry *pf_find(cm_storage *st, cm_stmt id, const cm_sv *params, int nparams)
{
    if (!st->pf_valid)
        return NULL;
    for (int i = 0; i < st->npf; i++) {
        pf_entry *e = &st->pf[i];
        if (e->id != (int)id || e->nparams != nparams ||
            (e->state != PF_SENT && e->state != PF_READY))
            continue;
        int k = 0;
        while (k < nparams && param_same(st, &e->p[k], &params[k]))
            k++;
        if (k == nparams)
            return e;
    }
    return NULL;
}

static int st_prefetch(cm_storage *st, cm_stmt id, const cm_sv *params, int nparams)
{
    if (!st->in_tx || nparams > MAX_PARAMS)
        return CM_ST_OK; /* nothing declared: run() goes to the server */
    if (id == CM_Q_CLOCK_NOW && st->lock_clock)
        return CM_ST_OK; /* the first lock reads it (st_run) */
    if (!st->pf_valid) { /* a new run of declared reads, after everything sent so far */
        for (int i = 0; i < st->npf; i++)
            if (st->pf[i].state == PF_SENT || st->pf[i].state == PF_READY)
                st->pf[i].state = PF_DEAD;
    }
    if (st->npf == st->pfcap) {
        int cap = st->pfcap ? st->pfcap * 2 : 16;
        void *p = realloc(st->pf, (size_t)cap * sizeof *st->pf);
        if (!p)
            return CM_ST_OK; /* undeclared: answered by the server */
        st->pf = p;
        st->pfcap = cap;
    }
    pf_entry *e = &st->pf[st->npf];
    memset(e, 0, sizeof *e);
    size_t len = 0;
    for (int i = 0; i < nparams; i++)
        if (params[i].type == CM_SV_TEXT && params[i].s)
            len += strlen(params[i].s) + 1;
    if (len && !(e->buf = malloc(len)))
        return CM_ST_OK;
    char *b = e->buf;
    for (int i = 0; i < nparams; i++) {
        e->p[i] = params[i];
        if (params[i].type == CM_SV_TEXT && params[i].s) {
            size_t k = strlen(params[i].s) + 1;
            memcpy(b, params[i].s, k);
            e->p[i].s = b;
            b += k;
        }
    }
    e->id = (int)id;
    e->nparams = nparams;
    e->state = PF_SENT;
    st->npf++;
    /* The clock not read yet is bound as NULL: the statement reads cm.clock (PG_CLOCK). */
    cm_sv bound[MAX_PARAMS];
    for (int i = 0; i < nparams; i++)
        bound[i] = e->p[i].type == CM_SV_CLOCK ? (cm_sv){CM_SV_NULL, 0, NULL} : e->p[i];
    int rc = pipe_stmt(st, (int)id, P_PREFETCH, bound, nparams);
    if (rc) {
        e->state = PF_DEAD;
        return rc;
    }
    /* pipe_stmt's own sync of a long queue may have answered it already: still valid */
    st->pf_valid = 1;
    /* pipe_push recorded the index of the queue entry's id as the statement id: fix it */
    st->q[st->nq - 1].id = st->npf - 1;
    return CM_ST_OK;
}

static int st_lock_jobs(cm_storage *st, const char *const *jobs, size_t n)
{
    if (!st->in_tx || !st->write || !n)
        return CM_ST_OK;
    /* A text array literal: {"a","b"}, with " and \ escaped (ids have no control
     * characters). */
    size_t len = 3;
    for (size_t i = 0; i < n; i++)
        len += 2 * strlen(jobs[i]) + 3;
    char *arr = malloc(len), *p = arr;
    if (!arr) {
        snprintf(st->err, sizeof st->err, "postgresql: out of memory locking workspaces");
        return CM_ST_ERROR;
    }
    *p++ = '{';
    for (size_t i = 0; i < n; i++) {
        if (i)
            *p++ = ',';
        *p++ = '"';
        for (const char *c = jobs[i]; *c; c++) {
            if (*c == '"' || *c == '\\')
                *p++ = '\\';
            *p++ = *c;
        }
        *p++ = '"';
    }
    *p++ = '}';
    *p = 0;
    st->jobs_lock = 1;
    int rc = pipe_stmt(st, PQ_LOCK_JOBS, P_JOBSLOCK, (const cm_sv[]){{CM_SV_TEXT, 0, arr}}, 1);
    free(arr);
    return rc;
}

static void st_counts(cm_storage *st, int64_t *statements, int64_t *round_trips)
{
    *statements = st->n_stmt;
    *round_trips = st->n_rt;
}

static int st_run(cm_storage *st, cm_stmt id, const cm_sv *params, int nparams, cm_row_fn fn,
                  void *ctx)
{
    if (!st->in_tx) {
        snprintf(st->err, sizeof st->err, "postgresql: a statement outside a transaction");
        return CM_ST_ERROR;
    }
    /* The operation number taken with the workspace's first lock (st_lock), once. */
    if (id == CM_Q_JOURNAL_NEXT_OP && fn && st->op_state == OP_READY && nparams == 1 &&
        params[0].type == CM_SV_TEXT && params[0].s && st->op_ws[0] &&
        strcmp(params[0].s, st->op_ws) == 0) {
        st->op_state = OP_USED;
        cm_sv v = {CM_SV_INT, st->op_value, NULL};
        return fn(ctx, &v, 1) ? CM_ST_ABORT : CM_ST_OK;
    }
    int rc;
    /* The clock read by the call's first lock, once. */
    if (id == CM_Q_CLOCK_NOW && fn && st->lock_clock == 1 && (rc = pipe_sync(st, NULL)) != 0)
        return rc;
    if (id == CM_Q_CLOCK_NOW && fn && st->lock_clock == 2) {
        st->lock_clock = 3;
        st->clock_known = 1;
        cm_sv v = {CM_SV_INT, st->clock_ms, NULL};
        return fn(ctx, &v, 1) ? CM_ST_ABORT : CM_ST_OK;
    }
    PGresult *res = NULL;
    pf_entry *e = fn ? pf_find(st, id, params, nparams) : NULL;
    if (e) { /* declared: read with the others, in one round trip */
        if (e->state == PF_SENT && (rc = pipe_sync(st, NULL)) != CM_ST_OK)
            return rc;
        if (e->state == PF_READY) {
            res = e->res;
            e->res = NULL;
        }
        e->state = PF_USED;
    }
    if (!res) {
        /* No row callback: nothing to wait for; the statement goes with the next sync. */
        rc = pipe_stmt(st, (int)id, fn ? P_ROWS : P_CMD, params, nparams);
        if (rc || !fn)
            return rc;
        rc = pipe_sync(st, &res);
        if (rc)
            return rc;
        if (!res) {
            snprintf(st->err, sizeof st->err, "postgresql: a statement returned no result");
            return CM_ST_ERROR;
        }
    }
    if (id == CM_Q_CLOCK_NOW && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
        st->clock_ms = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        st->clock_known = 1;
    }
    rc = serve_rows(res, fn, ctx);
    PQclear(res);
    return rc;
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
    .lock = st_lock,
    .commit = st_commit,
    .rollback = st_rollback,
    .run = st_run,
    .errmsg = st_errmsg,
    .reconnects = st_reconnects,
    .prefetch = st_prefetch,
    .lock_jobs = st_lock_jobs,
    .counts = st_counts,
};
