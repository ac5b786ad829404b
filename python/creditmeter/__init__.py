# SPDX-License-Identifier: MIT
"""creditmeter: meter video processing in prepaid credits (Python binding).

    import creditmeter
    report = creditmeter.probe("upload.mp4")             # Report(duration_ms, credits, ...)
    ledger = creditmeter.Ledger("ledger.db", create=True)  # or "postgresql://..."
    meter = creditmeter.Meter("ledger.db")
    with meter.job("job-42", "acme", "ana", "upload.mp4") as job:
        ...                                               # committed on success

Pure Python over the installed shared libraries (ctypes): libcreditmeter-probe.so.0,
libcreditmeter-ledger.so.0 and the plugin. See creditmeter._native for how they are found.
"""
from ._native import LibraryNotFound
from ._ledger import (ALL, Balance, Entry, Grant, Job, Ledger, LedgerError, Purchase, Quote,
                     Refund, SweepStats, Take, time_format, time_parse)
from ._meter import JobState, Meter, MeteredJob, MeterError, Outcome
from ._meter import Quote as JobQuote
from ._probe import (Probe, ProbeError, Report, Stream, credits_for, probe,
                     silence_libav_logs)

__version__ = "0.2.0"


def library_versions():
    """{"probe": "0.2.0", "ledger": "0.2.0"}: the releases of the loaded libraries."""
    from . import _ledger
    from . import _probe
    return {"probe": _probe.version(), "ledger": _ledger.version()}


__all__ = ["ALL", "Balance", "Entry", "Grant", "Job", "JobQuote", "JobState", "Ledger",
           "LedgerError", "LibraryNotFound", "Meter", "MeteredJob", "MeterError", "Outcome",
           "Probe", "ProbeError", "Purchase", "Quote", "Refund", "Report", "Stream",
           "SweepStats", "Take", "credits_for", "library_versions", "probe",
           "silence_libav_logs", "time_format", "time_parse"]
