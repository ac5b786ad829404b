/* SPDX-License-Identifier: MIT */
/*
 * creditmeter_plugin.h - the in-process ABI a video pipeline loads to meter its jobs.
 *
 * This header is the whole contract between a pipeline (the host) and creditmeter's
 * plugin (libcreditmeter_plugin.so). The plugin measures each input with the probe,
 * prices it (one credit per started minute), holds the credits in the ledger while the
 * pipeline works, and turns the hold into a charge when the job succeeds or gives it
 * back when it fails.
 *
 * Loading. The library exports exactly one symbol, cm_plugin_entry. A host loads it
 * with dlopen(path, RTLD_NOW | RTLD_LOCAL), clears dlerror(), looks up
 * CM_PLUGIN_ENTRY_SYMBOL with dlsym and calls it with the ABI version the host was
 * compiled against (CM_PLUGIN_ABI_MAJOR, CM_PLUGIN_ABI_MINOR). The plugin returns its
 * function table, or NULL when it cannot serve that host (another major, or a newer
 * minor than its own). The host must check the table too (cm_plugin_api_compatible()
 * below does both checks) and must not read a table field at or beyond
 * api->struct_size.
 *
 * Versioning (plugin/ABI.md has the whole rule). Same major = compatible. A minor bump
 * only appends: fields at the end of a struct, functions at the end of the table,
 * values at the end of an enum, new error codes. Nothing is ever removed, reordered,
 * retyped or renumbered. Every struct that crosses the boundary starts with uint32_t
 * struct_size, set by whoever allocates it (the host, for every struct in this header)
 * to sizeof as it was compiled. The plugin accepts any struct_size from the struct's
 * ABI 1.0 size (CM_PLUGIN_<STRUCT>_SIZE_1_0, below) up: it reads and writes no byte at
 * or beyond struct_size, gives defaults to the fields a smaller (older) host's struct
 * does not have, and ignores what a larger (newer) host's struct has beyond the fields
 * it knows. A struct_size below the 1.0 size is CM_PLUGIN_E_ABI, and nothing of that
 * struct is written. Enum values the plugin reports (methods, hold states, grant
 * kinds) are mapped one by one from the probe's and the ledger's; a host must accept a
 * value it does not know.
 *
 * The hooks of one job, in order:
 *
 *   (quote      ABI 1.1, optional: the same measurement and price, and whether the
 *               workspace can afford it, holding nothing: show it before starting.)
 *   job_begin   probe the input (by input) or take the requested length (by output),
 *               quote, and reserve the credits. Fails with a refusal before any work:
 *               insufficient credits, forbidden, a bad file (with the probe's code).
 *   stage_begin / stage_end    around each stage of the pipeline; each renews the
 *               hold's lease.
 *   (keepalive  ABI 1.2: one background thread per handle renews the leases of all
 *               the handle's running jobs every third of a lease (keepalive_divisor),
 *               in one ledger transaction per tick (per lease length: each job
 *               keeps its own lease), while the process lives; so a
 *               stage of any length keeps its hold without hooks, and a crashed
 *               pipeline's hold lapses (and is given back) within one lease of its
 *               last renewal. The default lease is CM_PLUGIN_DEFAULT_LEASE_S, 120 s.)
 *   job_end     success commits (by input: the quote; by output: the output's
 *               measured length, never more than the quote); failure releases.
 *
 * Idempotency. The job id is the ledger's idempotency key for the hold, bound to the
 * job's input: by input, the file's size, its measured duration and a fingerprint
 * of its content (64-bit FNV-1a over the file's first 64 KiB, its last 64 KiB and its
 * size as 8 little-endian bytes); by output, the tag "by-output" and the requested
 * length. A job_begin retried with the same id and the same input returns the same
 * quote and holds nothing more; when that job was already charged, the quote says so
 * (replayed = 1, hold_state committed) and job_end returns the first charge: a
 * retried job is never charged twice. The same id with another input (another file,
 * even of the same price, or a by-output job under a by-input job's id) is
 * CM_PLUGIN_E_CONFLICT and nothing runs. A job id whose hold was released or lapsed,
 * or whose charge was refunded, is closed for good (CM_PLUGIN_E_JOB_CLOSED): a new
 * attempt needs a new id.
 *
 * Quotes (ABI 1.1). quote() measures and prices a job exactly as job_begin would and
 * says whether the workspace can afford it and from which grants, holding nothing:
 * the price shown before any processing or deduction of credits.
 *
 * Errors. Every function returns CM_PLUGIN_OK (0) or a negative code of enum
 * cm_plugin_error. api->err_name() gives its stable machine name and
 * api->strerror() a sentence. When the cause lies in the probe or the ledger, the
 * result also carries that module's own code and name (cm_plugin_error_info, or the
 * refusal fields of cm_plugin_quote / cm_plugin_outcome); api->cause_name() names any
 * such code. The handle keeps the details of the last failing call made on it
 * (api->last_error()).
 *
 * Ownership. The host owns every struct it passes; the plugin copies what it keeps
 * (strings in the config and the job spec are copied before the call returns). The
 * plugin never returns a pointer into its own memory except the static strings of
 * err_name/strerror/cause_name and the table itself, valid until dlclose.
 *
 * Threading. A cm_plugin handle may be used from any number of threads at once,
 * except open/close (see each function). Different jobs may run in different threads
 * at once; the hooks of one job must not overlap (call them in order, from any
 * thread). Each open handle runs one thread of its own (ABI 1.2: the lease keepalive,
 * unless keepalive_divisor is -1), started by open and joined by close; it calls the
 * ledger, the clock and the log callbacks, nothing else. ABI 1.3: a handle keeps a
 * small pool of ledger connections (cm_plugin_config.ledger_pool_size, default 4);
 * each ledger call, the keepalive's included, takes one for its duration, so up to
 * that many threads reach the ledger at once and the others wait for a free one
 * (before 1.3 every call of a handle went through one connection, one at a time).
 * The plugin changes no
 * process-wide state: no log callbacks or levels of
 * libav*, no sqlite3_config, no signal handlers, no environment. Its own code keeps no
 * global variables (every state is in a handle); the probe and ledger linked into it
 * keep a few, none of which a host can observe: the ledger's thread-local variables
 * (the last cm_ledger_open() failure of each thread, the copy of a handle's error
 * message a thread last read, a retry back-off seed) and the probe's list of allowed
 * demuxers, built once (pthread_once) and never changed. libsqlite3 and libavformat
 * keep their own process-wide state as they always do. Logging and the clock come in
 * through cm_plugin_config.
 */
