# SPDX-License-Identifier: MIT
"""creditmeter.Ledger: every operation, and every error code's mapping to LedgerError."""
import os
import sqlite3
import threading
import unittest

import creditmeter
from creditmeter import _ledger
from _support import T0, Clock, TempDirTest

DAY = 86400 * 1000


class LedgerTest(TempDirTest):
    def setUp(self):
        super().setUp()
        self.clock = Clock()
        self.db = self.path("ledger.db")
        self.l = creditmeter.Ledger(self.db, now_ms=self.clock, create=True)
        self.addCleanup(self.l.close)
        self.l.workspace_create("acme", "alice", "default")

    def assertLedgerError(self, code, number, fn, *args, **kw):
        with self.assertRaises(creditmeter.LedgerError) as cm:
            fn(*args, **kw)
        self.assertEqual((cm.exception.code, cm.exception.number), (code, number))
        self.assertTrue(cm.exception.message)
        return cm.exception


class Operations(LedgerTest):
    def test_buy_then_balance_shows_the_addon_grant(self):
        p = self.l.buy("acme", 10, as_user="alice", payment_ref="pay-1")
        self.assertEqual((p.credits, p.unit_minor, p.total_minor, p.currency, p.replayed),
                         (10, 15, 150, "USD", False))
        self.assertTrue(self.l.buy("acme", 10, as_user="alice", payment_ref="pay-1").replayed)
        b = self.l.balance("acme")
        self.assertEqual((b.workspace, b.available, b.held), ("acme", 10, 0))
        self.assertEqual([(g.kind, g.remaining, g.expires_ms) for g in b.grants],
                         [("addon", 10, None)])

    def test_plan_grants_a_period_and_cancel_keeps_it(self):
        self.l.plan_set("acme", 100, "monthly", "pro", as_user="alice")
        b = self.l.balance("acme", "alice")
        self.assertEqual(b.available, 100)
        self.assertEqual(b.grants[0].kind, "plan")
        self.assertIsNotNone(b.grants[0].expires_ms)
        self.l.plan_cancel("acme", as_user="alice")
        self.assertEqual(self.l.balance("acme").available, 100)

    def test_members_may_reserve_and_removed_ones_may_not(self):
        self.l.buy("acme", 5, as_user="alice")
        self.l.member_add("acme", "bob", as_user="alice")
        self.assertEqual(self.l.reserve("acme", "j1", 2, "bob").state, "held")
        self.l.member_remove("acme", "bob", as_user="alice")
        self.assertLedgerError("no_such_workspace", -3, self.l.reserve, "acme", "j2", 1, "bob")

    def test_price_set_changes_what_buying_costs(self):
        self.l.workspace_create("eu-co", "eve", "eu")
        self.l.price_set("eu", "EUR", 12)
        p = self.l.buy("eu-co", 3, as_user="eve")
        self.assertEqual((p.currency, p.total_minor), ("EUR", 36))

    def test_quote_says_what_would_be_taken_without_holding(self):
        self.l.buy("acme", 5, as_user="alice")
        q = self.l.quote("acme", 3)
        self.assertEqual((q.credits, q.available, q.affordable), (3, 5, True))
        self.assertEqual([t.credits for t in q.takes], [3])
        self.assertFalse(self.l.quote("acme", 6, "alice").affordable)
        self.assertEqual(self.l.balance("acme").held, 0)

    def test_reserve_renew_commit_charges_and_returns_the_rest(self):
        self.l.buy("acme", 10, as_user="alice")
        j = self.l.reserve("acme", "job-1", 4, "alice", lease_s=60, note="40 s measured")
        self.assertEqual((j.job, j.workspace, j.user, j.state, j.credits, j.lease_s),
                         ("job-1", "acme", "alice", "held", 4, 60))
        self.assertIsNone(j.resolved_ms)
        self.assertEqual(j.lease_until_ms, T0 + 60000)
        self.clock.advance(30000)
        self.assertEqual(self.l.renew("job-1", 60).lease_until_ms, T0 + 90000)
        c = self.l.commit("job-1", 3)
        self.assertEqual((c.state, c.charged), ("committed", 3))
        self.assertEqual(self.l.balance("acme").available, 7)
        info = self.l.job("job-1")
        self.assertEqual((info.state, info.note, info.resolved_ms), ("committed",
                                                                    "40 s measured", T0 + 30000))

    def test_release_gives_everything_back(self):
        self.l.buy("acme", 10, as_user="alice")
        self.l.reserve("acme", "job-1", 4, "alice")
        self.assertEqual(self.l.release("job-1").state, "released")
        self.assertEqual(self.l.balance("acme").available, 10)

    def test_refund_reimburses_a_charge_once_per_reference(self):
        self.l.buy("acme", 10, as_user="alice")
        self.l.reserve("acme", "job-1", 4, "alice")
        self.l.commit("job-1")
        r = self.l.refund("job-1", 2, reason="goodwill", operator="ops", ref="r-1")
        self.assertEqual((r.credits, r.total_refunded, r.replayed), (2, 2, False))
        self.assertTrue(self.l.refund("job-1", 2, reason="goodwill", operator="ops",
                                      ref="r-1").replayed)
        self.assertEqual(self.l.balance("acme").available, 8)
        self.assertEqual(self.l.job("job-1").refunded, 2)

    def test_history_is_the_journal_oldest_first(self):
        self.l.buy("acme", 10, as_user="alice", payment_ref="pay-9")
        self.l.reserve("acme", "job-1", 4, "alice")
        self.l.commit("job-1")
        h = self.l.history("acme", "alice")
        kinds = [e.kind for e in h]
        self.assertEqual(kinds[0], "workspace")
        self.assertEqual(kinds[-3:], ["purchase", "hold", "commit"])
        purchase = h[-3]
        self.assertEqual((purchase.credits, purchase.ref, purchase.actor), (10, "pay-9", "alice"))
        self.assertEqual(h[-1].job, "job-1")
        self.assertEqual([e.id for e in h], sorted(e.id for e in h))

    def test_sweep_lapses_holds_past_their_lease(self):
        self.l.buy("acme", 10, as_user="alice")
        self.l.reserve("acme", "job-1", 4, "alice", lease_s=60)
        self.clock.advance(61000)
        s = self.l.sweep()
        self.assertEqual(s.holds_lapsed, 1)
        self.assertEqual(self.l.job("job-1").state, "lapsed")
        self.l.check()

    def test_time_parse_and_format_round_trip(self):
        self.assertEqual(creditmeter.time_parse("2026-01-15T10:00:00Z"), T0)
        self.assertEqual(creditmeter.time_format(T0 + 250), "2026-01-15T10:00:00.250Z")

    def test_versions_are_the_package_version(self):
        self.assertEqual(creditmeter.library_versions(),
                         {"probe": creditmeter.__version__, "ledger": creditmeter.__version__})

    def test_threads_share_one_ledger(self):
        self.l.buy("acme", 100, as_user="alice")
        errors = []

        def worker(n):
            try:
                for k in range(5):
                    job = "t%d-%d" % (n, k)
                    self.l.reserve("acme", job, 1, "alice")
                    self.l.commit(job)
            except Exception as e:  # pragma: no cover - reported below
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(self.l.balance("acme").available, 80)
        self.l.check()


