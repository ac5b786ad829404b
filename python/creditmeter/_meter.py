# SPDX-License-Identifier: MIT
"""Metering jobs through the plugin (creditmeter_plugin.h), with a context manager.

    meter = Meter("ledger.db")
    with meter.job("job-42", "acme", "ana", "upload.mp4") as job:
        print(job.quote.credits)     # quoted and reserved on entry
        transcode(...)               # the lease is renewed in the background meanwhile
    # committed on normal exit; released if the block raised

The structs below are creditmeter_plugin.h's, field for field. A minor ABI version only
appends (struct fields, table functions): add the new fields at the end of the matching
_fields_ list (and, for a function, to _API_FUNCTIONS), and check api.struct_size before
calling it (Meter._fn does).
"""
import ctypes
import dataclasses
import threading
from ctypes import POINTER, Structure, c_char, c_char_p, c_int, c_int64, c_uint32, c_void_p
from typing import Optional

from . import _native

ABI_MAJOR = 1
ABI_MINOR = 3
ENTRY_SYMBOL = "cm_plugin_entry"

BY_INPUT = 1
BY_OUTPUT = 2

NOW_FN = ctypes.CFUNCTYPE(c_int64, c_void_p)
LOG_FN = ctypes.CFUNCTYPE(None, c_void_p, c_int, c_char_p)
LOG_RECORD_FN = ctypes.CFUNCTYPE(None, c_void_p, c_void_p)  # ABI 1.2; not used here

ERRORS = {0: "ok", -1: "invalid_argument", -2: "out_of_memory", -3: "insufficient_credits",
          -4: "forbidden", -5: "bad_file", -6: "conflict", -7: "job_closed",
          -8: "lease_lapsed", -9: "no_such_job", -10: "bad_output", -11: "ledger_failure",
          -12: "abi_mismatch", -13: "no_such_ledger"}
CAUSES = {0: None, 1: "probe", 2: "ledger"}


class Config(Structure):
    _fields_ = [("struct_size", c_uint32), ("ledger", c_char_p), ("grace_ms", c_int64),
                ("default_lease_s", c_int64), ("probe_max_duration_ms", c_int64),
                ("probe_time_budget_ms", c_int64), ("probe_max_file_bytes", c_int64),
                ("now_ms", NOW_FN), ("clock_user", c_void_p), ("log", LOG_FN),
                ("log_user", c_void_p), ("ledger_busy_timeout_ms", c_int),
                # ABI 1.2
                ("reserved_1_0", c_int), ("log_record", LOG_RECORD_FN),
                ("log_min_level", c_int), ("create", c_int), ("keepalive_divisor", c_int),
                ("reserved_1_2", c_int),
                # ABI 1.3
                ("ledger_pool_size", c_int), ("reserved_1_3", c_int)]


class JobSpec(Structure):
    _fields_ = [("struct_size", c_uint32), ("job", c_char_p), ("workspace", c_char_p),
                ("user", c_char_p), ("billing", c_int), ("input_path", c_char_p),
                ("requested_output_ms", c_int64), ("lease_s", c_int64)]


class CQuoteGrant(Structure):
    _fields_ = [("grant_id", c_int64), ("kind", c_int), ("credits", c_int64),
                ("expires_ms", c_int64)]


QUOTE_GRANTS = 8  # CM_PLUGIN_QUOTE_GRANTS


class CQuote(Structure):
    _fields_ = [("struct_size", c_uint32), ("credits", c_int64), ("measured_ms", c_int64),
                ("declared_ms", c_int64), ("billable_ms", c_int64), ("method", c_int),
                ("method_name", c_char * 24), ("note", c_char * 160), ("hold_state", c_int),
                ("replayed", c_int), ("lease_until_ms", c_int64), ("available", c_int64),
                ("cause", c_int), ("cause_code", c_int), ("message", c_char * 256),
                # ABI 1.1
                ("affordable", c_int), ("n_grants", c_int),
                ("grants", CQuoteGrant * QUOTE_GRANTS), ("receipt", c_char * 400)]


class COutcome(Structure):
    _fields_ = [("struct_size", c_uint32), ("hold_state", c_int), ("quoted", c_int64),
                ("charged", c_int64), ("output_ms", c_int64), ("replayed", c_int),
                ("cause", c_int), ("cause_code", c_int), ("message", c_char * 256)]


class CBalance(Structure):
    _fields_ = [("struct_size", c_uint32), ("available", c_int64), ("held", c_int64)]


