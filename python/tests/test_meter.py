# SPDX-License-Identifier: MIT
"""creditmeter.Meter and its job context manager, over the real plugin and ledger."""
import os
import subprocess
import sys
import unittest

import creditmeter
from _support import HERE, T0, Clock, TempDirTest, sample

CLIP = sample("clip-40s.mp4")


class MeterTest(TempDirTest):
    def setUp(self):
        super().setUp()
        creditmeter.silence_libav_logs()
        self.clock = Clock()
        self.db = self.path("ledger.db")
        with creditmeter.Ledger(self.db, now_ms=self.clock, create=True) as l:
            l.workspace_create("acme", "alice")
            l.buy("acme", 3, as_user="alice")
        self.logs = []
        self.meter = creditmeter.Meter(self.db, now_ms=self.clock,
                                       log=lambda level, msg: self.logs.append((level, msg)))
        self.addCleanup(self.meter.close)

    def available(self):
        return self.meter.balance("acme")[0]

    def assertMeterError(self, code, fn, *args, **kw):
        with self.assertRaises(creditmeter.MeterError) as cm:
            fn(*args, **kw)
        self.assertEqual(cm.exception.code, code)
        self.assertTrue(cm.exception.message)
        return cm.exception


class Quotes(MeterTest):
    def test_a_quote_holds_nothing_and_names_its_grants(self):
        q = self.meter.quote("job-q", "acme", "alice", CLIP)
        self.assertEqual((q.credits, q.affordable, q.hold_state), (1, True, "none"))
        self.assertEqual(len(q.grants), 1)
        self.assertEqual(q.grants[0][2], 1)
        self.assertIn("1 credit", q.receipt)
        self.assertEqual(self.meter.balance("acme"), (3, 0))

    def test_a_quote_beyond_the_balance_is_not_affordable(self):
        q = self.meter.quote("job-q", "acme", "alice", requested_output_ms=300000)
        self.assertEqual((q.credits, q.affordable), (5, False))
        self.assertEqual(self.meter.balance("acme"), (3, 0))


class JobContext(MeterTest):
    def test_a_block_that_returns_commits_the_quote(self):
        with self.meter.job("job-1", "acme", "alice", CLIP) as job:
            self.assertEqual((job.quote.credits, job.quote.hold_state), (1, "held"))
            self.assertEqual(job.quote.method, "structure_walk")
            self.assertEqual(job.quote.available, 2)
            self.assertEqual(self.meter.balance("acme"), (2, 1))
        self.assertEqual((job.outcome.hold_state, job.outcome.charged), ("committed", 1))
        self.assertEqual(self.meter.balance("acme"), (2, 0))
        self.assertEqual(self.meter.job_state("job-1").hold_state, "committed")

    def test_a_block_that_raises_releases_and_the_exception_propagates(self):
        with self.assertRaises(RuntimeError):
            with self.meter.job("job-1", "acme", "alice", CLIP) as job:
                with job.stage("transcode"):
                    raise RuntimeError("encoder failed")
        self.assertEqual((job.outcome.hold_state, job.outcome.charged), ("released", 0))
        self.assertEqual(self.meter.balance("acme"), (3, 0))
        self.assertTrue(any("encoder failed" in m for _, m in self.logs), self.logs)

    def test_the_lease_is_renewed_while_the_block_runs(self):
        with self.meter.job("job-1", "acme", "alice", CLIP, lease_s=60,
                            renew_every_s=3600) as job:
            before = self.meter.job_state("job-1").lease_until_ms
            self.assertEqual(before, T0 + 60000)
            self.clock.advance(50000)  # 10 s of the lease left: past the 90 % skip
            self.assertTrue(job.renew())
            self.assertEqual(self.meter.job_state("job-1").lease_until_ms, T0 + 110000)
            self.clock.advance(50000)  # past the first lease, within the renewed one
        self.assertEqual(job.outcome.hold_state, "committed")
        self.assertEqual(job.renewals, 1)

    def test_the_background_thread_renews_without_being_asked(self):
        with self.meter.job("job-1", "acme", "alice", CLIP, lease_s=60,
                            renew_every_s=0.01) as job:
            self.clock.advance(50000)
            # Wait for a renewal by the thread (an event, not a duration: bounded by the
            # ctest timeout).
            while self.meter.job_state("job-1").lease_until_ms != T0 + 110000:
                job._stop.wait(0.01)
        self.assertGreaterEqual(job.renewals, 1)
        self.assertEqual(job.outcome.hold_state, "committed")

    def test_a_lapsed_lease_ends_the_block_with_lease_lapsed(self):
        with self.assertRaises(creditmeter.MeterError) as cm:
            with self.meter.job("job-1", "acme", "alice", CLIP, lease_s=60,
                                renew_every_s=3600) as job:
                self.clock.advance(61000)
                self.assertFalse(job.renew())
                self.assertTrue(job.lapsed)
        self.assertEqual(cm.exception.code, "lease_lapsed")
        self.assertEqual(self.available(), 3)

    def test_a_retried_job_id_is_replayed_not_charged_twice(self):
        with self.meter.job("job-1", "acme", "alice", CLIP):
            pass
        with self.meter.job("job-1", "acme", "alice", CLIP) as job:
            self.assertTrue(job.quote.replayed)
        self.assertTrue(job.outcome.replayed)
        self.assertEqual(self.available(), 2)

    def test_a_by_output_job_is_charged_the_output_measured(self):
        with self.meter.job("gen-1", "acme", "alice", requested_output_ms=120000) as job:
            self.assertEqual((job.quote.credits, job.quote.method), (2, "requested"))
            job.output_path = CLIP
        self.assertEqual((job.outcome.charged, job.outcome.quoted), (1, 2))
        self.assertEqual(self.available(), 2)


