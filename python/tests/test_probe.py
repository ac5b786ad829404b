# SPDX-License-Identifier: MIT
"""creditmeter.probe and Probe: reports and every error code's mapping."""
import os
import threading
import unittest

import creditmeter
from creditmeter import _probe
from _support import TempDirTest, sample


def setUpModule():
    creditmeter.silence_libav_logs()


class ProbeReports(unittest.TestCase):
    def test_probe_reports_the_measured_duration_and_credits(self):
        r = creditmeter.probe(sample("clip-40s.mp4"))
        self.assertIsInstance(r, creditmeter.Report)
        self.assertEqual(r.credits, 1)
        self.assertTrue(39500 <= r.duration_ms <= 40600, r.duration_ms)
        self.assertEqual(r.declared_ms, 40000)
        self.assertEqual(r.billable_ms, r.duration_ms)
        self.assertEqual(r.method, "structure_walk")
        self.assertEqual((r.note, r.reason), ("", ""))
        self.assertTrue(r.has_video)
        self.assertEqual([s.kind for s in r.streams], ["video", "audio"])
        self.assertEqual(r.file, sample("clip-40s.mp4"))
        self.assertGreater(r.file_bytes, 0)

    def test_a_header_without_duration_reads_as_none_with_its_reason(self):
        r = creditmeter.probe(sample("exact-3m00.ts"))
        self.assertIsNone(r.declared_ms)
        self.assertEqual(r.credits, 3)
        self.assertEqual(r.note, "no_header_duration")
        self.assertTrue(r.reason)

    def test_probe_accepts_a_path_object(self):
        import pathlib
        self.assertEqual(creditmeter.probe(pathlib.Path(sample("clip-40s.mp4"))).credits, 1)

    def test_options_change_the_price(self):
        # 60.4 s: 1 credit with the default 500 ms grace, 2 without grace.
        self.assertEqual(creditmeter.probe(sample("edge-60.4s.mkv")).credits, 1)
        self.assertEqual(creditmeter.probe(sample("edge-60.4s.mkv"), grace_ms=0).credits, 2)

    def test_buffer_measures_bytes_in_memory(self):
        with open(sample("clip-40s.mp4"), "rb") as f:
            data = f.read()
        with creditmeter.Probe() as p:
            r = p.buffer(data, "upload")
        self.assertEqual((r.file, r.credits), ("upload", 1))

    def test_credits_for_is_one_per_started_minute_after_the_grace(self):
        self.assertEqual(creditmeter.credits_for(180000), 3)
        self.assertEqual(creditmeter.credits_for(182000), 4)
        self.assertEqual(creditmeter.credits_for(0), 1)

    def test_threads_share_one_probe(self):
        results, errors = [], []

        def run():
            try:
                results.append(creditmeter.probe(sample("clip-40s.mp4")).credits)
            except Exception as e:  # pragma: no cover - reported below
                errors.append(e)

        threads = [threading.Thread(target=run) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual((results, errors), ([1, 1, 1, 1], []))


class ProbeErrors(TempDirTest):
    def assertProbeError(self, code, number, path, **options):
        with self.assertRaises(creditmeter.ProbeError) as cm:
            creditmeter.probe(path, **options)
        self.assertEqual((cm.exception.code, cm.exception.number), (code, number))
        self.assertTrue(cm.exception.message)
        return cm.exception

    def test_missing_file_is_no_such_file(self):
        e = self.assertProbeError("no_such_file", -3, self.path("nope.mp4"))
        self.assertEqual(e.report.credits, 0)

    def test_directory_is_not_a_regular_file(self):
        self.assertProbeError("not_a_regular_file", -4, self.tmp)

    @unittest.skipIf(os.geteuid() == 0, "root reads any file")
    def test_unreadable_file_is_unreadable(self):
        p = self.path("locked.mp4")
        with open(p, "wb") as f:
            f.write(b"x" * 100)
        os.chmod(p, 0)
        self.assertProbeError("unreadable", -5, p)

    def test_empty_file_is_empty_file(self):
        self.assertProbeError("empty_file", -6, sample("bad/empty.mp4"))

    def test_random_bytes_are_not_media(self):
        self.assertProbeError("not_media", -7, sample("bad/random.bin"))

    def test_subtitles_only_have_no_audio_or_video(self):
        self.assertProbeError("no_audio_or_video", -8, sample("bad/subs-only.mkv"))

    def test_a_playlist_is_a_refused_format(self):
        self.assertProbeError("refused_format", -9, sample("bad/playlist.m3u8"))

    def test_longer_than_the_maximum_is_too_long(self):
        self.assertProbeError("too_long", -10, sample("clip-40s.mp4"), max_duration_ms=10000)

    def test_a_cut_off_mp4_without_index_is_damaged(self):
        self.assertProbeError("damaged", -11, sample("bad/truncated-noindex.mp4"))

    def test_larger_than_the_maximum_is_too_big(self):
        self.assertProbeError("too_big", -14, sample("clip-40s.mp4"), max_file_bytes=1000)

    def test_an_option_out_of_range_is_invalid_argument(self):
        with self.assertRaises(creditmeter.ProbeError) as cm:
            creditmeter.Probe(grace_ms=60000)
        self.assertEqual((cm.exception.code, cm.exception.number), ("invalid_argument", -1))

    def test_every_code_has_its_machine_name(self):
        # out_of_memory, timed_out and libav_error cannot be provoked from Python: their
        # names come from the same table as the others.
        names = {c: _probe.err_name(c) for c in range(0, -15, -1)}
        self.assertEqual(names[-2], "out_of_memory")
        self.assertEqual(names[-12], "timed_out")
        self.assertEqual(names[-13], "libav_error")
        self.assertEqual(len(set(names.values())), 15)
        self.assertEqual(_probe.err_name(-999), "unknown_error")


if __name__ == "__main__":
    unittest.main()
