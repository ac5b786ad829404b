# SPDX-License-Identifier: MIT
"""The probe: a media file's real playing time and its price (cm_probe.h)."""
import ctypes
import dataclasses
import threading
from ctypes import POINTER, c_char_p, c_int, c_int64, c_size_t, c_uint32, c_void_p
from typing import List, Optional

from . import _native

CLOCK_FN = ctypes.CFUNCTYPE(c_int64, c_void_p)


class ProbeOptions(ctypes.Structure):
    """struct cm_probe_options (fields are only ever appended; struct_size says which)."""
    _fields_ = [
        ("struct_size", c_uint32),
        ("grace_ms", c_int64),
        ("max_duration_ms", c_int64),
        ("time_budget_ms", c_int64),
        ("max_file_bytes", c_int64),
        ("max_scan_packets", c_int64),
        ("clock_ms", CLOCK_FN),
        ("clock_user", c_void_p),
        ("full_scan", c_int),
    ]


class ProbeError(Exception):
    """The probe refused or could not measure a file.

    code: the stable machine name ("no_such_file", "damaged", ...);
    number: the C code (CM_PROBE_E_*, negative); message: a sentence for a person;
    report: the refused file's Report (its fields as far as they are known) or None.
    """

    def __init__(self, code, number, message, report=None):
        super().__init__("%s: %s" % (code, message))
        self.code = code
        self.number = number
        self.message = message
        self.report = report


@dataclasses.dataclass(frozen=True)
class Stream:
    kind: str   # "video", "audio", "cover", "other"
    codec: str  # "" when unknown


@dataclasses.dataclass(frozen=True)
class Report:
    """What a file bills (cm_probe_report)."""
    file: str
    format: str
    duration_ms: int           # measured real playing time
    declared_ms: Optional[int]  # the header's claim; None when it declares none
    billable_ms: int
    credits: int
    method: str                # "structure_walk" or "packet_scan" (0.1 also wrote "sample_index", "tail_packets")
    note: str                  # "" when header and content agree, else "header_longer", ...
    reason: str                # the note as a sentence ("" when none)
    has_video: bool
    streams: List[Stream]
    file_bytes: int
    bytes_read: int


_lib = None
_lib_lock = threading.Lock()


def _l():
    global _lib
    with _lib_lock:
        if _lib is not None:
            return _lib
        lib = _native.load("creditmeter-probe")
        p = POINTER(c_void_p)  # opaque handles travel as void *
        _native.fn(lib, "cm_probe_options_init", None, POINTER(ProbeOptions))
        _native.fn(lib, "cm_probe_new", c_int, p, POINTER(ProbeOptions))
        _native.fn(lib, "cm_probe_free", None, c_void_p)
        _native.fn(lib, "cm_probe_file", c_int, c_void_p, c_char_p, p)
        _native.fn(lib, "cm_probe_buffer", c_int, c_void_p, c_char_p, c_size_t, c_char_p, p)
        _native.fn(lib, "cm_probe_report_free", None, c_void_p)
        for name, rt in [("error", c_int), ("errmsg", c_char_p), ("file", c_char_p),
                         ("format", c_char_p), ("declared_ms", c_int64),
                         ("measured_ms", c_int64), ("billable_ms", c_int64),
                         ("credits", c_int64), ("has_video", c_int), ("method", c_int),
                         ("note", c_int), ("stream_count", c_int), ("file_bytes", c_int64),
                         ("bytes_read", c_int64)]:
            _native.fn(lib, "cm_probe_report_" + name, rt, c_void_p)
        _native.fn(lib, "cm_probe_report_stream_kind", c_int, c_void_p, c_int)
        _native.fn(lib, "cm_probe_report_stream_codec", c_char_p, c_void_p, c_int)
        for name in ("err_name", "strerror", "method_name", "note_name", "note_text",
                     "stream_kind_name"):
            _native.fn(lib, "cm_probe_" + name, c_char_p, c_int)
        _native.fn(lib, "cm_probe_credits_for", c_int64, c_int64, c_int64)
        _native.fn(lib, "cm_probe_version", c_char_p)
        _native.fn(lib, "cm_probe_silence_libav_logs", None)
        _lib = lib
        return lib


def version():
    """The probe library's release ("0.2.0")."""
    return _native.dec(_l().cm_probe_version())


def err_name(code):
    """Stable machine name of a CM_PROBE_E_* code."""
    return _native.dec(_l().cm_probe_err_name(code))


