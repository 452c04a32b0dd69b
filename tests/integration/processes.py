"""Process and network helpers of the mqttspec test harness: where the binaries are, free
loopback ports, waiting (bounded in time) for a process to listen, and random names.

In sanitizer builds (scripts/test-sanitizers), server_env() is the environment of every process
that may load the broker plugin into Mosquitto (mqttspecd, which execs it in embedded mode, or a
Mosquitto started with the plugin), and sanitizer reports of the processes a test starts fail it
(take_sanitizer_reports(); at the latest when the test's python process exits).

Environment:
  MQTTSPECD  absolute path of the server binary (default: <repo>/build/bin/mqttspecd)
  MOSQUITTO  broker binary (default: mosquitto from PATH, then /usr/sbin/mosquitto)
  MQTTSPEC_TEST_SANITIZER_PRELOAD  set by ctest in sanitizer builds: the sanitizer runtime,
             preloaded (server_env()) into the processes that may load our code into a binary
             built without it — Mosquitto with the embedded plugin
  MQTTSPEC_TEST_SANITIZER_LOG_DIR  set by ctest in sanitizer builds: where the ASan/LSan/TSan
             reports of the processes this test starts are written (log_path), not their stderr
"""

import atexit
import glob
import os
import shutil
import socket
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def default_server_binary():
    return os.environ.get("MQTTSPECD") or os.path.join(REPO, "build", "bin", "mqttspecd")


def mosquitto_binary():
    env = os.environ.get("MOSQUITTO")
    if env:
        return env
    return shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def server_env():
    """The environment of a process that may load the broker plugin into Mosquitto (mqttspecd,
    or Mosquitto itself): ours, plus in ASan builds the sanitizer runtime preloaded — Mosquitto is
    not built with it; LD_PRELOAD survives mqttspecd's exec of it."""
    env = dict(os.environ)
    preload = os.environ.get("MQTTSPEC_TEST_SANITIZER_PRELOAD")
    if preload:
        env["LD_PRELOAD"] = " ".join(p for p in (preload, env.get("LD_PRELOAD")) if p)
    return env


# The reports of this python process's children: each process writes <dir>/san.<pid> (ASan,
# LeakSanitizer at exit, and LeakSanitizer's list of the suppressions it used, which is no report;
# or TSan's warnings) into a directory any user may write to — the embedded broker may run as user
# mosquitto. UBSan reports go to the process's stderr (GCC's UBSan ignores log_path next to ASan)
# and are fatal (-fno-sanitize-recover): the process dies, which fails the test.
_SANITIZER_LOG_DIR = os.environ.get("MQTTSPEC_TEST_SANITIZER_LOG_DIR")
_reports_seen = set()


def _init_sanitizer_logs():
    os.makedirs(_SANITIZER_LOG_DIR, exist_ok=True)
    os.chmod(_SANITIZER_LOG_DIR, 0o1777)
    for old in glob.glob(os.path.join(_SANITIZER_LOG_DIR, "san.*")):  # a previous run's
        os.remove(old)
    for var in ("ASAN_OPTIONS", "TSAN_OPTIONS"):
        options = os.environ.get(var, "")
        os.environ[var] = ":".join(o for o in (options, f"log_path={_SANITIZER_LOG_DIR}/san") if o)
    atexit.register(_fail_on_unseen_reports)


# LeakSanitizer checks a process for leaks when it exits, from a "tracer" task that stops the
# process's threads with ptrace. Now and then that tracer itself crashes ("Tracer caught signal
# 11: addr=0x4a0 …", then "LeakSanitizer has encountered a fatal error.") and the process exits
# with ASan's exit code 1: no leak was found, the check did not finish. An open bug of the
# sanitizer runtime (google/sanitizers#1353, #1170), seen here once in ~900 ASan tests, under
# load, at the final SIGTERM of an embedded broker whose log held only that. It says nothing about
# the process, so the harness warns of an inconclusive leak check and takes that exit code 1 for
# the clean exit it was (exit_code()). Any other sanitizer output, a fatal error of another kind
# included, is a report and fails the test (take_sanitizer_reports()).
_TRACER_CRASH = ("Tracer caught signal", "LeakSanitizer has encountered a fatal error")


def _is_report(text):
    if "ERROR: " in text or "WARNING: ThreadSanitizer" in text:  # not "Suppressions used"
        return True
    return "has encountered a fatal error" in text and not _is_tracer_crash(text)


def _is_tracer_crash(text):
    return all(s in text for s in _TRACER_CRASH) and "ERROR: " not in text


def _read_log(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def _sanitizer_log(pid):
    if not _SANITIZER_LOG_DIR:
        return ""
    try:
        return _read_log(os.path.join(_SANITIZER_LOG_DIR, f"san.{pid}"))
    except FileNotFoundError:
        return ""


def exit_code(pid, rc):
    """The exit code `rc` of process `pid` as the tests judge it: 0 where LeakSanitizer's tracer
    crashed at its exit (above) and nothing else went wrong, else rc itself."""
    if rc == 1 and _is_tracer_crash(_sanitizer_log(pid)):
        sys.stderr.write(f"[harness] process {pid}: leak check inconclusive, LeakSanitizer's "
                         f"tracer crashed at exit (google/sanitizers#1353); exit code 1 taken "
                         f"as 0\n")
        return 0
    return rc


def take_sanitizer_reports():
    """The text of every sanitizer report written by a child process since the last call
    ("" if none, or not a sanitizer build)."""
    if not _SANITIZER_LOG_DIR:
        return ""
    texts = []
    for path in sorted(glob.glob(os.path.join(_SANITIZER_LOG_DIR, "san.*"))):
        if path in _reports_seen:
            continue
        text = _read_log(path)
        if _is_report(text):
            _reports_seen.add(path)
            texts.append(f"----- {path} -----\n" + text)
    return "\n".join(texts)


def _fail_on_unseen_reports():
    # unittest has already chosen the exit code; a report nobody took fails the run anyway.
    reports = take_sanitizer_reports()
    if reports:
        sys.stdout.flush()
        sys.stderr.write("\nsanitizer reports of processes this test started:\n" + reports + "\n")
        sys.stderr.flush()
        os._exit(1)


if _SANITIZER_LOG_DIR:
    _init_sanitizer_logs()


def free_port():
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, deadline, proc=None, what="process"):
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not accept connections on port {port} in time")


def random_suffix(n=8):
    return uuid.uuid4().hex[:n]