#ifndef CREDITMETER_PLUGIN_H
#define CREDITMETER_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define CM_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define CM_PLUGIN_EXPORT
#endif

#define CM_PLUGIN_ABI_MAJOR 1u
#define CM_PLUGIN_ABI_MINOR 3u
#define CM_PLUGIN_ENTRY_SYMBOL "cm_plugin_entry"

/* Result codes. 0 is success; errors are negative, append-only, never renumbered. */
enum cm_plugin_error {
    CM_PLUGIN_OK = 0,
    CM_PLUGIN_E_INVALID = -1,      /* "invalid_argument": NULL/empty id, bad kind, bad size */
    CM_PLUGIN_E_NOMEM = -2,        /* "out_of_memory" */
    CM_PLUGIN_E_INSUFFICIENT = -3, /* "insufficient_credits": refused; nothing was held */
    CM_PLUGIN_E_FORBIDDEN = -4,    /* "forbidden": the user is not a member of the
                                      workspace, or the workspace does not exist */
    CM_PLUGIN_E_BAD_FILE = -5,     /* "bad_file": the probe refused the input; the probe's
                                      code is in the quote / last_error */
    CM_PLUGIN_E_CONFLICT = -6,     /* "conflict": the job id was used with other arguments
                                      (another workspace, user, length or lease) */
    CM_PLUGIN_E_JOB_CLOSED = -7,   /* "job_closed": this job id's hold was already released
                                      or lapsed; a new attempt needs a new id */
    CM_PLUGIN_E_LEASE_LAPSED = -8, /* "lease_lapsed": the hold lapsed while the job ran and
                                      its credits went back; stop the job, nothing is charged */
    CM_PLUGIN_E_NO_JOB = -9,       /* "no_such_job": no job_begin for this id on this handle
                                      (hooks), or no hold in the ledger (job_state) */
    CM_PLUGIN_E_BAD_OUTPUT = -10,  /* "bad_output": a by-output job's output could not be
                                      measured; the hold was released, nothing charged */
    CM_PLUGIN_E_LEDGER = -11,      /* "ledger_failure": the ledger failed (busy, storage);
                                      the ledger's code is in last_error; retrying the same
                                      call is safe */
    CM_PLUGIN_E_ABI = -12,         /* "abi_mismatch": a struct_size the plugin cannot serve */
    CM_PLUGIN_E_NO_LEDGER = -13,   /* ABI 1.2, "no_such_ledger": open found no ledger at the
                                      configured location and the config's create is 0
                                      (a mistyped path does not become an empty ledger) */
};