def silence_libav_logs():
    """Process-wide: turns libavformat's own warnings on stderr off (for command-line
    programs and tests; a library embedding creditmeter should not call it)."""
    _l().cm_probe_silence_libav_logs()


def credits_for(billable_ms, grace_ms=500):
    """max(1, ceil((billable_ms - grace_ms) / 60000))."""
    return _l().cm_probe_credits_for(billable_ms, grace_ms)


class Probe(_native.Handle):
    """A probe with its options: immutable and shareable between threads.

    grace_ms, max_duration_ms, time_budget_ms, max_file_bytes, max_scan_packets: None for
    the library's defaults (500 ms, 24 h, 10 s, 64 GiB, 20 M); full_scan: demux every
    packet instead of the fast paths. Raises ProbeError("invalid_argument") for an option
    out of range.
    """

    _FREE = "cm_probe_free"

    def __init__(self, *, grace_ms=None, max_duration_ms=None, time_budget_ms=None,
                 max_file_bytes=None, max_scan_packets=None, full_scan=False):
        lib = _l()
        opt = ProbeOptions()
        opt.struct_size = ctypes.sizeof(ProbeOptions)
        lib.cm_probe_options_init(ctypes.byref(opt))
        opt.struct_size = ctypes.sizeof(ProbeOptions)
        for k, v in (("grace_ms", grace_ms), ("max_duration_ms", max_duration_ms),
                     ("time_budget_ms", time_budget_ms), ("max_file_bytes", max_file_bytes),
                     ("max_scan_packets", max_scan_packets)):
            if v is not None:
                setattr(opt, k, v)
        opt.full_scan = 1 if full_scan else 0
        h = c_void_p()
        rc = lib.cm_probe_new(ctypes.byref(h), ctypes.byref(opt))
        if rc != 0:
            raise ProbeError(err_name(rc), rc, _native.dec(lib.cm_probe_strerror(rc)))
        self._h = h
        self._lib = lib

    def _report(self, rc, r):
        lib = self._lib
        if not r:
            raise ProbeError(err_name(rc), rc, _native.dec(lib.cm_probe_strerror(rc)))
        try:
            n = lib.cm_probe_report_stream_count(r)
            streams = [Stream(_native.dec(lib.cm_probe_stream_kind_name(
                               lib.cm_probe_report_stream_kind(r, i))),
                              _native.dec(lib.cm_probe_report_stream_codec(r, i)) or "")
                       for i in range(max(n, 0))]
            note = lib.cm_probe_report_note(r)
            declared = lib.cm_probe_report_declared_ms(r)
            rep = Report(
                file=_native.dec(lib.cm_probe_report_file(r)) or "",
                format=_native.dec(lib.cm_probe_report_format(r)) or "",
                duration_ms=lib.cm_probe_report_measured_ms(r),
                declared_ms=None if declared < 0 else declared,
                billable_ms=lib.cm_probe_report_billable_ms(r),
                credits=lib.cm_probe_report_credits(r),
                method=_native.dec(lib.cm_probe_method_name(lib.cm_probe_report_method(r))),
                note="" if note == 0 else _native.dec(lib.cm_probe_note_name(note)),
                reason="" if note == 0 else _native.dec(lib.cm_probe_note_text(note)),
                has_video=bool(lib.cm_probe_report_has_video(r)),
                streams=streams,
                file_bytes=lib.cm_probe_report_file_bytes(r),
                bytes_read=lib.cm_probe_report_bytes_read(r))
            if rc != 0:
                raise ProbeError(err_name(rc), rc,
                                 _native.dec(lib.cm_probe_report_errmsg(r)), rep)
            return rep
        finally:
            lib.cm_probe_report_free(r)

    def file(self, path):
        """Measures a local regular file. Returns a Report; raises ProbeError."""
        r = c_void_p()
        rc = self._lib.cm_probe_file(self._h, _native.enc(path), ctypes.byref(r))
        return self._report(rc, r)

    def buffer(self, data, name="buffer"):
        """Measures a file held in memory (bytes). Returns a Report; raises ProbeError."""
        data = bytes(data)
        r = c_void_p()
        rc = self._lib.cm_probe_buffer(self._h, data, len(data), _native.enc(name),
                                       ctypes.byref(r))
        return self._report(rc, r)


_default = None
_default_lock = threading.Lock()


def probe(path, **options):
    """Measures path with the default options (or with Probe(**options)): a Report.

    Raises ProbeError (.code the machine name) when the file is refused.
    """
    global _default
    if options:
        with Probe(**options) as p:
            return p.file(path)
    with _default_lock:
        if _default is None:
            _default = Probe()
    return _default.file(path)
