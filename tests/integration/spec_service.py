"""Service, the process manager of the mqttspec test harness: mqttspecd (and in external mode a
Mosquitto broker) in a temp dir of its own, started, restarted and stopped with every wait
bounded in time, and its database read from outside (Service.db_snapshot(), Service.db_query()).

Two modes (Service(mode=…), default from MQTTSPEC_MODE):
  external  a real Mosquitto broker plus mqttspecd as its client (broker.mode: external)
  embedded  mqttspecd alone (broker.mode: embedded): it execs Mosquitto with the mqttspec plugin,
            so the service's process is the broker (one PID, one log)
Two databases (Service(db=…), default from MQTTSPEC_DB):
  sqlite    a SQLite file in the service's temp dir (database.driver: sqlite)
  postgres  a fresh database of its own on a PostgreSQL server (database.driver: postgres),
            created at start and dropped at stop (pg_helpers.py)

Environment:
  MQTTSPEC_MODE       external (default) | embedded: the mode of Service() when none is given
  MQTTSPEC_DB         sqlite (default) | postgres: the database of Service() when none is given
  MQTTSPEC_LOG_LEVEL  mqttspecd's log.level (default: info)
  MQTTSPEC_KEEP_TMP   if set, the temp dirs (and PostgreSQL databases) are kept and named on stderr
  and those of processes.py (MQTTSPECD, MOSQUITTO) and pg_helpers.py (MQTTSPEC_PG_URL[_FILE]).
"""

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

from pg_helpers import (pg_admin_url, pg_create_database, pg_drop_database, pg_query, pg_snapshot,
                        pg_url_with_database)
from processes import (default_server_binary, exit_code, free_port, mosquitto_binary,
                       random_suffix, server_env, take_sanitizer_reports, wait_port)
from spec_client import SpecClient
from spec_models import USERS_MODEL
from yamlgen import to_yaml


def default_mode():
    """The mode of a Service() that names none: $MQTTSPEC_MODE, else external."""
    mode = os.environ.get("MQTTSPEC_MODE", "").strip().lower() or "external"
    if mode not in ("external", "embedded"):
        raise RuntimeError(f"MQTTSPEC_MODE must be external or embedded, not {mode!r}")
    return mode


def default_db():
    """The database of a Service() that names none: $MQTTSPEC_DB, else sqlite."""
    db = os.environ.get("MQTTSPEC_DB", "").strip().lower() or "sqlite"
    if db not in ("sqlite", "postgres"):
        raise RuntimeError(f"MQTTSPEC_DB must be sqlite or postgres, not {db!r}")
    return db