class CJobState(Structure):
    _fields_ = [("struct_size", c_uint32), ("hold_state", c_int), ("credits", c_int64),
                ("charged", c_int64), ("refunded", c_int64), ("lease_until_ms", c_int64),
                ("resolved_ms", c_int64), ("workspace", c_char * 128), ("user", c_char * 128)]


class CErrorInfo(Structure):
    _fields_ = [("struct_size", c_uint32), ("code", c_int), ("cause", c_int),
                ("cause_code", c_int), ("message", c_char * 256)]


# The function table, in ABI order. Append new functions at the end.
_API_FUNCTIONS = [
    ("open", ctypes.CFUNCTYPE(c_int, POINTER(Config), POINTER(c_void_p), POINTER(CErrorInfo))),
    ("close", ctypes.CFUNCTYPE(None, c_void_p)),
    ("job_begin", ctypes.CFUNCTYPE(c_int, c_void_p, POINTER(JobSpec), POINTER(CQuote))),
    ("stage_begin", ctypes.CFUNCTYPE(c_int, c_void_p, c_char_p, c_char_p)),
    ("stage_end", ctypes.CFUNCTYPE(c_int, c_void_p, c_char_p, c_char_p, c_int, c_char_p)),
    ("job_end", ctypes.CFUNCTYPE(c_int, c_void_p, c_char_p, c_int, c_char_p,
                                 POINTER(COutcome))),
    ("balance", ctypes.CFUNCTYPE(c_int, c_void_p, c_char_p, c_char_p, POINTER(CBalance))),
    ("job_state", ctypes.CFUNCTYPE(c_int, c_void_p, c_char_p, POINTER(CJobState))),
    ("last_error", ctypes.CFUNCTYPE(c_int, c_void_p, POINTER(CErrorInfo))),
    ("err_name", ctypes.CFUNCTYPE(c_char_p, c_int)),
    ("strerror", ctypes.CFUNCTYPE(c_char_p, c_int)),
    ("cause_name", ctypes.CFUNCTYPE(c_char_p, c_int, c_int)),
    ("hold_state_name", ctypes.CFUNCTYPE(c_char_p, c_int)),
    # ABI 1.1
    ("quote", ctypes.CFUNCTYPE(c_int, c_void_p, POINTER(JobSpec), POINTER(CQuote))),
    # ABI 1.2
    ("metrics", ctypes.CFUNCTYPE(c_int64, c_void_p, c_void_p, ctypes.c_size_t)),
    ("ping", ctypes.CFUNCTYPE(c_int, c_void_p, POINTER(CErrorInfo))),
    ("log_level_name", ctypes.CFUNCTYPE(c_char_p, c_int)),
]


class Api(Structure):
    _fields_ = [("abi_major", c_uint32), ("abi_minor", c_uint32), ("struct_size", c_uint32),
                ("version", c_char_p)] + _API_FUNCTIONS


def _sized(cls):
    s = cls()
    s.struct_size = ctypes.sizeof(cls)
    return s


class MeterError(Exception):
    """A plugin call failed.

    code: the plugin's machine name ("insufficient_credits", "bad_file", ...);
    number: the C code (CM_PLUGIN_E_*); message: a sentence; cause: "probe", "ledger" or
    None; cause_code: that module's machine name ("damaged", "busy") or None;
    quote: the Quote of a refused job_begin, else None.
    """

    def __init__(self, code, number, message, cause=None, cause_code=None, quote=None):
        super().__init__("%s: %s" % (code, message))
        self.code = code
        self.number = number
        self.message = message
        self.cause = cause
        self.cause_code = cause_code
        self.quote = quote


@dataclasses.dataclass(frozen=True)
class Quote:
    credits: int
    measured_ms: int
    declared_ms: Optional[int]
    billable_ms: int
    method: str
    note: str
    hold_state: str
    replayed: bool
    lease_until_ms: int
    available: Optional[int]
    affordable: bool = True
    grants: tuple = ()      # (grant_id, kind, credits, expires_ms or None), spending order
    receipt: str = ""       # why it costs that, as the ledger keeps it for support


@dataclasses.dataclass(frozen=True)
class Outcome:
    hold_state: str
    quoted: int
    charged: int
    output_ms: Optional[int]
    replayed: bool


@dataclasses.dataclass(frozen=True)
class JobState:
    hold_state: str
    credits: int
    charged: int
    refunded: int
    lease_until_ms: int
    resolved_ms: Optional[int]
    workspace: str
    user: str


