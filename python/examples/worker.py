#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A transcode worker: probe, reserve, run ffmpeg, commit on success or release on failure.

    worker.py LEDGER WORKSPACE USER JOB_ID INPUT OUTPUT
"""
import subprocess
import sys

import creditmeter


def main(ledger, workspace, user, job_id, src, dst):
    meter = creditmeter.Meter(ledger)
    try:
        report = creditmeter.probe(src)  # the price, shown before anything runs
        print("%s: %.3f s (%s) -> %d credit(s)" % (src, report.duration_ms / 1000,
                                                    report.method, report.credits))
        with meter.job(job_id, workspace, user, src) as job:  # quote + reserve
            with job.stage("transcode"):                       # lease renewed meanwhile
                subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", src, "-c:v", "libx264",
                                "-preset", "veryfast", "-c:a", "aac", dst], check=True)
    except (creditmeter.ProbeError, creditmeter.MeterError) as e:  # nothing held or charged
        sys.exit("refused: %s (%s)" % (e.code, e.message))
    except subprocess.CalledProcessError as e:   # failed: the hold was released
        sys.exit("ffmpeg failed (exit %d): released %d credit(s)" % (e.returncode,
                                                                     job.outcome.quoted))
    print("charged %d credit(s); %d left" % (job.outcome.charged, meter.balance(workspace)[0]))


if __name__ == "__main__":
    if len(sys.argv) != 7:
        sys.exit(__doc__)
    main(*sys.argv[1:])
