"""Shared helpers for the mqttspec integration and acceptance tests: the one import point.

Starts the service in a temp dir, talks to it with paho-mqtt 1.6.1 (Debian's python3-paho-mqtt)
and tears everything down again, with every wait bounded in time. Only the standard library and
paho are used. Two modes (Service(mode=…), default from MQTTSPEC_MODE):
  external  a real Mosquitto broker plus mqttspecd as its client (broker.mode: external)
  embedded  mqttspecd alone (broker.mode: embedded): it execs Mosquitto with the mqttspec plugin,
            so the service's process is the broker (one PID, one log)
Two databases (Service(db=…), default from MQTTSPEC_DB):
  sqlite    a SQLite file in the service's temp dir (database.driver: sqlite)
  postgres  a fresh database of its own on a PostgreSQL server (database.driver: postgres),
            created at start and dropped at stop; read from outside with Debian's
            python3-psycopg2. Service.db_snapshot() and Service.db_query() work on both.

The code lives in one module per concept, next to this file; tests import everything from here
(`from harness import X`, `harness.X`), which re-exports every public name of:
  spec_client.py   SpecClient (one MQTT client of the service), ConnectRefused, v5_properties,
                   SUBACK_FAILURE, ISO_UTC_MS, ERROR_CODES; paho (mqtt, PacketTypes, Properties,
                   PAHO_DIR) made importable for any python3
  spec_service.py  Service: the process manager (broker + mqttspecd, start/restart/stop, logs,
                   reading the database); default_mode(), default_db()
  bases.py         ServiceTestCase (with assertOk/assertError/assertMessageClean) and
                   FailingStartTestCase
  spec_models.py   USERS_MODEL, THINGS_MODEL, BULK_MODEL
  processes.py     REPO, default_server_binary(), mosquitto_binary(), free_port(), wait_port(),
                   random_suffix(), server_env(); in sanitizer builds take_sanitizer_reports()
                   and exit_code() (a process's exit code, LeakSanitizer's own crash excused)
  pg_helpers.py    the PostgreSQL server, per-service databases and reads (pg_connect, …)
  yamlgen.py       to_yaml(): the configuration writer

Environment:
  MQTTSPECD           absolute path of the server binary (default: <repo>/build/bin/mqttspecd)
  MOSQUITTO           broker binary (default: mosquitto from PATH, then /usr/sbin/mosquitto)
  MQTTSPEC_MODE       external (default) | embedded: the mode of Service() when none is given
  MQTTSPEC_KEEP_TMP   if set, the temp dirs are kept (and their paths printed)
  MQTTSPEC_LOG_LEVEL  mqttspecd's log.level (default: info)
  MQTTSPEC_DB         sqlite (default) | postgres: the database of Service() when none is given
  MQTTSPEC_PG_URL     postgres: the server's admin URL (postgresql://user@host:port/postgres) …
  MQTTSPEC_PG_URL_FILE  … or a file holding it (written by tests/pg/pgcluster.sh start <dir>)
"""

# The standard modules harness.X named when this was one file, kept as attributes of harness.
import json  # noqa: F401
import os  # noqa: F401
import re  # noqa: F401
import shutil  # noqa: F401
import signal  # noqa: F401
import socket  # noqa: F401
import sqlite3  # noqa: F401
import subprocess  # noqa: F401
import sys  # noqa: F401
import tempfile  # noqa: F401
import threading  # noqa: F401
import time  # noqa: F401
import unittest  # noqa: F401
import uuid  # noqa: F401

# First: it makes Debian's paho importable (tests import paho after harness).
from spec_client import (  # noqa: F401
    ERROR_CODES, ISO_UTC_MS, PAHO_DIR, SUBACK_FAILURE, ConnectRefused, PacketTypes, Properties,
    SpecClient, mqtt, v5_properties)
from bases import FailingStartTestCase, ServiceTestCase  # noqa: F401
from pg_helpers import (  # noqa: F401
    pg_admin_url, pg_connect, pg_create_database, pg_drop_database, pg_query, pg_snapshot,
    pg_url_with_database, psycopg2_module)
from processes import (  # noqa: F401
    HERE, REPO, default_server_binary, exit_code, free_port, mosquitto_binary, random_suffix,
    server_env, take_sanitizer_reports, wait_port)
from spec_models import BULK_MODEL, THINGS_MODEL, USERS_MODEL  # noqa: F401
from spec_service import Service, default_db, default_mode  # noqa: F401
from yamlgen import to_yaml  # noqa: F401