class Meter:
    """One plugin handle on one ledger (cm_plugin open/close). Thread-safe.

    ledger: SQLite path or postgresql:// URI. plugin: the plugin's path (default:
    $CREDITMETER_PLUGIN, else $libdir/creditmeter/libcreditmeter_plugin.so next to the
    loaded libcreditmeter-ledger.so.0). now_ms: the ledger's clock (a callable returning
    Unix ms; tests inject one). log: a callable(level, message). create: True to create
    a missing ledger (else a missing one is MeterError "no_such_ledger"). Other keywords
    are the cm_plugin_config fields of the same names (0/-1: the defaults).
    """

    def __init__(self, ledger, *, plugin=None, grace_ms=-1, default_lease_s=0,
                 probe_max_duration_ms=0, probe_time_budget_ms=0, probe_max_file_bytes=0,
                 now_ms=None, log=None, ledger_busy_timeout_ms=0, create=False,
                 keepalive_divisor=0, log_min_level=2, ledger_pool_size=0):
        self.path = _native.plugin_path(plugin)
        try:
            self._dl = ctypes.CDLL(self.path, mode=ctypes.RTLD_LOCAL)
        except OSError as e:
            raise _native.LibraryNotFound("cannot load the plugin %s: %s (set "
                                          "CREDITMETER_PLUGIN)" % (self.path, e)) from None
        entry = getattr(self._dl, ENTRY_SYMBOL)
        entry.restype = POINTER(Api)
        entry.argtypes = [c_uint32, c_uint32]
        api = entry(ABI_MAJOR, ABI_MINOR)
        if not api:
            raise MeterError("abi_mismatch", -12, "the plugin %s cannot serve ABI %d.%d"
                             % (self.path, ABI_MAJOR, ABI_MINOR))
        self._api = api.contents
        if (self._api.abi_major != ABI_MAJOR or self._api.abi_minor < ABI_MINOR
                or self._api.struct_size < ctypes.sizeof(Api)):
            raise MeterError("abi_mismatch", -12, "the plugin's table (ABI %d.%d, %d bytes) "
                             "does not serve this binding" % (self._api.abi_major,
                                                              self._api.abi_minor,
                                                              self._api.struct_size))
        self.version = _native.dec(self._api.version)
        cfg = _sized(Config)
        self._ledger = _native.enc(ledger)
        cfg.ledger = self._ledger
        cfg.grace_ms = grace_ms
        cfg.default_lease_s = default_lease_s
        cfg.probe_max_duration_ms = probe_max_duration_ms
        cfg.probe_time_budget_ms = probe_time_budget_ms
        cfg.probe_max_file_bytes = probe_max_file_bytes
        cfg.ledger_busy_timeout_ms = ledger_busy_timeout_ms
        cfg.create = 1 if create else 0
        cfg.keepalive_divisor = keepalive_divisor
        cfg.ledger_pool_size = ledger_pool_size  # 0: the plugin's default (4)
        cfg.log_min_level = log_min_level  # 2: CM_PLUGIN_LOG_DEBUG, everything
        # The callbacks must outlive the handle: kept on self.
        self._now = NOW_FN(lambda _u: int(now_ms())) if now_ms else None
        self._log = (LOG_FN(lambda _u, level, msg: log(level, _native.dec(msg)))
                     if log else None)
        if self._now:
            cfg.now_ms = self._now
        if self._log:
            cfg.log = self._log
        h = c_void_p()
        err = _sized(CErrorInfo)
        rc = self._api.open(ctypes.byref(cfg), ctypes.byref(h), ctypes.byref(err))
        if rc:
            raise self._error(rc, err.message, err.cause, err.cause_code)
        self._h = h

    def metrics(self):
        """The handle's metrics, Prometheus text exposition format (ABI 1.2)."""
        fn = self._fn("metrics")
        n = fn(self._h, None, 0)
        if n < 0:
            raise self._error(int(n), self._api.strerror(int(n)))
        buf = ctypes.create_string_buffer(n + 1)
        n = fn(self._h, ctypes.cast(buf, c_void_p), n + 1)
        return _native.dec(buf.value)

    def ping(self):
        """The ledger reachable and writable: returns the message, or raises MeterError
        ("ledger_failure", with the ledger's cause code: "busy", ...)."""
        err = _sized(CErrorInfo)
        rc = self._fn("ping")(self._h, ctypes.byref(err))
        if rc:
            raise self._error(rc, err.message, err.cause, err.cause_code)
        return _native.dec(err.message)

    def _fn(self, name):
        """A table function, checked to lie inside the plugin's table (appended ones)."""
        end = getattr(Api, name).offset + ctypes.sizeof(c_void_p)
        if end > self._api.struct_size:
            raise MeterError("abi_mismatch", -12, "the plugin %s has no %s" % (self.version,
                                                                               name))
        return getattr(self._api, name)

    def _error(self, rc, message, cause=0, cause_code=0, quote=None):
        cname = CAUSES.get(cause)
        ccode = (_native.dec(self._api.cause_name(cause, cause_code)) if cname else None)
        return MeterError(_native.dec(self._api.err_name(rc)), rc, _native.dec(message),
                          cname, ccode, quote)

    def _last_error(self, rc):
        err = _sized(CErrorInfo)
        self._fn("last_error")(self._h, ctypes.byref(err))
        if err.code == rc:
            return self._error(rc, err.message, err.cause, err.cause_code)
        return self._error(rc, self._api.strerror(rc))

    def _state(self, s):
        return _native.dec(self._api.hold_state_name(s))

    def close(self):
        """Closes the handle: no job of it may be running. Jobs not ended lapse."""
        h, self._h = getattr(self, "_h", None), None
        if h:
            self._api.close(h)

    __del__ = close

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- the hooks -------------------------------------------------------------------
    def begin(self, job_id, workspace, user, input_path=None, *, requested_output_ms=0,
              lease_s=0):
        """job_begin: probe (by input) or take requested_output_ms (by output), quote and
        reserve. Returns the Quote; raises MeterError (with .quote) when refused."""
        spec = self._spec(job_id, workspace, user, input_path, requested_output_ms, lease_s)
        q = _sized(CQuote)
        rc = self._fn("job_begin")(self._h, ctypes.byref(spec), ctypes.byref(q))
        quote = self._quote(q)
        if rc:
            raise self._error(rc, q.message, q.cause, q.cause_code, quote)
        return quote

    def quote(self, job_id, workspace, user, input_path=None, *, requested_output_ms=0):
        """quote (ABI 1.1): the price before anything happens. Probes the input (or takes
        requested_output_ms), prices it and says whether the workspace can afford it and
        from which grants; nothing is held. Returns the Quote (affordable or not); raises
        MeterError when the input or the workspace is refused."""
        spec = self._spec(job_id, workspace, user, input_path, requested_output_ms, 0)
        q = _sized(CQuote)
        rc = self._fn("quote")(self._h, ctypes.byref(spec), ctypes.byref(q))
        quote = self._quote(q)
        if rc:
            raise self._error(rc, q.message, q.cause, q.cause_code, quote)
        return quote

    @staticmethod
    def _spec(job_id, workspace, user, input_path, requested_output_ms, lease_s):
        """A cm_plugin_job_spec; its strings are bytes objects the struct keeps alive."""
        e = _native.enc
        spec = _sized(JobSpec)
        spec.job, spec.workspace, spec.user, spec.input_path = (e(job_id), e(workspace), e(user),
                                                                e(input_path))
        spec.billing = BY_OUTPUT if requested_output_ms else BY_INPUT
        spec.requested_output_ms = requested_output_ms
        spec.lease_s = lease_s
        return spec

    def _quote(self, q):
        n = max(0, min(q.n_grants, QUOTE_GRANTS))
        grants = tuple((g.grant_id, g.kind, g.credits, None if g.expires_ms < 0 else g.expires_ms)
                       for g in q.grants[:n])
        return Quote(q.credits, q.measured_ms, None if q.declared_ms < 0 else q.declared_ms,
                     q.billable_ms, _native.dec(q.method_name), _native.dec(q.note),
                     self._state(q.hold_state), bool(q.replayed), q.lease_until_ms,
                     None if q.available < 0 else q.available, bool(q.affordable), grants,
                     _native.dec(q.receipt))

    def stage_begin(self, job_id, stage):
        """Marks a stage's start and renews the lease; MeterError("lease_lapsed") means stop."""
        rc = self._fn("stage_begin")(self._h, _native.enc(job_id), _native.enc(stage))
        if rc:
            raise self._last_error(rc)

    def stage_end(self, job_id, stage, ok=True, message=None):
        rc = self._fn("stage_end")(self._h, _native.enc(job_id), _native.enc(stage),
                                   1 if ok else 0, _native.enc(message))
        if rc:
            raise self._last_error(rc)

    def end(self, job_id, ok, output_path=None):
        """job_end: ok commits, not ok releases. Returns the Outcome; raises MeterError."""
        o = _sized(COutcome)
        rc = self._fn("job_end")(self._h, _native.enc(job_id), 1 if ok else 0,
                                 _native.enc(output_path), ctypes.byref(o))
        if rc:
            raise self._error(rc, o.message, o.cause, o.cause_code)
        return Outcome(self._state(o.hold_state), o.quoted, o.charged,
                       None if o.output_ms < 0 else o.output_ms, bool(o.replayed))

    def balance(self, workspace, user=None):
        """(available, held) credits of workspace as user sees them (None: the operator)."""
        b = _sized(CBalance)
        rc = self._fn("balance")(self._h, _native.enc(workspace), _native.enc(user),
                                 ctypes.byref(b))
        if rc:
            raise self._last_error(rc)
        return b.available, b.held

    def job_state(self, job_id):
        """The ledger's state of a job's hold, brought up to now."""
        s = _sized(CJobState)
        rc = self._fn("job_state")(self._h, _native.enc(job_id), ctypes.byref(s))
        if rc:
            raise self._last_error(rc)
        return JobState(self._state(s.hold_state), s.credits, s.charged, s.refunded,
                        s.lease_until_ms, None if s.resolved_ms < 0 else s.resolved_ms,
                        _native.dec(s.workspace), _native.dec(s.user))

    def err_name(self, code):
        return _native.dec(self._api.err_name(code))

    def job(self, job_id, workspace, user, input_path=None, *, requested_output_ms=0,
            lease_s=0, renew_every_s=None):
        """A context manager for one job (see the module's docstring).

        renew_every_s: how often the background thread renews the lease while the block
        runs (default: a third of the lease, at most 60 s).
        """
        return MeteredJob(self, job_id, workspace, user, input_path, requested_output_ms,
                          lease_s, renew_every_s)


