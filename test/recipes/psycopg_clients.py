#!/usr/bin/python3
"""Runs the psycopg recipe (tenant_psycopg.py) the way an application would:
a psycopg_pool.ConnectionPool through pgbouncer in transaction mode, several
threads per tenant, string org ids, plus a background job with a service
token. Prints one JSON line of figures; exits non-zero on any isolation or
recipe failure. Tokens come from the environment and are never printed.

Environment: DSN (pgbouncer), TOKEN_A, TOKEN_B, TOKEN_JOB, ORG_A, ORG_B, TX.
"""
import json
import os
import sys
import tempfile
import threading

import psycopg
from psycopg_pool import ConnectionPool

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tenant_psycopg import service_transaction, tenant_guard_connect_kwargs, tenant_transaction  # noqa: E402

DSN = os.environ["DSN"]
TX = int(os.environ.get("TX", "40"))
TENANTS = {"a": (os.environ["TOKEN_A"], os.environ["ORG_A"]), "b": (os.environ["TOKEN_B"], os.environ["ORG_B"])}
errors = []
counts = {"tx": 0, "pids": set()}
lock = threading.Lock()


def worker(pool, name, n):
    token, org = TENANTS[name[0]]
    for i in range(TX):
        marker = f"psycopg-{name}-{i}"
        try:
            with tenant_transaction(pool, token) as conn:
                before = conn.execute("SELECT tenant_guard.current_user_org_text(), pg_backend_pid()")
                conn.execute("INSERT INTO app.notes (org_id, body) VALUES (tenant_guard.current_user_org_text(), %s)",
                             [marker])
                seen = conn.execute("SELECT org_id, count(*) FROM app.notes GROUP BY org_id")
            # results are read after COMMIT: the whole transaction was one round trip
            ctx_org, pid = before.fetchone()
            rows = seen.fetchall()
        except Exception as e:  # noqa: BLE001
            with lock:
                errors.append(f"{name} tx {i}: {type(e).__name__}: {str(e).splitlines()[0]}")
            return
        with lock:
            counts["tx"] += 1
            counts["pids"].add(pid)
            if ctx_org != org:
                errors.append(f"{name} tx {i}: context {ctx_org!r}, expected {org!r}")
            if any(r[0] != org for r in rows):
                errors.append(f"{name} tx {i}: saw another tenant's rows")


def round_trips():
    """Network round trips of one recipe transaction (BEGIN, set_context, two
    statements, COMMIT), from libpq's own protocol trace of the pool's only
    connection."""
    fd, path = tempfile.mkstemp(prefix="tg_trace.")
    try:
        def trace(conn):
            conn.pgconn.trace(fd)
        with ConnectionPool(DSN, kwargs=tenant_guard_connect_kwargs(), min_size=1, max_size=1,
                            configure=trace, open=True) as pool:
            with pool.connection() as warm:  # connection set-up traffic is not the recipe's
                warm.execute("SELECT 1")
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            token, _ = TENANTS["a"]
            with tenant_transaction(pool, token) as conn:
                c1 = conn.execute("SELECT count(*) FROM app.notes")
                c2 = conn.execute("SELECT tenant_guard.current_user_id()")
            c1.fetchone(), c2.fetchone()
            with pool.connection() as conn:
                conn.pgconn.untrace()
        with open(path) as f:
            lines = f.read().splitlines()
        # round trips: the runs of client messages (F) between server replies (B);
        # in pipeline mode several Syncs can be in flight in one run
        dirs = [f for ln in lines for f in ln.split("\t")[:2] if f in ("F", "B")]
        rfq = sum(1 for i, d in enumerate(dirs) if d == "F" and (i == 0 or dirs[i - 1] == "B"))
        # the token went as a Bind parameter, never in a Parse (statement text)
        parses_with_token = sum(1 for ln in lines if "\tParse\t" in ln and token[:40] in ln)
        binds = sum(1 for ln in lines if "\tBind\t" in ln)
        return rfq, parses_with_token, binds
    finally:
        os.close(fd)
        os.unlink(path)


def job(pool):
    """A background job: no user, a service token for tenant A."""
    with service_transaction(pool, os.environ["TOKEN_JOB"]) as conn:
        who = conn.execute("SELECT tenant_guard.current_user_id(), tenant_guard.current_user_org_text()")
        conn.execute("INSERT INTO app.notes (org_id, body) VALUES (tenant_guard.current_user_org_text(), 'job')")
    return who.fetchone()


def main():
    with ConnectionPool(DSN, kwargs=tenant_guard_connect_kwargs(), min_size=4, max_size=4, open=True) as pool:
        threads = [threading.Thread(target=worker, args=(pool, n, TX)) for n in ("a1", "a2", "b1", "b2")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        job_who = job(pool)
        # a literal token in the statement text is refused (and the pool survives it)
        literal = "accepted"
        try:
            with pool.connection() as conn:
                conn.execute(f"SELECT tenant_guard.set_context('{TENANTS['a'][0]}')")
        except psycopg.Error as e:
            literal = e.sqlstate
    rfq, parses_with_token, binds = round_trips()
    if job_who != ("service:nightly-billing", TENANTS["a"][1]):
        errors.append(f"service job ran as {job_who!r}")
    if literal != "28000":
        errors.append(f"a literal token gave {literal!r}, expected 28000")
    if parses_with_token:
        errors.append("the token appeared in a statement's text")
    expected = 4 * TX
    if counts["tx"] != expected:
        errors.append(f"{counts['tx']} transactions ran, expected {expected}")
    print(json.dumps({"client": "psycopg", "transactions": counts["tx"], "server_pids": len(counts["pids"]),
                      "round_trips_per_transaction": rfq, "binds": binds, "literal_token": literal,
                      "errors": errors[:10]}))
    sys.exit(1 if errors else 0)


main()
