# SPDX-License-Identifier: MIT
"""Loading the installed shared libraries and the plugin (ctypes, no compiler).

Search order for libcreditmeter-probe.so.0 / libcreditmeter-ledger.so.0:
  1. $CREDITMETER_LIB_DIR, when set (that directory only);
  2. the dynamic loader's normal search (LD_LIBRARY_PATH, the ld.so cache, /usr/lib...).
The plugin: an explicit path, else $CREDITMETER_PLUGIN, else
<directory of the loaded libcreditmeter-ledger.so.0>/creditmeter/libcreditmeter_plugin.so
(the $libdir/creditmeter/ that `cmake --install` uses).

ctypes releases the GIL around every foreign call, so probe and ledger calls run in
parallel in Python threads, as the C handles allow.
"""
import ctypes
import os
import threading

SOVERSION = 0
_lock = threading.Lock()
_libs = {}


class LibraryNotFound(OSError):
    """A creditmeter shared library or the plugin could not be loaded."""


def _soname(name):
    return "lib%s.so.%d" % (name, SOVERSION)


def load(name):
    """The loaded library lib<name>.so.0 (cached)."""
    with _lock:
        lib = _libs.get(name)
        if lib is not None:
            return lib
        soname = _soname(name)
        libdir = os.environ.get("CREDITMETER_LIB_DIR")
        path = os.path.join(libdir, soname) if libdir else soname
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            where = ("in CREDITMETER_LIB_DIR=%s" % libdir if libdir
                     else "through the dynamic loader (set LD_LIBRARY_PATH or "
                          "CREDITMETER_LIB_DIR to the directory of the installed libraries)")
            raise LibraryNotFound("cannot load %s %s: %s" % (soname, where, e)) from None
        _libs[name] = lib
        return lib


class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]


def library_path(lib, symbol):
    """The file a loaded library was found in (dladdr on one of its symbols)."""
    libc = ctypes.CDLL(None)
    dladdr = libc.dladdr
    dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(_DlInfo)]
    dladdr.restype = ctypes.c_int
    info = _DlInfo()
    addr = ctypes.cast(getattr(lib, symbol), ctypes.c_void_p)
    if not dladdr(addr, ctypes.byref(info)) or not info.dli_fname:
        return None
    return os.path.realpath(os.fsdecode(info.dli_fname))


def plugin_path(explicit=None):
    """Where the plugin module is: explicit, $CREDITMETER_PLUGIN or $libdir/creditmeter/."""
    if explicit:
        return os.fspath(explicit)
    env = os.environ.get("CREDITMETER_PLUGIN")
    if env:
        return env
    ledger_file = library_path(load("creditmeter-ledger"), "cm_ledger_version")
    if not ledger_file:
        raise LibraryNotFound("cannot tell where libcreditmeter-ledger.so.0 was loaded from; "
                              "set CREDITMETER_PLUGIN to the plugin's path")
    return os.path.join(os.path.dirname(ledger_file), "creditmeter", "libcreditmeter_plugin.so")


def fn(lib, name, restype, *argtypes):
    """Declares one C function of lib."""
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


def enc(s):
    """str/bytes/PathLike/None to bytes or None for a const char * argument."""
    if s is None:
        return None
    if isinstance(s, bytes):
        return s
    return os.fsencode(s) if isinstance(s, os.PathLike) else s.encode("utf-8")


def dec(b):
    """const char * (bytes) or a char array to str; None stays None."""
    if b is None:
        return None
    if isinstance(b, (bytes, bytearray)):
        return bytes(b).decode("utf-8", "replace")
    return b


class Handle:
    """What every wrapper of a C handle shares: close() once (a second close is a no-op),
    closing on garbage collection and as a context manager. A subclass sets self._h and
    self._lib and names the C function that frees the handle in _FREE."""

    _FREE = None
    _h = None

    def close(self):
        """Closes the handle (no call may be running on it); a second close is a no-op."""
        h, self._h = self._h, None
        if h:
            getattr(self._lib, self._FREE)(h)

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
