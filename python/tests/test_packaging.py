# SPDX-License-Identifier: MIT
"""The binding's structs match the C headers byte for byte, and the package installs."""
import ctypes
import os
import subprocess
import sys
import tempfile
import unittest

import creditmeter
from creditmeter import _ledger, _meter, _probe
from _support import HERE

# ctypes class -> C struct name, with the header that declares it.
STRUCTS = [
    (_probe.ProbeOptions, "cm_probe_options", "cm_probe.h"),
    (_ledger.Config, "cm_ledger_config", "cm_ledger.h"),
    (_ledger.CPurchase, "cm_ledger_purchase", "cm_ledger.h"),
    (_ledger.CTake, "cm_ledger_take", "cm_ledger.h"),
    (_ledger.CQuote, "cm_ledger_quote_result", "cm_ledger.h"),
    (_ledger.CJob, "cm_ledger_job", "cm_ledger.h"),
    (_ledger.CGrant, "cm_ledger_grant", "cm_ledger.h"),
    (_ledger.CBalance, "cm_ledger_balance_result", "cm_ledger.h"),
    (_ledger.CEntry, "cm_ledger_entry", "cm_ledger.h"),
    (_ledger.CHistory, "cm_ledger_history_result", "cm_ledger.h"),
    (_ledger.CRefund, "cm_ledger_refund_result", "cm_ledger.h"),
    (_ledger.CSweep, "cm_ledger_sweep_stats", "cm_ledger.h"),
    (_meter.Config, "cm_plugin_config", "creditmeter_plugin.h"),
    (_meter.JobSpec, "cm_plugin_job_spec", "creditmeter_plugin.h"),
    (_meter.CQuote, "cm_plugin_quote", "creditmeter_plugin.h"),
    (_meter.COutcome, "cm_plugin_outcome", "creditmeter_plugin.h"),
    (_meter.CBalance, "cm_plugin_balance", "creditmeter_plugin.h"),
    (_meter.CJobState, "cm_plugin_job_state", "creditmeter_plugin.h"),
    (_meter.CErrorInfo, "cm_plugin_error_info", "creditmeter_plugin.h"),
    (_meter.Api, "cm_plugin_api", "creditmeter_plugin.h"),
]


class Layout(unittest.TestCase):
    def test_every_struct_matches_its_header_field_for_field(self):
        """A C program, generated from the ctypes fields and compiled against the installed
        headers, prints sizeof and every offsetof; each must equal ctypes'. A field added
        to a header (a minor ABI version) changes sizeof and fails here until bound."""
        include = os.environ.get("CM_TEST_INCLUDE_DIR")
        cc = os.environ.get("CC", "cc")
        if not include:
            self.skipTest("CM_TEST_INCLUDE_DIR (the installed include/) is not set")
        lines = ["#include <stddef.h>", "#include <stdio.h>"]
        lines += ["#include <creditmeter/%s>" % h for h in sorted({h for _, _, h in STRUCTS})]
        lines.append("int main(void) {")
        expected = []
        for cls, cname, _ in STRUCTS:
            lines.append('printf("%s %%zu\\n", sizeof(%s));' % (cname, cname))
            expected.append("%s %d" % (cname, ctypes.sizeof(cls)))
            for field in cls._fields_:
                name = field[0]
                lines.append('printf("%s.%s %%zu\\n", offsetof(%s, %s));'
                             % (cname, name, cname, name))
                expected.append("%s.%s %d" % (cname, name, getattr(cls, name).offset))
        lines.append("return 0; }")
        with tempfile.TemporaryDirectory() as d:
            src, exe = os.path.join(d, "layout.c"), os.path.join(d, "layout")
            with open(src, "w") as f:
                f.write("\n".join(lines) + "\n")
            build = subprocess.run([cc, "-std=c11", "-I", include, "-o", exe, src],
                                   capture_output=True, text=True)
            self.assertEqual(build.returncode, 0, build.stderr)
            got = subprocess.run([exe], capture_output=True, text=True, check=True).stdout
        diffs = ["%s: C says %s, the binding %s" % (e.split()[0], g.split()[1], e.split()[1])
                 for e, g in zip(expected, got.split("\n")) if e != g]
        self.assertEqual(diffs, [], "the ctypes structs differ from the headers (a field "
                         "appended to a header must be appended to the binding's _fields_, "
                         "a function to _meter._API_FUNCTIONS)")