/* Who a cause code belongs to. */
enum cm_plugin_cause {
    CM_PLUGIN_CAUSE_NONE = 0,
    CM_PLUGIN_CAUSE_PROBE = 1,  /* a code of enum cm_probe_error (cm_probe.h) */
    CM_PLUGIN_CAUSE_LEDGER = 2, /* a code of enum cm_ledger_error (cm_ledger.h) */
};

/* How a job is billed. */
enum cm_plugin_billing {
    CM_PLUGIN_BY_INPUT = 1,  /* clips, captions, writer: the input's measured minutes */
    CM_PLUGIN_BY_OUTPUT = 2, /* text-to-video, avatars: quoted on the requested length,
                                charged the output's measured length, at most the quote */
};

/* How the quoted duration was established (the probe's methods, then ours). The
 * plugin maps each of the probe's methods to one of these explicitly; a host must
 * accept a value it does not know (a newer minor may append one) and can always show
 * the quote's method_name. */
enum cm_plugin_method {
    CM_PLUGIN_METHOD_NONE = 0,
    CM_PLUGIN_METHOD_MP4_INDEX = 1,      /* 0.1's sampling of libavformat's index; no longer
                                            reported */
    CM_PLUGIN_METHOD_TAIL_PACKETS = 2,   /* 0.1's last packets near the end; no longer reported */
    CM_PLUGIN_METHOD_PACKET_SCAN = 3,    /* a demux-only scan of every packet */
    CM_PLUGIN_METHOD_STRUCTURE_WALK = 4, /* ABI 1.1: a walk of the container's structure
                                            (MP4 boxes and fragments, AVI, Matroska) with
                                            every byte accounted for */
    CM_PLUGIN_METHOD_REQUESTED = 100,    /* by output: the requested output length */
};

/* State of a job's hold (the ledger's states, mapped one by one). */
enum cm_plugin_hold_state {
    CM_PLUGIN_HOLD_NONE = 0,
    CM_PLUGIN_HOLD_HELD = 1,      /* reserved, lease running */
    CM_PLUGIN_HOLD_COMMITTED = 2, /* charged */
    CM_PLUGIN_HOLD_RELEASED = 3,  /* given back by a failure */
    CM_PLUGIN_HOLD_LAPSED = 4,    /* given back because the lease lapsed */
};

/* ABI 1.1: kinds of the grants a quote or a hold takes credits from. */
enum cm_plugin_grant_kind {
    CM_PLUGIN_GRANT_PLAN = 1,   /* from a plan period; expires */
    CM_PLUGIN_GRANT_ADDON = 2,  /* bought add-on credits; never expire */
    CM_PLUGIN_GRANT_REFUND = 3, /* refunded credits whose source expired; never expire */
};

/* Levels of the log callbacks. The numbers are not in order of severity (WARN came in
 * ABI 1.2, appended); from least to most severe: DEBUG, INFO, WARN, ERROR. ERROR is kept
 * for what an operator must act on (the ledger's storage failing, out of memory, a
 * caller's or the plugin's bug: invalid_argument, abi_mismatch); a customer's refusal
 * (insufficient credits, forbidden, a bad file) is INFO or WARN. */
enum cm_plugin_log_level {
    CM_PLUGIN_LOG_ERROR = 0,
    CM_PLUGIN_LOG_INFO = 1,
    CM_PLUGIN_LOG_DEBUG = 2,
    CM_PLUGIN_LOG_WARN = 3, /* ABI 1.2 */
};

/*
 * ABI 1.2: one structured log record, passed to cm_plugin_config.log_record. Unlike
 * every other struct here the plugin allocates it: struct_size is the plugin's sizeof,
 * and a host reads no field at or beyond it. The record and its strings are valid
 * during the callback only (copy what you keep). Strings are never NULL ("" when not
 * known).
 *
 * Events (stable names; a newer plugin may add names, a host must accept one it does
 * not know): open, close (info); job_begin (info: a hold was made or found);
 * job_refused (info for insufficient_credits, forbidden; warn for bad_file, conflict,
 * job_closed; error for ledger_failure, out_of_memory, invalid_argument, abi_mismatch);
 * quote (debug); probe (debug: an input or output measured); stage_begin, stage_end
 * (debug; a failed stage: warn); renew (debug: a hook or the keepalive renewed leases);
 * lease_lapsed (warn: a running job's hold lapsed); commit, release (info);
 * job_failed (job_end could not finish: warn or error by code); ledger_retry (warn: a
 * keepalive renewal failed and is tried again next tick); ping (debug, or error when
 * the ledger is unreachable); call_failed (another call refused, level by code);
 * ledger_pool (ABI 1.3: debug when the pool opened another connection, warn when it
 * could not, and the call waited for a busy one instead).
 */