class Refusals(MeterTest):
    def enter(self, *args, **kw):
        with self.meter.job(*args, **kw):
            self.fail("the block must not run")

    def test_more_than_the_balance_is_insufficient_credits_with_the_quote(self):
        e = self.assertMeterError("insufficient_credits", self.enter, "j", "acme", "alice",
                                  sample("long-10m.mp4"))
        self.assertEqual(e.quote.credits, 10)
        self.assertEqual((e.cause, e.cause_code), ("ledger", "insufficient_credits"))
        self.assertEqual(self.available(), 3)

    def test_a_stranger_is_forbidden(self):
        self.assertMeterError("forbidden", self.enter, "j", "acme", "mallory", CLIP)

    def test_a_missing_input_is_bad_file_caused_by_the_probe(self):
        e = self.assertMeterError("bad_file", self.enter, "j", "acme", "alice",
                                  self.path("nope.mp4"))
        self.assertEqual((e.cause, e.cause_code), ("probe", "no_such_file"))

    def test_an_empty_job_id_is_invalid_argument(self):
        self.assertMeterError("invalid_argument", self.enter, "", "acme", "alice", CLIP)

    def test_a_job_id_reused_for_another_workspace_is_a_conflict(self):
        with creditmeter.Ledger(self.db, now_ms=self.clock) as l:
            l.workspace_create("other", "alice")
            l.buy("other", 3, as_user="alice")
        self.meter.begin("j", "acme", "alice", CLIP)
        self.assertMeterError("conflict", self.enter, "j", "other", "alice", CLIP)

    def test_a_released_job_id_is_closed(self):
        with self.assertRaises(ValueError):
            with self.meter.job("j", "acme", "alice", CLIP):
                raise ValueError("fail")
        self.assertMeterError("job_closed", self.enter, "j", "acme", "alice", CLIP)

    def test_hooks_of_an_unknown_job_are_no_such_job(self):
        self.assertMeterError("no_such_job", self.meter.stage_begin, "nope", "x")
        self.assertMeterError("no_such_job", self.meter.job_state, "nope")

    def test_an_unmeasurable_output_is_bad_output(self):
        with self.assertRaises(creditmeter.MeterError) as cm:
            with self.meter.job("gen-1", "acme", "alice", requested_output_ms=60000) as job:
                job.output_path = self.path("missing-output.mp4")
        self.assertEqual(cm.exception.code, "bad_output")
        self.assertEqual(self.available(), 3)

    def test_a_ledger_that_cannot_open_is_ledger_failure(self):
        p = self.path("text.db")
        with open(p, "w") as f:
            f.write("not a database " * 100)
        e = self.assertMeterError("ledger_failure", creditmeter.Meter, p)
        self.assertEqual((e.cause, e.cause_code), ("ledger", "storage_failure"))

    def test_a_plugin_path_that_does_not_exist_is_library_not_found(self):
        with self.assertRaises(creditmeter.LibraryNotFound):
            creditmeter.Meter(self.db, plugin=self.path("nope.so"))

    def test_every_plugin_code_has_its_name(self):
        from creditmeter import _meter
        for code, name in _meter.ERRORS.items():
            self.assertEqual(self.meter.err_name(code), name)
        self.assertEqual(self.meter.version, creditmeter.__version__)