class PlansAndPrices(LedgerTest):
    def test_an_upgrade_tops_up_the_difference_and_a_replayed_ref_grants_nothing(self):
        c = self.l.plan_set("acme", 100, "monthly", "basic", as_user="alice", ref="sub-1")
        self.assertEqual((c.outcome, c.granted, c.replayed), ("started", 100, False))
        self.clock.advance(7 * 86400000)
        c = self.l.plan_set("acme", 300, "monthly", "pro", as_user="alice", ref="sub-2")
        self.assertEqual((c.outcome, c.granted), ("upgraded", 200))
        again = self.l.plan_set("acme", 300, "monthly", "pro", as_user="alice", ref="sub-2")
        self.assertEqual((again.outcome, again.granted, again.replayed), ("upgraded", 200, True))
        self.assertEqual(self.l.balance("acme").available, 300)
        self.assertLedgerError("conflict", -5, self.l.plan_set, "acme", 500, "monthly",
                               as_user="alice", ref="sub-2")

    def test_plan_show_reports_the_period_and_a_scheduled_downgrade(self):
        self.assertIsNone(self.l.plan_show("acme"))
        self.l.plan_set("acme", 300, "monthly", "pro", as_user="alice")
        c = self.l.plan_set("acme", 100, "monthly", "basic", as_user="alice")
        self.assertEqual((c.outcome, c.granted), ("downgrade_scheduled", 0))
        plan = self.l.plan_show("acme", "alice")
        self.assertEqual((plan.credits, plan.interval, plan.tier, plan.active, plan.cancelled),
                         (300, "monthly", "pro", True, False))
        self.assertEqual(plan.period_start_ms, T0)
        self.assertEqual(plan.scheduled, (100, "monthly", "basic", plan.period_end_ms))
        self.assertEqual(self.l.plan_cancel("acme", as_user="alice").outcome, "cancelled")
        self.assertIsNone(self.l.plan_show("acme").scheduled)

    def test_price_tells_the_cost_before_buying_and_money_uses_the_decimals(self):
        p = self.l.price("acme", 5)
        self.assertEqual((p.grant_id, p.unit_minor, p.total_minor, p.currency),
                         (-1, 15, 75, "USD"))
        self.assertEqual(self.l.balance("acme").available, 0)
        self.assertEqual(self.l.money(75, "USD"), "0.75 USD")
        self.assertEqual(self.l.money(12000, "INR"), "120.00 INR")
        self.assertEqual(self.l.money(500, "JPY"), "500 JPY")