typedef struct cm_plugin_log_record {
    uint32_t struct_size;  /* the plugin's sizeof(cm_plugin_log_record) */
    int level;             /* enum cm_plugin_log_level */
    const char *event;     /* the stable event name above */
    const char *job;       /* the job id, "" when none */
    const char *workspace; /* "" when not known in this call */
    const char *user;      /* "" when not known in this call */
    int code;              /* enum cm_plugin_error of a failure, CM_PLUGIN_OK otherwise */
    const char *code_name; /* err_name(code): "ok", "insufficient_credits", ... */
    int cause;             /* enum cm_plugin_cause of code */
    int cause_code;        /* the probe's or the ledger's code, 0 when none */
    const char *message;   /* a sentence for a person */
    int64_t time_ms;       /* when, on the ledger's clock (cm_plugin_config.now_ms) */
    int64_t credits;       /* the credits concerned (quoted, held, charged), -1 when none */
} cm_plugin_log_record;

typedef struct cm_plugin cm_plugin; /* opaque handle */

/*
 * Configuration of open(). Start with cm_plugin_config_init(); the plugin copies
 * what it keeps. Callbacks may be called from any thread that calls into the handle
 * and from the handle's keepalive thread (ABI 1.2), possibly from several at once, and
 * must not call back into the plugin.
 */
typedef struct cm_plugin_config {
    uint32_t struct_size;
    const char *ledger;            /* ledger location (required): an SQLite file path, or a
                                      postgresql:// URI for a ledger a fleet shares */
    int64_t grace_ms;              /* padding grace; -1: the probe's default (500) */
    int64_t default_lease_s;       /* lease of a hold when the job gives none; 0: 120
                                      (CM_PLUGIN_DEFAULT_LEASE_S; 900 before ABI 1.2) */
    int64_t probe_max_duration_ms; /* 0: the probe's default (24 h) */
    int64_t probe_time_budget_ms;  /* 0: the probe's default (10 s) */
    int64_t probe_max_file_bytes;  /* 0: the probe's default (64 GiB) */
    int64_t (*now_ms)(void *user); /* the ledger's clock, Unix ms UTC; NULL: real time */
    void *clock_user;
    void (*log)(void *user, int level, const char *message); /* NULL: silent */
    void *log_user;
    int ledger_busy_timeout_ms; /* 0: the ledger's default (5000); also bounds ping() */
    /* ---- ABI 1.2 (a 1.1 host's struct ends before these: they take the defaults) ---- */
    int32_t reserved_1_0; /* the 1.0 struct's tail padding, now explicit; set 0, not read */
    /* Structured logs: when set, called with a record instead of log (NULL: log, if
     * set, receives the record's message and level as in 1.1). */
    void (*log_record)(void *user, const cm_plugin_log_record *record);
    int log_min_level;     /* the least severe level delivered to log or log_record
                              (enum cm_plugin_log_level); default DEBUG: everything */
    int create;            /* 1: open may create a missing ledger (SQLite: the file; both:
                              the schema); 0 (default): a missing one is E_NO_LEDGER */
    int keepalive_divisor; /* the keepalive thread renews each running job's lease every
                              lease / N; 0: 3 (a third); 2..100; -1: no thread (only the
                              stage hooks renew, as in 1.1) */
    int32_t reserved_1_2;  /* set 0, not read */
    /* ---- ABI 1.3 (a 1.2 host's struct ends before these: they take the defaults) ---- */
    int ledger_pool_size; /* ledger connections (handles) this handle may open, for hosts
                             that call it from several threads: each ledger call takes
                             one for its duration, and a thread waits while all are busy.
                             0: CM_PLUGIN_DEFAULT_LEDGER_POOL (4); 1 to
                             CM_PLUGIN_MAX_LEDGER_POOL (64); 1 serialises every call on
                             one connection, as before 1.3. The first is opened by open,
                             the others only when a call finds every open one busy. */
    int32_t reserved_1_3; /* set 0, not read */
} cm_plugin_config;

/* The default lease of a hold (ABI 1.2): short, because the keepalive thread renews it
 * while the process lives, so a crashed pipeline's credits go back within two minutes,
 * and a stage of any length keeps its hold. */
#define CM_PLUGIN_DEFAULT_LEASE_S 120

/* ABI 1.3: the default and the largest ledger_pool_size. */
#define CM_PLUGIN_DEFAULT_LEDGER_POOL 4
#define CM_PLUGIN_MAX_LEDGER_POOL 64

