"""PostgreSQL helpers of the mqttspec test harness, for Service(db="postgres"): the tests' server,
a fresh database of its own per service (created at start, dropped at stop), and reading it from
outside the service with Debian's python3-psycopg2 (imported only when PostgreSQL is used).

Environment:
  MQTTSPEC_PG_URL       the server's admin URL (postgresql://user@host:port/postgres) …
  MQTTSPEC_PG_URL_FILE  … or a file holding it (written by tests/pg/pgcluster.sh start <dir>;
                        ctest starts that cluster with the pg.start fixture)
"""

import os
import sys
import uuid


def pg_admin_url():
    """The tests' PostgreSQL server: $MQTTSPEC_PG_URL, else the URL in $MQTTSPEC_PG_URL_FILE."""
    url = os.environ.get("MQTTSPEC_PG_URL", "").strip()
    if url:
        return url
    path = os.environ.get("MQTTSPEC_PG_URL_FILE", "").strip()
    if not path:
        raise RuntimeError("database postgres needs a server: set MQTTSPEC_PG_URL (admin URL) or "
                           "MQTTSPEC_PG_URL_FILE (written by tests/pg/pgcluster.sh start <dir>)")
    try:
        with open(path) as f:
            url = f.readline().strip()
    except OSError:
        url = ""
    if not url:
        raise RuntimeError(f"MQTTSPEC_PG_URL_FILE={path} is missing or empty: the PostgreSQL test "
                           "cluster is not running (ctest starts it with the pg.start fixture)")
    return url


def pg_url_with_database(url, database):
    """`url` (postgresql://user@host:port/db?params) with its database replaced."""
    rest = url.split("://", 1)
    head, tail = (rest[0] + "://", rest[1]) if len(rest) == 2 else ("", rest[0])
    query = ""
    if "?" in tail:
        tail, query = tail.split("?", 1)
        query = "?" + query
    authority = tail.split("/", 1)[0]
    return f"{head}{authority}/{database}{query}"


def psycopg2_module():
    """Debian's python3-psycopg2, also from a python3 that is not Debian's."""
    try:
        import psycopg2
    except ImportError:
        for p in ("/usr/lib/python3/dist-packages",):
            if os.path.isdir(os.path.join(p, "psycopg2")) and p not in sys.path:
                sys.path.append(p)
        import psycopg2
    return psycopg2


def pg_connect(url, autocommit=False):
    """A psycopg2 connection with bounded connect and statement times."""
    pg = psycopg2_module()
    conn = pg.connect(url, connect_timeout=5, options="-c statement_timeout=15000")
    conn.autocommit = autocommit
    return conn


def pg_create_database(admin_url):
    """Creates a fresh, empty database (mqttspec_it_<random>) on the server of `admin_url` and
    returns its name."""
    name = "mqttspec_it_" + uuid.uuid4().hex[:12]
    conn = pg_connect(admin_url, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()
    return name


def pg_drop_database(admin_url, name):
    """Drops database `name` (if it exists) on the server of `admin_url`, ending its sessions."""
    conn = pg_connect(admin_url, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        conn.close()


def pg_query(url, sql, params=()):
    """Rows (tuples) of a read-only query with '?' placeholders on the database of `url`, in a
    read-only transaction that is rolled back (values come as psycopg2 gives them)."""
    conn = pg_connect(url)
    try:
        conn.set_session(readonly=True)
        with conn.cursor() as cur:
            cur.execute(sql.replace("%", "%%").replace("?", "%s"), tuple(params))
            return cur.fetchall()
    finally:
        conn.rollback()
        conn.close()


def pg_snapshot(url):
    """Every table of the database of `url` (but the system schemas), in one read-only
    REPEATABLE READ transaction: {table: ((columns, keys), rows sorted by repr)}, the table
    named "users" for public.users, else "<schema>.<table>"; columns are (name, type,
    nullable, default, identity), keys the (constraint type, column) pairs."""
    pg = psycopg2_module()
    conn = pg_connect(url)
    try:
        conn.set_session(isolation_level=pg.extensions.ISOLATION_LEVEL_REPEATABLE_READ,
                         readonly=True)
        snap = {}
        with conn.cursor() as cur:
            cur.execute("SELECT table_schema, table_name FROM information_schema.tables "
                        "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN "
                        "('pg_catalog', 'information_schema') ORDER BY 1, 2")
            tables = cur.fetchall()
            for schema, name in tables:
                cur.execute("SELECT column_name, data_type, is_nullable, column_default, "
                            "is_identity FROM information_schema.columns WHERE "
                            "table_schema = %s AND table_name = %s ORDER BY ordinal_position",
                            (schema, name))
                columns = tuple(cur.fetchall())
                cur.execute("SELECT tc.constraint_type, k.column_name FROM "
                            "information_schema.table_constraints tc JOIN "
                            "information_schema.key_column_usage k ON "
                            "k.constraint_schema = tc.constraint_schema AND "
                            "k.constraint_name = tc.constraint_name WHERE "
                            "tc.table_schema = %s AND tc.table_name = %s ORDER BY 1, 2",
                            (schema, name))
                keys = tuple(cur.fetchall())
                quoted = ".".join('"' + x.replace('"', '""') + '"' for x in (schema, name))
                cur.execute(f"SELECT * FROM {quoted}")
                rows = cur.fetchall()
                key = name if schema == "public" else f"{schema}.{name}"
                snap[key] = ((columns, keys), sorted(rows, key=repr))
        return snap
    finally:
        conn.rollback()
        conn.close()
