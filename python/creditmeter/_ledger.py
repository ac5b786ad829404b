# SPDX-License-Identifier: MIT
"""The prepaid-credit ledger (cm_ledger.h): workspaces, plans, holds, refunds."""
import ctypes
import dataclasses
import threading
from ctypes import (POINTER, Structure, c_char, c_char_p, c_int, c_int64, c_size_t,
                    c_uint32, c_void_p)
from typing import List, Optional

from . import _native

ALL = -1  # CM_LEDGER_ALL: "all of it" for commit() and refund()
CLOCK_FN = ctypes.CFUNCTYPE(c_int64, c_void_p)

INTERVALS = {"monthly": 1, "annual": 2}
SYNC = {"full": 0, "normal": 1}


# ---- the C structs, field for field as in cm_ledger.h ----------------------------------
class Config(Structure):
    _fields_ = [("struct_size", c_uint32), ("location", c_char_p), ("now_ms", CLOCK_FN),
                ("clock_user", c_void_p), ("busy_timeout_ms", c_int), ("synchronous", c_int),
                ("create", c_int)]


class CPurchase(Structure):
    _fields_ = [("grant_id", c_int64), ("credits", c_int64), ("unit_minor", c_int64),
                ("total_minor", c_int64), ("currency", c_char * 4), ("replayed", c_int)]


class CTake(Structure):
    _fields_ = [("grant_id", c_int64), ("kind", c_int), ("credits", c_int64),
                ("charged", c_int64), ("refunded", c_int64), ("expires_ms", c_int64)]


class CQuote(Structure):
    _fields_ = [("credits", c_int64), ("available", c_int64), ("affordable", c_int),
                ("n_takes", c_size_t), ("takes", POINTER(CTake))]


class CJob(Structure):
    _fields_ = [("job", c_char_p), ("workspace", c_char_p), ("user", c_char_p),
                ("state", c_int), ("credits", c_int64), ("charged", c_int64),
                ("refunded", c_int64), ("lease_s", c_int64), ("created_ms", c_int64),
                ("lease_until_ms", c_int64), ("resolved_ms", c_int64), ("n_takes", c_size_t),
                ("takes", POINTER(CTake)), ("note", c_char_p),
                ("binding", c_char_p), ("commit_note", c_char_p)]


class CGrant(Structure):
    _fields_ = [("id", c_int64), ("kind", c_int), ("granted", c_int64),
                ("remaining", c_int64), ("held", c_int64), ("charged", c_int64),
                ("expired", c_int64), ("refunded_into", c_int64), ("created_ms", c_int64),
                ("expires_ms", c_int64)]


class CBalance(Structure):
    _fields_ = [("workspace", c_char_p), ("available", c_int64), ("held", c_int64),
                ("n_grants", c_size_t), ("grants", POINTER(CGrant))]


class CEntry(Structure):
    _fields_ = [("id", c_int64), ("at_ms", c_int64), ("kind", c_char_p),
                ("grant_id", c_int64), ("job", c_char_p), ("credits", c_int64),
                ("actor", c_char_p), ("reason", c_char_p), ("ref", c_char_p)]


class CHistory(Structure):
    _fields_ = [("n_entries", c_size_t), ("entries", POINTER(CEntry))]


class CRefund(Structure):
    _fields_ = [("credits", c_int64), ("to_source", c_int64), ("refund_grant_id", c_int64),
                ("total_refunded", c_int64), ("replayed", c_int)]


class CSweep(Structure):
    _fields_ = [("holds_lapsed", c_int64), ("credits_expired", c_int64),
                ("periods_granted", c_int64)]


# ---- results ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Take:
    grant_id: int
    kind: str             # "plan", "addon", "refund"
    credits: int
    charged: int
    refunded: int
    expires_ms: Optional[int]  # None: never


@dataclasses.dataclass(frozen=True)
class Quote:
    credits: int
    available: int
    affordable: bool
    takes: List[Take]


@dataclasses.dataclass(frozen=True)
class Job:
    job: str
    workspace: str
    user: str
    state: str            # "held", "committed", "released", "lapsed"
    credits: int
    charged: int
    refunded: int
    lease_s: int
    created_ms: int
    lease_until_ms: int
    resolved_ms: Optional[int]  # None while held
    takes: List[Take]
    note: Optional[str]


@dataclasses.dataclass(frozen=True)
class Grant:
    id: int
    kind: str
    granted: int
    remaining: int
    held: int
    charged: int
    expired: int
    refunded_into: int
    created_ms: int
    expires_ms: Optional[int]