class Loading(unittest.TestCase):
    def run_python(self, code, **env_changes):
        env = dict(os.environ, PYTHONPATH=os.path.join(HERE, os.pardir))
        for k, v in env_changes.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env=env)

    def libdir(self):
        d = os.environ.get("CREDITMETER_LIB_DIR")
        if not d:
            self.skipTest("CREDITMETER_LIB_DIR is not set")
        return os.path.abspath(d)

    def test_the_dynamic_loader_search_finds_the_libraries_through_LD_LIBRARY_PATH(self):
        d = self.libdir()
        p = self.run_python("import creditmeter; print(creditmeter.library_versions()['probe'])",
                            CREDITMETER_LIB_DIR=None, LD_LIBRARY_PATH=d)
        self.assertEqual((p.returncode, p.stdout.strip()), (0, creditmeter.__version__),
                         p.stderr)

    def test_a_directory_without_the_libraries_is_library_not_found(self):
        with tempfile.TemporaryDirectory() as empty:
            p = self.run_python("import creditmeter\n"
                                "try:\n creditmeter.probe('x')\n"
                                "except creditmeter.LibraryNotFound as e: print(e)",
                                CREDITMETER_LIB_DIR=empty)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("libcreditmeter-probe.so.0 in CREDITMETER_LIB_DIR=", p.stdout)

    def test_the_plugin_is_found_in_libdir_creditmeter_next_to_the_ledger(self):
        d = self.libdir()
        p = self.run_python("import creditmeter; from creditmeter import _native; "
                            "print(_native.plugin_path())", CREDITMETER_PLUGIN=None)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(),
                         os.path.join(os.path.realpath(d), "creditmeter",
                                      "libcreditmeter_plugin.so"))
        self.assertTrue(os.path.exists(p.stdout.strip()))

    def test_CREDITMETER_PLUGIN_overrides_the_plugin_path(self):
        p = self.run_python("from creditmeter import _native; print(_native.plugin_path())",
                            CREDITMETER_PLUGIN="/x/plugin.so")
        self.assertEqual(p.stdout.strip(), "/x/plugin.so", p.stderr)


class Package(unittest.TestCase):
    def test_the_package_version_is_the_libraries_version(self):
        self.assertEqual(creditmeter.__version__, _probe.version())
        with open(os.path.join(HERE, os.pardir, "pyproject.toml")) as f:
            self.assertIn('version = "%s"' % creditmeter.__version__, f.read())

    def test_pip_installs_it_without_a_network(self):
        try:
            import setuptools  # noqa: F401
            import wheel  # noqa: F401
        except ImportError:
            self.skipTest("setuptools or wheel is missing for %s (Debian: python3-setuptools "
                          "python3-wheel)" % sys.executable)
        src = os.path.normpath(os.path.join(HERE, os.pardir))
        with tempfile.TemporaryDirectory() as d:
            # Built in a copy: pip writes build/ and *.egg-info next to the sources.
            import shutil
            copy = os.path.join(d, "src")
            shutil.copytree(src, copy, ignore=shutil.ignore_patterns("tests", "__pycache__"))
            target = os.path.join(d, "site")
            pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                                  "--no-build-isolation", "--no-deps", "--no-index",
                                  "--target", target, copy],
                                 capture_output=True, text=True)
            self.assertEqual(pip.returncode, 0, pip.stdout + pip.stderr)
            env = dict(os.environ, PYTHONPATH=target)
            if env.get("CREDITMETER_LIB_DIR"):
                env["CREDITMETER_LIB_DIR"] = os.path.abspath(env["CREDITMETER_LIB_DIR"])
            out = subprocess.run([sys.executable, "-c",
                                  "import creditmeter, sys; sys.stdout.write("
                                  "creditmeter.__file__ + ' ' + "
                                  "creditmeter.library_versions()['ledger'])"],
                                 capture_output=True, text=True, env=env, cwd=d)
            self.assertEqual(out.returncode, 0, out.stderr)
            path, ver = out.stdout.split(" ")
            self.assertTrue(path.startswith(target), path)
            self.assertEqual(ver, creditmeter.__version__)


if __name__ == "__main__":
    unittest.main()
