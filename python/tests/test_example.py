# SPDX-License-Identifier: MIT
"""python/examples/worker.py: a real ffmpeg transcode charged, a failed one released."""
import os
import shutil
import subprocess
import sys
import unittest

import creditmeter
from _support import HERE, TempDirTest, sample

WORKER = os.path.join(HERE, os.pardir, "examples", "worker.py")


@unittest.skipIf(shutil.which("ffmpeg") is None, "ffmpeg is not installed")
class Worker(TempDirTest):
    def setUp(self):
        super().setUp()
        self.db = self.path("ledger.db")
        with creditmeter.Ledger(self.db, create=True) as l:
            l.workspace_create("acme", "ana")
            l.buy("acme", 5, as_user="ana")

    def run_worker(self, job, src, dst):
        env = dict(os.environ, PYTHONPATH=os.path.join(HERE, os.pardir))
        return subprocess.run([sys.executable, WORKER, self.db, "acme", "ana", job, src, dst],
                              capture_output=True, text=True, env=env, timeout=240)

    def available(self):
        with creditmeter.Ledger(self.db) as l:
            return l.balance("acme").available

    def test_a_successful_transcode_is_charged_its_minutes(self):
        out = self.path("out.mp4")
        p = self.run_worker("job-1", sample("clip-40s.mp4"), out)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("charged 1 credit(s); 4 left", p.stdout)
        self.assertEqual(creditmeter.probe(out).credits, 1)
        self.assertEqual(self.available(), 4)

    def test_a_failed_transcode_is_released(self):
        p = self.run_worker("job-1", sample("clip-40s.mp4"), self.path("no/such/dir/out.mp4"))
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("released 1 credit(s)", p.stderr)
        self.assertEqual(self.available(), 5)

    def test_a_refused_input_holds_nothing(self):
        p = self.run_worker("job-1", sample("bad/random.bin"), self.path("out.mp4"))
        self.assertEqual(p.returncode, 1)
        self.assertIn("refused: not_media", p.stderr)
        self.assertEqual(self.available(), 5)


if __name__ == "__main__":
    unittest.main()