/*
 * The frozen sizes. CM_PLUGIN_<STRUCT>_SIZE_1_0 is sizeof the struct as ABI 1.0 had it:
 * the smallest struct_size the plugin accepts (plugin/ABI.md). While a struct has not
 * grown since 1.0 it is its sizeof; when a minor version appends a field, the constant
 * becomes offsetof(the first appended field), which must equal the old sizeof (the
 * plugin checks every 1.0 field's offset and size against a frozen copy of the 1.0
 * layout at compile time).
 */
#define CM_PLUGIN_CONFIG_SIZE_1_0 offsetof(cm_plugin_config, log_record)
#define CM_PLUGIN_CONFIG_SIZE_1_2 offsetof(cm_plugin_config, ledger_pool_size)
#define CM_PLUGIN_CONFIG_SIZE_1_3 sizeof(cm_plugin_config)

/* What a job is. Strings are read during job_begin only. */
typedef struct cm_plugin_job_spec {
    uint32_t struct_size;
    const char *job;             /* the job id: the idempotency key of its hold */
    const char *workspace;       /* whose credits */
    const char *user;            /* who runs it: the workspace's owner or a member */
    int billing;                 /* enum cm_plugin_billing */
    const char *input_path;      /* by input: the local file to measure; by output: ignored */
    int64_t requested_output_ms; /* by output: the length asked for (> 0) */
    int64_t lease_s;             /* lease of the hold; 0: the config's default */
} cm_plugin_job_spec;

#define CM_PLUGIN_JOB_SPEC_SIZE_1_0 sizeof(cm_plugin_job_spec)

/* ABI 1.1: one grant a quote or a hold takes credits from. */
typedef struct cm_plugin_quote_grant {
    int64_t grant_id;
    int kind;           /* enum cm_plugin_grant_kind */
    int64_t credits;    /* taken from this grant */
    int64_t expires_ms; /* the grant's expiry, -1 never */
} cm_plugin_quote_grant;

#define CM_PLUGIN_QUOTE_GRANTS 8

/* The quote of job_begin (and quote()), filled whether the job was accepted or
 * refused. */
typedef struct cm_plugin_quote {
    uint32_t struct_size;
    int64_t credits;        /* the price; 0 when refused before pricing */
    int64_t measured_ms;    /* by input: the real playing time; by output: requested */
    int64_t declared_ms;    /* the container header's duration, -1 when none/by output */
    int64_t billable_ms;    /* what the price is computed from */
    int method;             /* enum cm_plugin_method */
    char method_name[24];   /* the probe's method name, or "requested" (by output) */
    char note[160];         /* why declared and measured differ ("" when they agree) */
    int hold_state;         /* enum cm_plugin_hold_state after the call */
    int replayed;           /* 1: this job id was begun before; nothing more was held */
    int64_t lease_until_ms; /* when the hold lapses unless a hook renews it */
    int64_t available;      /* the workspace's credits left after this hold (-1 unknown) */
    int cause;              /* enum cm_plugin_cause of a refusal */
    int cause_code;         /* the probe's or the ledger's code, 0 when none */
    char message[256];      /* a sentence for a person when refused, "" otherwise */
    /* ABI 1.1 (a 1.0 host's struct ends before these; they are not written for it) */
    int affordable; /* 1: the workspace has the credits (job_begin: they are held) */
    int n_grants;   /* grants the credits are (would be) taken from, spending order */
    cm_plugin_quote_grant grants[CM_PLUGIN_QUOTE_GRANTS]; /* the first n_grants, at most 8 */
    char receipt[400]; /* why it costs that, as the ledger keeps it for support
                          ("1 credit for 60.400 s measured by structure_walk, ... 500 ms
                          grace for encoder padding") */
} cm_plugin_quote;

/* Size of cm_plugin_quote in ABI 1.0: the smallest struct_size job_begin accepts;
 * in ABI 1.1: the smallest quote() accepts. */
#define CM_PLUGIN_QUOTE_SIZE_1_0 offsetof(cm_plugin_quote, affordable)
#define CM_PLUGIN_QUOTE_SIZE_1_1 sizeof(cm_plugin_quote)

/* The result of job_end. */
typedef struct cm_plugin_outcome {
    uint32_t struct_size;
    int hold_state;    /* committed or released */
    int64_t quoted;    /* credits held by job_begin */
    int64_t charged;   /* credits charged (0 when released) */
    int64_t output_ms; /* by output: the output's measured length; -1 otherwise */
    int replayed;      /* 1: the job had been resolved before; the first result */
    int cause;         /* enum cm_plugin_cause, for bad_output and ledger errors */
    int cause_code;
    char message[256];
} cm_plugin_outcome;

#define CM_PLUGIN_OUTCOME_SIZE_1_0 sizeof(cm_plugin_outcome)