class Errors(LedgerTest):
    def test_more_than_available_is_insufficient_credits(self):
        self.assertLedgerError("insufficient_credits", -1, self.l.reserve, "acme", "j", 1,
                               "alice")

    def test_a_member_buying_is_forbidden(self):
        self.l.member_add("acme", "bob", as_user="alice")
        self.assertLedgerError("forbidden", -2, self.l.buy, "acme", 1, as_user="bob")

    def test_an_unknown_workspace_is_no_such_workspace(self):
        self.assertLedgerError("no_such_workspace", -3, self.l.balance, "nope")

    def test_an_unknown_job_is_no_such_job(self):
        self.assertLedgerError("no_such_job", -4, self.l.job, "nope")

    def test_a_key_reused_with_other_arguments_is_a_conflict(self):
        self.l.buy("acme", 5, as_user="alice")
        self.l.reserve("acme", "j", 1, "alice")
        self.assertLedgerError("conflict", -5, self.l.reserve, "acme", "j", 2, "alice")

    def test_commit_after_release_is_already_resolved(self):
        self.l.buy("acme", 5, as_user="alice")
        self.l.reserve("acme", "j", 1, "alice")
        self.l.release("j")
        self.assertLedgerError("already_resolved", -6, self.l.commit, "j")

    def test_renew_after_the_lease_is_lease_expired(self):
        self.l.buy("acme", 5, as_user="alice")
        self.l.reserve("acme", "j", 1, "alice", lease_s=10)
        self.clock.advance(11000)
        self.assertLedgerError("lease_expired", -7, self.l.renew, "j")

    def test_an_empty_id_is_invalid_argument(self):
        self.assertLedgerError("invalid_argument", -8, self.l.workspace_create, "", "x")

    def test_a_locked_database_is_busy(self):
        l2 = creditmeter.Ledger(self.db, now_ms=self.clock, busy_timeout_ms=50)
        self.addCleanup(l2.close)
        other = sqlite3.connect(self.db, isolation_level=None)
        self.addCleanup(other.close)
        other.execute("BEGIN EXCLUSIVE")
        try:
            self.assertLedgerError("busy", -9, l2.buy, "acme", 1, as_user="alice")
        finally:
            other.execute("ROLLBACK")

    def test_a_missing_ledger_is_no_such_ledger_and_no_file_is_made(self):
        p = self.path("typo.db")
        self.assertLedgerError("no_such_ledger", -16, creditmeter.Ledger, p)
        self.assertFalse(os.path.exists(p))
        with creditmeter.Ledger(p, create=True) as l:
            l.check()
        self.assertTrue(os.path.exists(p))

    def test_a_file_that_is_not_a_ledger_is_a_storage_failure(self):
        p = self.path("text.db")
        with open(p, "w") as f:
            f.write("not a database, just text " * 100)
        self.assertLedgerError("storage_failure", -10, creditmeter.Ledger, p)

    def test_a_tampered_balance_fails_the_check(self):
        self.l.buy("acme", 5, as_user="alice")
        self.l.close()
        raw = sqlite3.connect(self.db)
        tables = [r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        self.assertIn("grants", tables)
        raw.execute("UPDATE grants SET remaining = remaining + 7")
        raw.commit()
        raw.close()
        self.l = creditmeter.Ledger(self.db, now_ms=self.clock)
        e = self.assertLedgerError("check_failed", -12, self.l.check)
        self.assertIn("grant", e.message)

    def test_postgresql_without_libpq_is_unsupported(self):
        if os.environ.get("CM_TEST_WITH_POSTGRES", "0") != "0":
            self.skipTest("these libraries were built with PostgreSQL")
        e = self.assertLedgerError("unsupported", -15, creditmeter.Ledger,
                                   "postgresql://localhost/creditmeter")
        self.assertIn("without PostgreSQL", e.message)

    def test_a_closed_ledger_refuses_calls(self):
        self.l.close()
        self.assertLedgerError("invalid_argument", -8, self.l.balance, "acme")

    def test_every_code_has_its_machine_name(self):
        # out_of_memory cannot be provoked from Python: its name comes from the same table.
        self.assertEqual(_ledger.err_name(-11), "out_of_memory")
        names = [_ledger.err_name(c) for c in range(0, -16, -1)]
        self.assertEqual(len(set(names)), 16)
        self.assertEqual(_ledger.err_name(-999), "unknown")

    def test_bad_interval_and_sync_are_refused_before_the_library(self):
        with self.assertRaises(ValueError):
            self.l.plan_set("acme", 10, "weekly", as_user="alice")
        with self.assertRaises(ValueError):
            creditmeter.Ledger(self.db, synchronous="sometimes")


if __name__ == "__main__":
    unittest.main()
