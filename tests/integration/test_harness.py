"""The harness's own judgement of the processes a test starts (processes.py): which sanitizer
output is a report that fails a test, and which exit code counts as a clean exit.

Each case starts a real child process that writes what a sanitizer runtime would have written to
its log (<log dir>/san.<its pid>) and exits with the code that runtime would have given it."""

import shutil
import subprocess
import sys
import tempfile
import unittest
from unittest import mock

import processes

# What GCC 12's LeakSanitizer wrote when its tracer crashed at an embedded broker's exit
# (integration.embedded.postgres.faults under ASan; processes.py says more).
TRACER_CRASH = """Tracer caught signal 11: addr=0x4a0 pc=0x7ff7b40e80f0 sp=0x7ff7b06c2d10
==19654==LeakSanitizer has encountered a fatal error.
==19654==HINT: For debugging, try setting environment variable LSAN_OPTIONS=\
verbosity=1:log_threads=1
==19654==HINT: LeakSanitizer does not work under ptrace (strace, gdb, etc)
"""
LEAK = """
=================================================================
==4711==ERROR: LeakSanitizer: detected memory leaks

Direct leak of 24 byte(s) in 1 object(s) allocated from:
    #0 0x7f0 in operator new(unsigned long)
"""
SUSPEND_FAILED = """==10==Could not attach to thread 7 (errno 1).
==10==Failed suspending threads.
==7==LeakSanitizer has encountered a fatal error.
"""
SUPPRESSIONS_ONLY = """-----------------------------------------------------
Suppressions used:
  count      bytes template
     12        821 libcrypto.so
-----------------------------------------------------
"""


class SanitizerJudgement(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="mqttspec-harness-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        patch = mock.patch.object(processes, "_SANITIZER_LOG_DIR", self.dir)
        patch.start()
        self.addCleanup(patch.stop)

    def child(self, log_text, rc):
        """Runs a process that writes `log_text` to its own sanitizer log and exits with `rc`;
        returns (its pid, its exit code as the harness judges it)."""
        code = ("import os, sys\n"
                f"d = {self.dir!r}\n"
                "if sys.argv[1]:\n"
                "    open(os.path.join(d, f'san.{os.getpid()}'), 'w').write(sys.argv[1])\n"
                "sys.exit(int(sys.argv[2]))\n")
        p = subprocess.Popen([sys.executable, "-c", code, log_text, str(rc)])
        return p.pid, processes.exit_code(p.pid, p.wait(30))

    def test_a_crash_of_leaksanitizers_tracer_is_a_clean_exit_and_no_report(self):
        _, rc = self.child(TRACER_CRASH, 1)
        self.assertEqual(rc, 0)
        self.assertEqual(processes.take_sanitizer_reports(), "")

    def test_a_leak_is_a_report_and_its_exit_code_stays(self):
        pid, rc = self.child(LEAK, 1)
        self.assertEqual(rc, 1)
        reports = processes.take_sanitizer_reports()
        self.assertIn(f"san.{pid}", reports)
        self.assertIn("detected memory leaks", reports)

    def test_a_tracer_crash_after_a_report_is_still_a_failure(self):
        pid, rc = self.child(LEAK + TRACER_CRASH, 1)
        self.assertEqual(rc, 1)
        self.assertIn(f"san.{pid}", processes.take_sanitizer_reports())

    def test_another_fatal_error_of_leaksanitizer_is_a_report(self):
        pid, rc = self.child(SUSPEND_FAILED, 1)
        self.assertEqual(rc, 1)
        self.assertIn("Failed suspending threads", processes.take_sanitizer_reports())

    def test_other_exit_codes_and_clean_logs_are_left_as_they_are(self):
        for log, code in ((TRACER_CRASH, 2), (SUPPRESSIONS_ONLY, 1), ("", 1),
                          (SUPPRESSIONS_ONLY, 0)):
            with self.subTest(log=log[:30], code=code):
                self.assertEqual(self.child(log, code)[1], code)
        self.assertEqual(processes.take_sanitizer_reports(), "")


if __name__ == "__main__":
    unittest.main()