@dataclasses.dataclass(frozen=True)
class Balance:
    workspace: str
    available: int
    held: int
    grants: List[Grant]


@dataclasses.dataclass(frozen=True)
class Entry:
    id: int
    at_ms: int
    kind: str
    grant_id: Optional[int]
    job: Optional[str]
    credits: int
    actor: str
    reason: Optional[str]
    ref: Optional[str]


class CPlanResult(Structure):
    _fields_ = [("outcome", c_int), ("resumed", c_int), ("replayed", c_int),
                ("granted", c_int64), ("effective_ms", c_int64)]


TIER_MAX = 1000  # CM_LEDGER_TIER_MAX


class CPlanInfo(Structure):
    _fields_ = [("has_plan", c_int), ("active", c_int), ("cancelled", c_int),
                ("cancelled_ms", c_int64), ("credits", c_int64), ("interval", c_int),
                ("tier", ctypes.c_char * (TIER_MAX + 1)), ("period_start_ms", c_int64),
                ("period_end_ms", c_int64), ("scheduled", c_int), ("sched_credits", c_int64),
                ("sched_interval", c_int), ("sched_tier", ctypes.c_char * (TIER_MAX + 1)),
                ("sched_ms", c_int64)]


@dataclasses.dataclass(frozen=True)
class PlanChange:
    outcome: str          # "started", "relabelled", "upgraded", "downgrade_scheduled", ...
    resumed: bool
    replayed: bool
    granted: int
    effective_ms: int


@dataclasses.dataclass(frozen=True)
class Plan:
    credits: int
    interval: str
    tier: Optional[str]
    active: bool
    cancelled: bool
    period_start_ms: int
    period_end_ms: int
    scheduled: Optional[tuple]  # (credits, interval, tier, effective_ms) or None


@dataclasses.dataclass(frozen=True)
class Purchase:
    grant_id: int
    credits: int
    unit_minor: int
    total_minor: int
    currency: str
    replayed: bool


@dataclasses.dataclass(frozen=True)
class Refund:
    credits: int
    to_source: int
    refund_grant_id: Optional[int]
    total_refunded: int
    replayed: bool


@dataclasses.dataclass(frozen=True)
class SweepStats:
    holds_lapsed: int
    credits_expired: int
    periods_granted: int


class LedgerError(Exception):
    """The ledger refused or failed a call.

    code: the stable machine name ("insufficient_credits", "conflict", ...);
    number: the C code (CM_LEDGER_E_*, negative); message: the detailed sentence.
    """

    def __init__(self, code, number, message):
        super().__init__("%s: %s" % (code, message))
        self.code = code
        self.number = number
        self.message = message


_lib = None
_lib_lock = threading.Lock()


def _l():
    global _lib
    with _lib_lock:
        if _lib is not None:
            return _lib
        lib = _native.load("creditmeter-ledger")
        f, s, i, i64, v, p = _native.fn, c_char_p, c_int, c_int64, c_void_p, POINTER
        f(lib, "cm_ledger_err_name", s, i)
        f(lib, "cm_ledger_strerror", s, i)
        f(lib, "cm_ledger_errmsg", s, v)
        f(lib, "cm_ledger_config_init", None, p(Config))
        f(lib, "cm_ledger_open", i, p(v), p(Config))
        f(lib, "cm_ledger_close", None, v)
        f(lib, "cm_ledger_workspace_create", i, v, s, s, s)
        f(lib, "cm_ledger_member_add", i, v, s, s, s)
        f(lib, "cm_ledger_member_remove", i, v, s, s, s)
        f(lib, "cm_ledger_plan_set", i, v, s, i64, i, s, s)
        f(lib, "cm_ledger_plan_cancel", i, v, s, s)
        f(lib, "cm_ledger_price_set", i, v, s, s, i64)
        f(lib, "cm_ledger_buy", i, v, s, i64, s, s, p(CPurchase))
        f(lib, "cm_ledger_quote", i, v, s, i64, s, p(p(CQuote)))
        f(lib, "cm_ledger_quote_free", None, p(CQuote))
        f(lib, "cm_ledger_reserve_noted", i, v, s, s, i64, s, i64, s, p(p(CJob)))
        f(lib, "cm_ledger_renew", i, v, s, i64, p(p(CJob)))
        f(lib, "cm_ledger_commit", i, v, s, i64, p(p(CJob)))
        f(lib, "cm_ledger_release", i, v, s, p(p(CJob)))
        f(lib, "cm_ledger_job_info", i, v, s, p(p(CJob)))
        f(lib, "cm_ledger_job_free", None, p(CJob))
        f(lib, "cm_ledger_refund", i, v, s, i64, s, s, s, p(CRefund))
        f(lib, "cm_ledger_balance", i, v, s, s, p(p(CBalance)))
        f(lib, "cm_ledger_balance_free", None, p(CBalance))
        f(lib, "cm_ledger_history", i, v, s, s, p(p(CHistory)))
        f(lib, "cm_ledger_history_free", None, p(CHistory))
        f(lib, "cm_ledger_sweep", i, v, p(CSweep))
        f(lib, "cm_ledger_check", i, v)
        f(lib, "cm_ledger_time_parse", i, s, p(i64))
        f(lib, "cm_ledger_time_format", s, i64, ctypes.c_char_p, c_size_t)
        f(lib, "cm_ledger_grant_kind_name", s, i)
        f(lib, "cm_ledger_hold_state_name", s, i)
        f(lib, "cm_ledger_version", s)
        f(lib, "cm_ledger_plan_set_ref", i, v, s, i64, i, s, s, s, p(CPlanResult))
        f(lib, "cm_ledger_plan_cancel_ref", i, v, s, s, s, p(CPlanResult))
        f(lib, "cm_ledger_plan_show", i, v, s, s, p(CPlanInfo))
        f(lib, "cm_ledger_plan_outcome_name", s, i)
        f(lib, "cm_ledger_price", i, v, s, i64, s, p(CPurchase))
        f(lib, "cm_ledger_money_format", s, i64, s, ctypes.c_char_p, c_size_t)
        _lib = lib
        return lib