class MeteredJob:
    """One running job: quote on entry, lease renewed in the background, commit/release
    on exit. Inside the block: .quote, .stage(name) (a context manager around a stage),
    .output_path (by output: set it to the file to measure before the block ends),
    .lapsed (the lease lapsed: stop, nothing will be charged), .renew() (renew now).
    After: .outcome (None when job_end failed). When the block returns and job_end
    fails (lease_lapsed, bad_output, ledger_failure) that MeterError is raised; when the
    block raised, its exception propagates and job_end's error is kept in .end_error."""

    def __init__(self, meter, job_id, workspace, user, input_path, requested_output_ms,
                 lease_s, renew_every_s):
        self.meter = meter
        self.job_id = job_id
        self._args = (workspace, user, input_path)
        self._requested = requested_output_ms
        self._lease_s = lease_s
        if renew_every_s is None:
            lease = lease_s or 900
            renew_every_s = min(60.0, lease / 3.0)
        self._every = renew_every_s
        self._lock = threading.Lock()  # the hooks of one job never overlap
        self._stop = threading.Event()
        self._thread = None
        self.quote = None
        self.outcome = None
        self.output_path = None
        self.lapsed = False
        self.renewals = 0
        self.renew_error = None  # the last failed renewal other than a lapse (busy ledger)
        self.end_error = None    # job_end's error when the block raised (not re-raised)

    def __enter__(self):
        ws, user, path = self._args
        self.quote = self.meter.begin(self.job_id, ws, user, path,
                                      requested_output_ms=self._requested,
                                      lease_s=self._lease_s)
        self._thread = threading.Thread(target=self._renew_loop, daemon=True,
                                        name="creditmeter-renew-%s" % self.job_id)
        self._thread.start()
        return self

    def _renew_loop(self):
        while not self._stop.wait(self._every):
            self.renew()

    def renew(self):
        """Renews the lease now (what the background thread does); False once lapsed."""
        with self._lock:
            if self.lapsed or self.outcome is not None:
                return False
            try:
                self.meter.stage_begin(self.job_id, "running")
                self.renewals += 1
                return True
            except MeterError as e:
                if e.code == "lease_lapsed":
                    self.lapsed = True
                else:
                    self.renew_error = e  # transient (ledger busy): the next tick retries
                return False

    class _Stage:
        def __init__(self, job, name):
            self.job, self.name = job, name

        def __enter__(self):
            with self.job._lock:
                self.job.meter.stage_begin(self.job.job_id, self.name)
            return self

        def __exit__(self, exc_type, exc, tb):
            with self.job._lock:
                msg = None if exc is None else "%s: %s" % (exc_type.__name__, exc)
                try:
                    self.job.meter.stage_end(self.job.job_id, self.name, exc is None, msg)
                except MeterError:
                    if exc is None:
                        raise
            return False

    def stage(self, name):
        """with job.stage("transcode"): ... marks the stage (renewing the lease)."""
        return MeteredJob._Stage(self, name)

    def __exit__(self, exc_type, exc, tb):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            ok = exc_type is None
            try:
                self.outcome = self.meter.end(self.job_id, ok, self.output_path)
            except MeterError as e:
                if ok:
                    raise
                # The block's own exception matters more; the hold lapses in any case.
                self.end_error = e
        return False
