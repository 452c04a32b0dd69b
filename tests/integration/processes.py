"""Process and network helpers of the mqttspec test harness: where the binaries are, free
loopback ports, waiting (bounded in time) for a process to listen, and random names.

Environment:
  MQTTSPECD  absolute path of the server binary (default: <repo>/build/bin/mqttspecd)
  MOSQUITTO  broker binary (default: mosquitto from PATH, then /usr/sbin/mosquitto)
"""

import os
import shutil
import socket
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