def version():
    """The ledger library's release ("0.2.0")."""
    return _native.dec(_l().cm_ledger_version())


def err_name(code):
    """Stable machine name of a CM_LEDGER_E_* code ("unknown" for others)."""
    return _native.dec(_l().cm_ledger_err_name(code))


def time_parse(text):
    """ISO 8601 UTC "YYYY-MM-DDTHH:MM:SS[.fff]Z" to Unix ms; LedgerError if malformed."""
    out = c_int64()
    rc = _l().cm_ledger_time_parse(_native.enc(text), ctypes.byref(out))
    if rc:
        raise LedgerError(err_name(rc), rc, "not an ISO 8601 UTC time: %r" % (text,))
    return out.value


def time_format(ms):
    """Unix ms to "YYYY-MM-DDTHH:MM:SS[.fff]Z"."""
    buf = ctypes.create_string_buffer(32)
    _l().cm_ledger_time_format(ms, buf, len(buf))
    return buf.value.decode()


def _opt_ms(v):
    return None if v < 0 else v


def _takes(lib, arr, n):
    return [Take(t.grant_id, _native.dec(lib.cm_ledger_grant_kind_name(t.kind)), t.credits,
                 t.charged, t.refunded, _opt_ms(t.expires_ms))
            for t in (arr[k] for k in range(n))]