typedef struct cm_plugin_balance {
    uint32_t struct_size;
    int64_t available; /* spendable now */
    int64_t held;      /* held by running jobs */
} cm_plugin_balance;

#define CM_PLUGIN_BALANCE_SIZE_1_0 sizeof(cm_plugin_balance)

typedef struct cm_plugin_job_state {
    uint32_t struct_size;
    int hold_state;         /* enum cm_plugin_hold_state */
    int64_t credits;        /* held at job_begin */
    int64_t charged;        /* charged by commit */
    int64_t refunded;       /* reimbursed by support since */
    int64_t lease_until_ms; /* a held hold lapses then */
    int64_t resolved_ms;    /* commit/release/lapse time, -1 while held */
    char workspace[128];
    char user[128];
} cm_plugin_job_state;

#define CM_PLUGIN_JOB_STATE_SIZE_1_0 sizeof(cm_plugin_job_state)

/* The last failing call on a handle. */
typedef struct cm_plugin_error_info {
    uint32_t struct_size;
    int code;  /* enum cm_plugin_error */
    int cause; /* enum cm_plugin_cause */
    int cause_code;
    char message[256];
} cm_plugin_error_info;

#define CM_PLUGIN_ERROR_INFO_SIZE_1_0 sizeof(cm_plugin_error_info)

/*
 * The function table. The functions below are listed as fields, in ABI order.
 */
