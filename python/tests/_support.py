# SPDX-License-Identifier: MIT
"""Shared by the tests: where the samples are, temporary ledgers, a controllable clock."""
import os
import shutil
import tempfile
import threading
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))

# ctest names an install (DESTDIR/prefix) to test against: its lib*/ and include/.
_root = os.environ.get("CM_TEST_INSTALL_ROOT")
if _root:
    for _d in sorted(os.listdir(_root)):
        if _d.startswith("lib") and os.path.exists(
                os.path.join(_root, _d, "libcreditmeter-ledger.so.0")):
            os.environ.setdefault("CREDITMETER_LIB_DIR", os.path.join(_root, _d))
    os.environ.setdefault("CM_TEST_INCLUDE_DIR", os.path.join(_root, "include"))
SAMPLES = os.environ.get("CM_SAMPLES_DIR",
                         os.path.join(HERE, os.pardir, os.pardir, "samples"))
T0 = 1768471200000  # 2026-01-15T10:00:00Z


def sample(name):
    return os.path.join(SAMPLES, name)


class Clock:
    """The ledger's clock in the tests: moves only when told to."""

    def __init__(self, ms=T0):
        self.ms = ms
        self._lock = threading.Lock()

    def __call__(self):
        with self._lock:
            return self.ms

    def advance(self, ms):
        with self._lock:
            self.ms += ms


class TempDirTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cm-py-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def path(self, name):
        return os.path.join(self.tmp, name)
