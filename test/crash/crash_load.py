"""Audited write load with a client-side ledger, for test/crash/run_crash_recovery.sh.

Usage: crash_load.py LEDGER_DIR SECONDS CLIENTS

Each client thread connects as the application role and runs transactions for
SECONDS: it picks one of 20 tenants, sets its context, inserts one row or a
batch (some with an encrypted column), sometimes updates a row it wrote, and
commits or, on purpose, rolls back. Every row carries a unique (client, seq)
key. The ledger records, per key: 'committed' once COMMIT returned,
'rolled_back' after a deliberate ROLLBACK, 'uncertain' when the connection
died before COMMIT answered. Connection errors (the server was killed) make the
client reconnect and go on. The ledger is one JSON file per client.
"""
import json
import os
import random
import sys
import threading
import time

import psycopg

FAILURES = []
TENANTS = ["%08x-0000-4000-8000-%012x" % (0x10000000 + i, i) for i in range(20)]


def client(cid, ledger_dir, deadline, dsn):
    rnd = random.Random(cid)
    ledger = {}
    stats = {"committed": 0, "rolled_back": 0, "uncertain": 0, "reconnects": 0}
    try:
        run(cid, rnd, ledger, stats, deadline, dsn)
    except Exception as e:  # recorded; main() then fails the run
        FAILURES.append("client %d: %s" % (cid, str(e).splitlines()[0] if str(e) else type(e).__name__))
    finally:
        with open(os.path.join(ledger_dir, "client%d.json" % cid), "w") as f:
            json.dump({"ledger": ledger, "stats": stats}, f)


def run(cid, rnd, ledger, stats, deadline, dsn):
    seq = 0
    conn = None
    while time.time() < deadline:
        if conn is None:
            try:
                conn = psycopg.connect(dsn, autocommit=False, connect_timeout=2)
            except psycopg.OperationalError:
                time.sleep(0.2)
                continue
        org = rnd.choice(TENANTS)
        n = 1 if rnd.random() < 0.6 else rnd.randint(2, 40)
        keys = []
        rollback = rnd.random() < 0.2
        state = "begin"
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT set_config('tenant_guard.org_id', %s, true)", (org,))
                rows = []
                for _ in range(n):
                    seq += 1
                    keys.append("%d:%d" % (cid, seq))
                    enc = rnd.random() < 0.3
                    rows.append((cid, seq, org, "v%d" % seq, enc))
                cur.executemany(
                    "INSERT INTO crash.items (client, seq, org_id, body, secret) VALUES (%s, %s, %s, %s, "
                    "CASE WHEN %s THEN tenant_guard.encrypt_text('secret ' || %s, 'crash.items.secret') END)",
                    [(c, s, o, b, e, b) for (c, s, o, b, e) in rows])
                if rnd.random() < 0.3:
                    cur.execute("UPDATE crash.items SET body = body || '+' WHERE client = %s AND seq = %s",
                                (cid, rows[0][1]))
                state = "commit"
                if rollback:
                    conn.rollback()
                    for k in keys:
                        ledger[k] = ["rolled_back", org]
                    stats["rolled_back"] += 1
                else:
                    conn.commit()
                    for k in keys:
                        ledger[k] = ["committed", org]
                    stats["committed"] += 1
        except psycopg.Error:
            # Only the loss of the server is expected here (psycopg reports it
            # as OperationalError, DatabaseError from a pipeline, AdminShutdown,
            # CrashShutdown, ...); any other error is a failure of the test.
            if not (conn.broken or conn.closed):
                raise
            # The server went away. Before COMMIT was sent nothing can be
            # committed; while COMMIT was in flight the outcome is unknown.
            outcome = "uncertain" if state == "commit" and not rollback else "rolled_back"
            for k in keys:
                ledger[k] = [outcome, org]
            stats[outcome] += 1
            stats["reconnects"] += 1
            try:
                conn.close()
            except Exception:
                pass
            conn = None
            time.sleep(0.1)
    if conn is not None:
        conn.close()


def main():
    ledger_dir, seconds, nclients = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    dsn = os.environ["CRASH_DSN"]
    deadline = time.time() + seconds
    base = int(os.environ.get("CRASH_CLIENT_BASE", "0"))
    threads = [threading.Thread(target=client, args=(base + i, ledger_dir, deadline, dsn)) for i in range(nclients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for f in FAILURES:
        print(f, file=sys.stderr)
    sys.exit(1 if FAILURES else 0)


if __name__ == "__main__":
    main()