typedef struct cm_plugin_api {
    uint32_t abi_major;   /* CM_PLUGIN_ABI_MAJOR of the plugin */
    uint32_t abi_minor;   /* CM_PLUGIN_ABI_MINOR of the plugin */
    uint32_t struct_size; /* sizeof(cm_plugin_api) in the plugin */
    const char *version;  /* the plugin's release, "MAJOR.MINOR.PATCH" (cm_version.h) */

    /*
     * Opens a handle: opens the ledger (creating it only when cfg->create is 1) and
     * makes a probe with the configured limits, and starts the handle's keepalive
     * thread (unless keepalive_divisor is -1). *out is closed with close(). Not
     * thread-safe with respect to the new handle (nothing else can see it yet).
     * ABI 1.3: the first of the handle's ledger connections is opened here, the others
     * (up to cfg->ledger_pool_size) by the calls that find every open one busy.
     * Returns OK, E_INVALID (no ledger location, an option out of range, among them a
     * ledger_pool_size below 0 or above CM_PLUGIN_MAX_LEDGER_POOL), E_ABI
     * (cfg->struct_size below CM_PLUGIN_CONFIG_SIZE_1_0), E_NOMEM, E_NO_LEDGER (no
     * ledger at that location, no SQLite file or no creditmeter schema in the PostgreSQL
     * database, and create is 0; a 1.0/1.1 host's config has no create
     * field and gets 0), E_LEDGER (the ledger cannot be opened; see err for the
     * ledger's message). err, when not NULL and its struct_size at least
     * CM_PLUGIN_ERROR_INFO_SIZE_1_0, receives the details (code OK on success): there
     * is no handle to keep them.
     */
    int (*open)(const cm_plugin_config *cfg, cm_plugin **out, cm_plugin_error_info *err);

    /*
     * Closes a handle; NULL is a no-op. No other call on it may be running or follow.
     * Stops the keepalive thread (woken at once, joined; close does not wait for a
     * tick). Jobs begun and not ended keep their holds, which lapse with their lease.
     */
    void (*close)(cm_plugin *p);

    /*
     * Begins a job: measures and quotes, then reserves. Fills *quote in every case
     * (accepted or refused), up to quote->struct_size: a 1.0 host's quote
     * (CM_PLUGIN_QUOTE_SIZE_1_0) gets no 1.1 field. Nothing has been held when it fails.
     * Thread-safe. Returns OK, E_INVALID, E_ABI (spec or quote struct_size below its 1.0
     * size; *quote is then not written), E_BAD_FILE (probe code in quote->cause_code),
     * E_FORBIDDEN, E_INSUFFICIENT, E_CONFLICT, E_JOB_CLOSED, E_LEDGER, E_NOMEM.
     */
    int (*job_begin)(cm_plugin *p, const cm_plugin_job_spec *spec, cm_plugin_quote *quote);

    /*
     * Marks the start of a stage (a free name: "probe", "transcode", ...) and renews
     * the lease to now + lease_s. The ledger write is skipped while at least 90 % of
     * the lease is still ahead (a hook moments after another one), so a hook costs
     * nothing in the common case and the hold never has less than 90 % of its lease
     * ahead after any hook. Thread-safe. Returns OK, E_INVALID, E_NO_JOB, E_LEASE_LAPSED (stop
     * the job: its credits went back; job_end will report the release), E_LEDGER.
     */
    int (*stage_begin)(cm_plugin *p, const char *job, const char *stage);

    /*
     * Marks the end of a stage, ok = 1 or 0 (the message, may be NULL, is logged),
     * and renews the lease. A failed stage does not end the job: call job_end(ok = 0).
     * Thread-safe. Returns as stage_begin.
     */
    int (*stage_end)(cm_plugin *p, const char *job, const char *stage, int ok, const char *message);

    /*
     * Ends a job. ok = 1: commits (by input: the quote; by output: the credits of
     * output_path's measured length, at most the quote). ok = 0: releases the whole
     * hold (output_path may be NULL). Fills *outcome (may be NULL). On OK, on
     * E_BAD_OUTPUT and on E_LEASE_LAPSED the job is over and forgotten by the handle;
     * on E_LEDGER it is kept, and the same call may be retried. Thread-safe.
     * Returns OK, E_INVALID, E_ABI (outcome->struct_size below its 1.0 size: nothing
     * done), E_NO_JOB, E_BAD_OUTPUT, E_LEASE_LAPSED, E_LEDGER.
     */
    int (*job_end)(cm_plugin *p, const char *job, int ok, const char *output_path,
                   cm_plugin_outcome *outcome);

    /*
     * Credits of a workspace as seen by user (a member or the owner; NULL: the
     * operator, who may read any workspace). Thread-safe.
     * Returns OK, E_INVALID, E_ABI (out->struct_size below its 1.0 size), E_FORBIDDEN,
     * E_LEDGER, E_NOMEM.
     */
    int (*balance)(cm_plugin *p, const char *workspace, const char *user, cm_plugin_balance *out);

    /*
     * The ledger's state of a job's hold (whichever process made it), brought up
     * to now: a lapsed lease reads as lapsed. Thread-safe.
     * Returns OK, E_INVALID, E_ABI (out->struct_size below its 1.0 size), E_NO_JOB,
     * E_LEDGER, E_NOMEM.
     */
    int (*job_state)(cm_plugin *p, const char *job, cm_plugin_job_state *out);

    /*
     * Copies the details of the last failing call on p (from any thread) into *out.
     * code is CM_PLUGIN_OK when no call failed yet. Thread-safe. Returns OK, E_INVALID
     * (p or out NULL) or E_ABI (out->struct_size below its 1.0 size; not written). With
     * several threads, prefer the quote/outcome of each call.
     */
    int (*last_error)(const cm_plugin *p, cm_plugin_error_info *out);

    /* Stable machine name ("insufficient_credits") and a sentence of a code.
     * Static strings; "unknown" for other codes. Thread-safe. */
    const char *(*err_name)(int code);
    const char *(*strerror)(int code);

    /* Machine name of a probe or ledger code ("damaged", "busy"). Thread-safe. */
    const char *(*cause_name)(int cause, int code);

    /* Name of a hold state ("none", "held", "committed", "released", "lapsed");
     * "unknown" for other values. Static strings. Thread-safe. */
    const char *(*hold_state_name)(int state);

    /* ---- ABI 1.1 ---- */

    /*
     * Quotes a job without holding anything: measures the input (by input) or takes
     * the requested length (by output), prices it, and fills *quote with the price,
     * how it was measured, the receipt, whether spec->workspace can afford it now
     * (affordable, available) and from which grants (n_grants, grants). spec->job may
     * be NULL or empty (a quote names no job); the rest of the spec is as for
     * job_begin. hold_state is NONE, replayed 0, lease_until_ms -1. Changes no credits
     * (the ledger brings the workspace up to now). quote->struct_size must be at least
     * CM_PLUGIN_QUOTE_SIZE_1_1 (else E_ABI, not written). Thread-safe. Returns OK (affordable or
     * not), E_INVALID, E_ABI, E_BAD_FILE (probe code in quote->cause_code), E_FORBIDDEN, E_LEDGER,
     * E_NOMEM.
     */
    int (*quote)(cm_plugin *p, const cm_plugin_job_spec *spec, cm_plugin_quote *quote);

    /* ---- ABI 1.2 ---- */

    /*
     * Writes the handle's metrics into buf in the Prometheus text exposition format
     * (version 0.0.4: # HELP and # TYPE lines, counters, gauges, histograms with
     * _bucket{le=...}, _sum and _count), for a host to serve or write out; the plugin
     * runs no server. Like snprintf: returns the length of the whole text (without its
     * NUL) and writes it, NUL-terminated, only when that length is below cap (buf may be
     * NULL when cap is 0); a return value >= cap means: call again with a buffer of at
     * least that + 1 bytes (nothing is written then). Other threads (the keepalive
     * among them) may count between two calls, so the text can grow: give the second call
     * room to spare and call again if it still returns >= cap. Counters only grow while
     * the handle is open. Thread-safe. Returns the length, or E_INVALID (p NULL, or buf NULL
     * with cap > 0), E_NOMEM (the text could not be built).
     *
     * Metrics (every name starts cm_plugin_): jobs_begun_total, jobs_committed_total,
     * jobs_released_total, jobs_lapsed_total, jobs_refused_total{code}, jobs_running
     * (gauge); credits_quoted_total, credits_held_total, credits_charged_total,
     * credits_released_total; probe_seconds, probe_read_bytes (histograms, one
     * observation per file measured); ledger_call_seconds{call} (histogram per ledger
     * call: reserve, renew, renew_many, commit, release, quote, balance, job_info,
     * ping); ledger_errors_total{code} (the ledger's codes); keepalive_ticks_total,
     * keepalive_renewals_total, keepalive_transactions_total, ledger_retries_total
     * (keepalive renewals retried after a ledger failure); ledger_transactions_total,
     * ledger_transaction_retries_total, ledger_reconnects_total (the ledger's own
     * counters, summed over the pool's connections as of each one's last call). ABI 1.3,
     * the ledger pool: ledger_pool_size, ledger_pool_open, ledger_pool_in_use,
     * ledger_pool_in_use_max (gauges: connections allowed, opened, checked out now, the
     * most checked out at once), ledger_pool_checkouts_total, ledger_pool_waits_total
     * (calls that found every connection busy and waited),
     * ledger_pool_wait_seconds_total, ledger_pool_open_failures_total. Reading the
     * metrics never waits for a running ledger call.
     */
    int64_t (*metrics)(cm_plugin *p, char *buf, size_t cap);

    /*
     * Health: is the ledger reachable and writable now? Runs a write transaction that
     * changes nothing, bounded by the config's ledger_busy_timeout_ms. Fills *out (may
     * be NULL; struct_size at least CM_PLUGIN_ERROR_INFO_SIZE_1_0) with the result: code
     * OK and message "ledger reachable and writable (N ms)", or the failure, its ledger
     * code and the reason. Thread-safe. Returns OK, E_INVALID (p NULL), E_ABI (out's
     * struct_size below its 1.0 size; not written), E_LEDGER (unreachable, read-only,
     * locked past the timeout), E_NOMEM.
     */
    int (*ping)(cm_plugin *p, cm_plugin_error_info *out);

    /* Name of a log level ("debug", "info", "warn", "error"); "unknown" for other
     * values. Static strings. Thread-safe. */
    const char *(*log_level_name)(int level);
} cm_plugin_api;