class Ledger(_native.Handle):
    """One open ledger: a SQLite file path or a postgresql:// URI.

    now_ms: a callable returning Unix ms (the ledger's clock; tests inject one), or None
    for the real clock. A Ledger may be shared by threads (the C handle has its mutex).
    Every method raises LedgerError on failure. as_user None means the operator.
    create: True to create the ledger when the location holds none; without it such a
    location raises LedgerError no_such_ledger and nothing is created.
    """

    _FREE = "cm_ledger_close"

    def __init__(self, location=None, *, now_ms=None, busy_timeout_ms=0, synchronous="full",
                 create=False):
        lib = _l()
        cfg = Config()
        lib.cm_ledger_config_init(ctypes.byref(cfg))
        cfg.struct_size = ctypes.sizeof(Config)
        self._location = _native.enc(location)
        cfg.location = self._location
        self._clock = None
        if now_ms is not None:
            self._clock = CLOCK_FN(lambda _user: int(now_ms()))
            cfg.now_ms = self._clock
        if busy_timeout_ms:
            cfg.busy_timeout_ms = busy_timeout_ms
        if synchronous not in SYNC:
            raise ValueError("synchronous must be 'full' or 'normal'")
        cfg.synchronous = SYNC[synchronous]
        cfg.create = 1 if create else 0
        h = c_void_p()
        rc = lib.cm_ledger_open(ctypes.byref(h), ctypes.byref(cfg))
        if rc:
            raise LedgerError(err_name(rc), rc, _native.dec(lib.cm_ledger_errmsg(None)))
        self._h = h
        self._lib = lib

    def _handle(self):
        if not self._h:
            raise LedgerError("invalid_argument", -8, "the ledger is closed")
        return self._h

    def _check(self, rc):
        if rc:
            raise LedgerError(err_name(rc), rc, _native.dec(self._lib.cm_ledger_errmsg(self._h)))

    def _job(self, rc, out):
        self._check(rc)
        try:
            j = out.contents
            return Job(_native.dec(j.job), _native.dec(j.workspace), _native.dec(j.user),
                       _native.dec(self._lib.cm_ledger_hold_state_name(j.state)), j.credits,
                       j.charged, j.refunded, j.lease_s, j.created_ms, j.lease_until_ms,
                       _opt_ms(j.resolved_ms), _takes(self._lib, j.takes, j.n_takes),
                       _native.dec(j.note))
        finally:
            self._lib.cm_ledger_job_free(out)

    # ---- workspaces, members, plans, prices
    def workspace_create(self, ws, owner, region=None):
        e = _native.enc
        self._check(self._lib.cm_ledger_workspace_create(self._handle(), e(ws), e(owner),
                                                         e(region)))

    def member_add(self, ws, user, as_user):
        e = _native.enc
        self._check(self._lib.cm_ledger_member_add(self._handle(), e(ws), e(user), e(as_user)))

    def member_remove(self, ws, user, as_user):
        e = _native.enc
        self._check(self._lib.cm_ledger_member_remove(self._handle(), e(ws), e(user),
                                                      e(as_user)))

    def plan_set(self, ws, credits_per_month, interval="monthly", tier=None, *, as_user,
                 ref=None):
        """Sets the plan; a change never mints credits (see ledger/README.md). ref: the
        payment provider's reference: the same one again returns the first PlanChange."""
        if interval not in INTERVALS:
            raise ValueError("interval must be 'monthly' or 'annual'")
        e = _native.enc
        out = CPlanResult()
        self._check(self._lib.cm_ledger_plan_set_ref(self._handle(), e(ws), credits_per_month,
                                                     INTERVALS[interval], e(tier), e(as_user),
                                                     e(ref), ctypes.byref(out)))
        return self._plan_change(out)

    def plan_cancel(self, ws, *, as_user, ref=None):
        e = _native.enc
        out = CPlanResult()
        self._check(self._lib.cm_ledger_plan_cancel_ref(self._handle(), e(ws), e(as_user),
                                                        e(ref), ctypes.byref(out)))
        return self._plan_change(out)

    def _plan_change(self, out):
        return PlanChange(_native.dec(self._lib.cm_ledger_plan_outcome_name(out.outcome)),
                          bool(out.resumed), bool(out.replayed), out.granted, out.effective_ms)

    def plan_show(self, ws, as_user=None):
        """The workspace's Plan, or None when no plan was ever set."""
        e = _native.enc
        out = CPlanInfo()
        self._check(self._lib.cm_ledger_plan_show(self._handle(), e(ws), e(as_user),
                                                  ctypes.byref(out)))
        if not out.has_plan:
            return None
        names = {v: k for k, v in INTERVALS.items()}
        sched = None
        if out.scheduled:
            sched = (out.sched_credits, names.get(out.sched_interval, "unknown"),
                     out.sched_tier.decode() or None, out.sched_ms)
        return Plan(out.credits, names.get(out.interval, "unknown"), out.tier.decode() or None,
                    bool(out.active), bool(out.cancelled), out.period_start_ms,
                    out.period_end_ms, sched)

    def price(self, ws, credits, as_user=None):
        """What buying credits add-on credits would cost now (a Purchase with grant_id -1):
        nothing is bought."""
        e = _native.enc
        out = CPurchase()
        self._check(self._lib.cm_ledger_price(self._handle(), e(ws), credits, e(as_user),
                                              ctypes.byref(out)))
        return Purchase(out.grant_id, out.credits, out.unit_minor, out.total_minor,
                        out.currency.decode(), bool(out.replayed))

    def money(self, minor, currency):
        """An amount for people, with the currency's decimals: money(75, "USD") -> "0.75 USD"."""
        buf = ctypes.create_string_buffer(64)
        return _native.dec(self._lib.cm_ledger_money_format(minor, _native.enc(currency), buf,
                                                            len(buf)))

    def price_set(self, region, currency, unit_minor):
        e = _native.enc
        self._check(self._lib.cm_ledger_price_set(self._handle(), e(region), e(currency),
                                                  unit_minor))

    def buy(self, ws, credits, *, as_user, payment_ref=None):
        e = _native.enc
        out = CPurchase()
        self._check(self._lib.cm_ledger_buy(self._handle(), e(ws), credits, e(as_user),
                                            e(payment_ref), ctypes.byref(out)))
        return Purchase(out.grant_id, out.credits, out.unit_minor, out.total_minor,
                        out.currency.decode(), bool(out.replayed))

    # ---- quotes and holds
    def quote(self, ws, credits, as_user=None):
        e = _native.enc
        out = POINTER(CQuote)()
        self._check(self._lib.cm_ledger_quote(self._handle(), e(ws), credits, e(as_user),
                                              ctypes.byref(out)))
        try:
            q = out.contents
            return Quote(q.credits, q.available, bool(q.affordable),
                         _takes(self._lib, q.takes, q.n_takes))
        finally:
            self._lib.cm_ledger_quote_free(out)

    def reserve(self, ws, job, credits, user, lease_s=0, note=None):
        e = _native.enc
        out = POINTER(CJob)()
        rc = self._lib.cm_ledger_reserve_noted(self._handle(), e(ws), e(job), credits, e(user),
                                               lease_s, e(note), ctypes.byref(out))
        return self._job(rc, out)

    def renew(self, job, lease_s=0):
        out = POINTER(CJob)()
        rc = self._lib.cm_ledger_renew(self._handle(), _native.enc(job), lease_s,
                                       ctypes.byref(out))
        return self._job(rc, out)

    def commit(self, job, credits=ALL):
        out = POINTER(CJob)()
        rc = self._lib.cm_ledger_commit(self._handle(), _native.enc(job), credits,
                                        ctypes.byref(out))
        return self._job(rc, out)

    def release(self, job):
        out = POINTER(CJob)()
        rc = self._lib.cm_ledger_release(self._handle(), _native.enc(job), ctypes.byref(out))
        return self._job(rc, out)

    def job(self, job):
        """The hold of job, brought up to now (cm_ledger_job_info)."""
        out = POINTER(CJob)()
        rc = self._lib.cm_ledger_job_info(self._handle(), _native.enc(job), ctypes.byref(out))
        return self._job(rc, out)

    # ---- refunds
    def refund(self, job, credits=ALL, *, reason, operator, ref=None):
        e = _native.enc
        out = CRefund()
        self._check(self._lib.cm_ledger_refund(self._handle(), e(job), credits, e(reason),
                                               e(operator), e(ref), ctypes.byref(out)))
        return Refund(out.credits, out.to_source, _opt_ms(out.refund_grant_id),
                      out.total_refunded, bool(out.replayed))

    # ---- reading
    def balance(self, ws, as_user=None):
        e = _native.enc
        out = POINTER(CBalance)()
        self._check(self._lib.cm_ledger_balance(self._handle(), e(ws), e(as_user),
                                                ctypes.byref(out)))
        try:
            b = out.contents
            kind = self._lib.cm_ledger_grant_kind_name
            grants = [Grant(g.id, _native.dec(kind(g.kind)), g.granted, g.remaining, g.held,
                            g.charged, g.expired, g.refunded_into, g.created_ms,
                            _opt_ms(g.expires_ms))
                      for g in (b.grants[k] for k in range(b.n_grants))]
            return Balance(_native.dec(b.workspace), b.available, b.held, grants)
        finally:
            self._lib.cm_ledger_balance_free(out)

    def history(self, ws, as_user=None):
        e = _native.enc
        out = POINTER(CHistory)()
        self._check(self._lib.cm_ledger_history(self._handle(), e(ws), e(as_user),
                                                ctypes.byref(out)))
        try:
            h = out.contents
            d = _native.dec
            return [Entry(x.id, x.at_ms, d(x.kind), None if x.grant_id < 0 else x.grant_id,
                          d(x.job), x.credits, d(x.actor), d(x.reason), d(x.ref))
                    for x in (h.entries[k] for k in range(h.n_entries))]
        finally:
            self._lib.cm_ledger_history_free(out)

    # ---- maintenance
    def sweep(self):
        out = CSweep()
        self._check(self._lib.cm_ledger_sweep(self._handle(), ctypes.byref(out)))
        return SweepStats(out.holds_lapsed, out.credits_expired, out.periods_granted)

    def check(self):
        """Re-derives every balance from the journal; LedgerError("check_failed") if not."""
        self._check(self._lib.cm_ledger_check(self._handle()))