class Service:
    """mqttspecd with a SQLite database in a temp dir, or (db="postgres") a PostgreSQL database
    of its own.

    mode "external": a Mosquitto broker plus mqttspecd as its client. mode "embedded": mqttspecd
    alone, which execs Mosquitto with the mqttspec plugin (the broker is self.server). The default
    mode is $MQTTSPEC_MODE (external if unset). client_username/client_password are used by the
    readiness probe and by client() when the broker requires credentials.
    """

    def __init__(self, extra_models=(), limits=None, log_level=None, server_binary=None,
                 broker_extra=None, mode=None, client_username=None, client_password=None,
                 db=None, database_extra=None, config_extra=None):
        self.mode = mode or default_mode()
        if self.mode not in ("external", "embedded"):
            raise ValueError(f"mode must be external or embedded, not {self.mode!r}")
        self.db = db or default_db()
        if self.db not in ("sqlite", "postgres"):
            raise ValueError(f"db must be sqlite or postgres, not {self.db!r}")
        self.pg_admin_url = None  # postgres: the server's admin URL
        self.pg_database = None   # postgres: this service's own database, while it exists
        self.pg_url = None        # postgres: database.url of the service
        self.client_username = client_username
        self.client_password = client_password
        self.probe_client_id = None  # the readiness probe's client id (default: random)
        self.models = [USERS_MODEL] + list(extra_models)
        self.broker_extra = dict(broker_extra or {})  # merged into the config's broker: section
        self.database_extra = dict(database_extra or {})  # … and database: section
        self.config_extra = dict(config_extra or {})  # top-level sections (e.g. changes:)
        self.limits = dict(limits or {})
        self.log_level = log_level or os.environ.get("MQTTSPEC_LOG_LEVEL", "info")
        self.server_binary = server_binary or default_server_binary()
        self.tmp = None
        self.port = None
        self.broker = None
        self.server = None
        self.server_client_id = "mqttspec-server-" + random_suffix()
        self.clients = []
        self.final_log = ""
        self._files = []

    # paths
    @property
    def db_path(self):
        return os.path.join(self.tmp, "test.db")

    @property
    def server_log_path(self):
        return os.path.join(self.tmp, "mqttspecd.log")

    @property
    def broker_log_path(self):  # external mode; in embedded mode the broker logs to the server log
        return os.path.join(self.tmp, "mosquitto.log")

    @property
    def data_dir(self):  # embedded mode: broker.data_dir (generated mosquitto.conf, mosquitto.db)
        return os.path.join(self.tmp, "data")

    @property
    def config_path(self):
        return os.path.join(self.tmp, "mqttspecd.yaml")

    @property
    def embedded(self):
        return self.mode == "embedded"

    @property
    def postgres(self):
        return self.db == "postgres"

    def table_name(self, entity, schema="public"):
        """The model's table as `meta` names it: SQLite "users" / "<schema>_<entity>",
        PostgreSQL "<schema>.<entity>"."""
        if self.postgres:
            return f"{schema}.{entity}"
        return entity if schema == "public" else f"{schema}_{entity}"

    # lifecycle
    def start(self, timeout=10.0):
        if not os.path.isfile(self.server_binary) or not os.access(self.server_binary, os.X_OK):
            raise RuntimeError(f"mqttspecd not found or not executable: {self.server_binary} "
                               "(set MQTTSPECD)")
        self.tmp = tempfile.mkdtemp(prefix="mqttspec-it-")
        os.chmod(self.tmp, 0o755)
        try:
            if self.postgres:
                self._create_pg_database()
            if self.embedded:
                self.port = free_port()
            else:
                self._start_broker(timeout)
            self._start_server(timeout)
        except BaseException as e:
            log = self.log_tail()
            self._cleanup_processes()
            self._remove_tmp()
            self._drop_pg_database()
            raise RuntimeError(f"service did not start: {e}\n{log}") from None

    def restart_broker(self, down_s=0.0, timeout=10.0):
        """Stops the broker (SIGTERM), waits down_s, and starts it again on the same port.

        Embedded mode: the broker is mqttspecd itself: SIGTERM (it must exit 0 within 10 s, which
        also saves the broker's persistence), then mqttspecd starts again with the same port,
        data_dir and database; returns when it answers ping.
        """
        if self.embedded:
            self.stop_server()
            time.sleep(down_s)
            self._start_server(timeout)
            return
        self.broker.terminate()
        self.broker.wait(10)
        time.sleep(down_s)
        self._start_broker(timeout, port=self.port)

    def stop_server(self, timeout=10.0):
        """SIGTERM to mqttspecd; asserts exit code 0 within `timeout` s (killed otherwise) and
        (sanitizer builds) no sanitizer report."""
        proc, self.server = self.server, None
        if proc is None:
            return
        if proc.poll() is not None:
            raise AssertionError(f"mqttspecd had already exited with code {proc.returncode}\n"
                                 + self.log_tail())
        proc.send_signal(signal.SIGTERM)
        try:
            rc = exit_code(proc.pid, proc.wait(timeout))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
            raise AssertionError(f"mqttspecd did not exit within {timeout} s of SIGTERM\n"
                                 + self.log_tail()) from None
        if rc != 0:
            raise AssertionError(f"mqttspecd exited with code {rc} after SIGTERM\n"
                                 + self.log_tail())
        reports = take_sanitizer_reports()
        if reports:
            raise AssertionError("sanitizer reports:\n" + reports)

    def _start_broker(self, timeout, port=None):
        self.port = port or free_port()
        conf = os.path.join(self.tmp, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write(f"listener {self.port} 127.0.0.1\n"
                    "allow_anonymous true\n"
                    "set_tcp_nodelay true\n"  # mandatory, MOSQUITTO.md §6
                    "persistence false\n"
                    "log_dest stdout\n"
                    "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
                    "user root\n")  # as root the broker would drop to user mosquitto
        os.chmod(conf, 0o644)
        log = open(self.broker_log_path, "ab")
        self._files.append(log)
        self.broker = subprocess.Popen([mosquitto_binary(), "-c", conf], stdout=log,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_port(self.port, time.monotonic() + timeout, self.broker, "mosquitto")

    def config_dict(self):
        if self.embedded:
            broker = {"mode": "embedded", "host": "127.0.0.1", "port": self.port,
                      "data_dir": self.data_dir, **self.broker_extra}
        else:
            broker = {"mode": "external", "url": f"tcp://127.0.0.1:{self.port}",
                      "client_id": self.server_client_id, **self.broker_extra}
        if self.postgres:
            database = {"driver": "postgres", "url": self.pg_url}
        else:
            database = {"driver": "sqlite", "path": self.db_path, "synchronous": "normal"}
        database.update(self.database_extra)
        cfg = {
            "broker": broker,
            "database": database,
            "admin": {"listen": ""},
            "models": self.models,
            "log": {"level": self.log_level},
        }
        if self.limits:
            cfg["limits"] = self.limits
        cfg.update(self.config_extra)
        return cfg

    def _start_server(self, timeout):
        conf = self.config_path
        with open(conf, "w") as f:
            f.write(to_yaml(self.config_dict()))
        os.chmod(conf, 0o644)
        log = open(self.server_log_path, "ab")  # appended across restarts
        self._files.append(log)
        self.server = subprocess.Popen([self.server_binary, "--config", conf], stdout=log,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       cwd=self.tmp, env=server_env())
        deadline = time.monotonic() + timeout
        if self.embedded:  # the broker is mqttspecd: wait for its listener
            wait_port(self.port, deadline, self.server, "mqttspecd (embedded)")
        probe_id = self.probe_client_id or ("mqttspec-probe-" + random_suffix())
        probe = SpecClient(self.port, probe_id, username=self.client_username,
                           password=self.client_password)
        try:
            while True:
                if self.server.poll() is not None:
                    raise RuntimeError(f"mqttspecd exited with code {self.server.returncode}")
                probe.send_raw({"type": "ping", "id": "p"})
                try:
                    m = probe.wait_for(lambda t, m, p: m.get("id") == "p", 0.5, "pong")[1]
                    if m.get("type") == "pong":
                        return
                    raise RuntimeError(f"ping answered with {m!r}")
                except AssertionError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("mqttspecd did not answer ping in time") from None
        finally:
            probe.close()

    def client(self, client_id=None, protocol="3.1.1", prefix="spec", **kw):
        """A connected SpecClient (kw: clean_session, username, password, …, see SpecClient)."""
        if self.client_username is not None and "username" not in kw:
            kw["username"], kw["password"] = self.client_username, self.client_password
        c = SpecClient(self.port, client_id or ("it-" + random_suffix()), protocol=protocol,
                       prefix=prefix, **kw)
        self.clients.append(c)
        return c

    def alive(self):
        return self.server is not None and self.server.poll() is None

    def stop(self):
        """SIGTERM to mqttspecd: it must exit with 0 within 10 s, and (sanitizer builds) no
        process may have written a sanitizer report. Always cleans everything up."""
        problems = []
        for c in self.clients:
            c.close()
        self.clients = []
        try:
            if self.server is not None:
                if self.server.poll() is not None:
                    problems.append(f"mqttspecd had already exited with code "
                                    f"{self.server.returncode} before SIGTERM")
                else:
                    self.server.send_signal(signal.SIGTERM)
                    try:
                        rc = exit_code(self.server.pid, self.server.wait(10))
                        if rc != 0:
                            problems.append(f"mqttspecd exited with code {rc} after SIGTERM")
                    except subprocess.TimeoutExpired:
                        problems.append("mqttspecd did not exit within 10 s of SIGTERM")
        finally:
            self.final_log = self.log_tail()
            self._cleanup_processes()
            self._remove_tmp()
            self._drop_pg_database()
        reports = take_sanitizer_reports()
        if reports:
            problems.append("sanitizer reports:\n" + reports)
        if problems:
            raise AssertionError("; ".join(problems) + "\n" + self.final_log)

    def _cleanup_processes(self):
        if self.broker is not None and self.broker.poll() is None:
            self.broker.terminate()  # a clean exit flushes the broker's log (stdout is a file)
            try:
                self.broker.wait(5)
            except subprocess.TimeoutExpired:
                pass
        for proc in (self.server, self.broker):
            if proc is not None and proc.poll() is None:
                proc.kill()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    pass
        for f in self._files:
            try:
                f.close()
            except OSError:
                pass
        self._files = []

    def _remove_tmp(self):
        if self.tmp and os.path.isdir(self.tmp):
            if os.environ.get("MQTTSPEC_KEEP_TMP"):
                sys.stderr.write(f"[harness] kept {self.tmp}\n")
            else:
                shutil.rmtree(self.tmp, ignore_errors=True)

    def log_tail(self, lines=120):
        out = []
        names = (("mqttspecd (with the embedded broker)" if self.embedded else "mqttspecd",
                  self.server_log_path if self.tmp else None),
                 ("mosquitto", self.broker_log_path if self.tmp else None))
        for name, path in names:
            if not path or not os.path.exists(path):
                continue
            with open(path, "rb") as f:
                text = f.read().decode("utf-8", "replace").splitlines()
            out.append(f"----- {name} log (last {min(lines, len(text))} of {len(text)} lines) -----")
            out.extend(text[-lines:])
        return "\n".join(out) if out else self.final_log

    # database, read-only and from outside the service
    def db_snapshot(self):
        """Every table's schema and rows: {table: (schema, rows sorted by repr)}.

        Tables are named as in SQLite ("users"; PostgreSQL: "users" for public.users, else
        "<schema>.<table>"). The schema is SQLite's CREATE statement, or on PostgreSQL a tuple of
        the columns (name, type, nullable, default, identity) and key/unique constraints. Read
        in one read-only transaction.
        """
        if self.postgres:
            return self._pg_snapshot()
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=5)
        try:
            snap = {}
            tables = conn.execute("SELECT name, sql FROM sqlite_master WHERE type='table' "
                                  "AND name NOT LIKE 'sqlite_%' ORDER BY name").fetchall()
            for name, sql in tables:
                quoted = '"' + name.replace('"', '""') + '"'
                rows = conn.execute(f"SELECT * FROM {quoted}").fetchall()
                snap[name] = (sql, sorted(rows, key=repr))
            return snap
        finally:
            conn.close()

    def db_query(self, sql, params=()):
        """Rows (tuples) of a read-only query with '?' placeholders, on SQLite or PostgreSQL
        (where "users" is public.users; values come as psycopg2 gives them)."""
        if not self.postgres:
            conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=5)
            try:
                return conn.execute(sql, tuple(params)).fetchall()
            finally:
                conn.close()
        return pg_query(self.pg_url, sql, params)

    def _pg_snapshot(self):
        return pg_snapshot(self.pg_url)

    def _create_pg_database(self):
        self.pg_admin_url = pg_admin_url()
        name = pg_create_database(self.pg_admin_url)
        self.pg_database = name
        self.pg_url = pg_url_with_database(self.pg_admin_url, name)

    def _drop_pg_database(self):
        name, self.pg_database = self.pg_database, None
        if not name:
            return
        if os.environ.get("MQTTSPEC_KEEP_TMP"):
            sys.stderr.write(f"[harness] kept database {self.pg_url}\n")
            return
        try:
            pg_drop_database(self.pg_admin_url, name)
        except Exception as e:  # noqa: BLE001 - reported, the cluster is thrown away anyway
            sys.stderr.write(f"[harness] could not drop database {name}: {e}\n")