/* The table's size in ABI 1.0 (it ended before quote), in 1.1 (before metrics) and
 * in 1.2. */
#define CM_PLUGIN_API_SIZE_1_0 offsetof(cm_plugin_api, quote)
#define CM_PLUGIN_API_SIZE_1_1 offsetof(cm_plugin_api, metrics)
#define CM_PLUGIN_API_SIZE_1_2 sizeof(cm_plugin_api)

/* The one exported symbol. Returns NULL when the plugin cannot serve the host. */
typedef const cm_plugin_api *(*cm_plugin_entry_fn)(uint32_t host_abi_major,
                                                   uint32_t host_abi_minor);
CM_PLUGIN_EXPORT const cm_plugin_api *cm_plugin_entry(uint32_t host_abi_major,
                                                      uint32_t host_abi_minor);

/* For hosts: does this table serve a host built against this header? */
static inline int cm_plugin_api_compatible(const cm_plugin_api *api)
{
    uint32_t need_minor = CM_PLUGIN_ABI_MINOR; /* a variable: no "always true" warning at x.0 */
    return api && api->abi_major == CM_PLUGIN_ABI_MAJOR && api->abi_minor >= need_minor &&
           api->struct_size >= offsetof(cm_plugin_api, log_level_name) + sizeof(void *);
}

/* For hosts: the defaults (struct_size set, grace -1 = the probe's default, every log
 * level delivered, no creation, keepalive every third of a lease). */
static inline void cm_plugin_config_init(cm_plugin_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->struct_size = (uint32_t)sizeof *cfg;
    cfg->grace_ms = -1;
    cfg->log_min_level = CM_PLUGIN_LOG_DEBUG;
}

#ifdef __cplusplus
}
#endif
#endif /* CREDITMETER_PLUGIN_H */