class Operating(MeterTest):
    def test_metrics_count_the_jobs_in_prometheus_text(self):
        with self.meter.job("m-1", "acme", "alice", CLIP):
            pass
        text = self.meter.metrics()
        self.assertIn("# TYPE cm_plugin_jobs_committed_total counter\n", text)
        self.assertIn("\ncm_plugin_jobs_committed_total 1\n", text)
        self.assertIn("\ncm_plugin_credits_charged_total 1\n", text)
        self.assertTrue(text.endswith("\n"))

    def test_the_ledger_pool_size_is_passed_and_checked(self):
        self.assertIn("\ncm_plugin_ledger_pool_size 4\n", self.meter.metrics())  # default
        with creditmeter.Meter(self.db, now_ms=self.clock, ledger_pool_size=2) as m:
            self.assertIn("\ncm_plugin_ledger_pool_size 2\n", m.metrics())
        e = self.assertMeterError("invalid_argument", creditmeter.Meter, self.db,
                                  ledger_pool_size=65)
        self.assertIn("ledger_pool_size 65", e.message)

    def test_ping_says_the_ledger_is_writable(self):
        self.assertIn("reachable and writable", self.meter.ping())

    def test_a_missing_ledger_is_no_such_ledger_unless_create(self):
        p = self.path("typo.db")
        self.assertMeterError("no_such_ledger", creditmeter.Meter, p)
        self.assertFalse(os.path.exists(p))
        creditmeter.Meter(p, create=True).close()
        self.assertTrue(os.path.exists(p))


CHILD = r"""
import os, sys
sys.path[:0] = [sys.argv[1]]
import creditmeter
meter = creditmeter.Meter(sys.argv[2], now_ms=lambda: int(sys.argv[3]))
with meter.job("crash-1", "acme", "alice", sys.argv[4], lease_s=60, renew_every_s=3600):
    print("held", flush=True)
    os._exit(7)  # a crash: no commit, no release, no Python cleanup
"""


class Crash(MeterTest):
    def test_a_crashed_worker_hold_lapses_after_its_lease(self):
        pkg = os.path.join(HERE, os.pardir)
        proc = subprocess.run([sys.executable, "-c", CHILD, pkg, self.db, str(T0), CLIP],
                              capture_output=True, text=True, timeout=120)
        self.assertEqual((proc.returncode, proc.stdout.strip()), (7, "held"), proc.stderr)
        self.assertEqual(self.meter.job_state("crash-1").hold_state, "held")
        self.assertEqual(self.meter.balance("acme"), (2, 1))
        self.clock.advance(61000)
        state = self.meter.job_state("crash-1")
        self.assertEqual((state.hold_state, state.charged), ("lapsed", 0))
        self.assertEqual(self.meter.balance("acme"), (3, 0))
        with creditmeter.Ledger(self.db, now_ms=self.clock) as l:
            l.check()


if __name__ == "__main__":
    unittest.main()
