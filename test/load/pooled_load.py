"""Sustained load through pgbouncer with verification, for test/load/run_pooled_load.sh.

Usage: pooled_load.py OUT.json SECONDS CLIENTS TABLE MODE

CLIENTS threads share one psycopg_pool.ConnectionPool to pgbouncer
(transaction mode), as an application does. Each transaction picks one of 50
tenants, sets its context with a bind parameter (MODE claims:
set_config('request.jwt.claims', $1, true); MODE signed:
tenant_guard.set_context($1) with the tenant's HS256 token), reads the
tenant's rows and checks every returned row belongs to it, inserts one row
(half of them with an encrypted column) and, every fourth transaction, decrypts
the tenant's newest encrypted values. Writes are counted per tenant in a
client-side ledger. The result file holds the ledger, the rows seen across
tenants, the transaction count and the latencies' percentiles.
"""
import json
import os
import random
import sys
import threading
import time

import jwt
import psycopg
from psycopg_pool import ConnectionPool

TENANTS = ["%08x-0000-4000-8000-%012x" % (0x20000000 + i, i) for i in range(50)]


def main():
    out, seconds, nclients, table, mode = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
    plain_table = table.endswith(".plain")
    secret = open(os.environ["HS_SECRET_FILE"], "rb").read().rstrip(b"\r\n")
    now = int(time.time())
    tokens = {t: jwt.encode({"org_id": t, "sub": "user-" + t[-4:], "aud": "tenant-app", "iat": now,
                             "exp": now + 3600}, secret, "HS256") for t in TENANTS}
    claims = {t: json.dumps({"org_id": t, "sub": "user-" + t[-4:]}) for t in TENANTS}
    # prepare_threshold=None: no named prepared statements, which a
    # transaction-mode pooler cannot keep on one server connection
    pool = ConnectionPool(os.environ["LOAD_DSN"], min_size=nclients, max_size=nclients,
                          kwargs={"prepare_threshold": None, "autocommit": False}, open=True)
    pool.wait(timeout=30)
    lock = threading.Lock()
    ledger = {t: 0 for t in TENANTS}
    result = {"transactions": 0, "crossed_rows": 0, "rows_read": 0, "decrypted": 0, "bad_decrypt": 0,
              "errors": 0, "latencies": []}
    deadline = time.time() + seconds

    def client(cid):
        rnd = random.Random(cid)
        lat, seq = [], 0
        local = {"transactions": 0, "crossed_rows": 0, "rows_read": 0, "decrypted": 0, "bad_decrypt": 0,
                 "errors": 0}
        wrote = {t: 0 for t in TENANTS}
        while time.time() < deadline:
            org = rnd.choice(TENANTS)
            seq += 1
            t0 = time.perf_counter()
            try:
                with pool.connection() as conn:
                    with conn.transaction():
                        cur = conn.cursor()
                        if mode == "signed":
                            cur.execute("SELECT tenant_guard.set_context(%s)", (tokens[org],))
                        else:
                            cur.execute("SELECT set_config('request.jwt.claims', %s, true)", (claims[org],))
                        if plain_table:  # no row-level security: the application filters itself
                            cur.execute("SELECT org_id::text, count(*) FROM %s WHERE org_id = %%s GROUP BY 1" % table,
                                        (org,))
                        else:
                            cur.execute("SELECT org_id::text, count(*) FROM %s GROUP BY 1" % table)
                        for row_org, n in cur.fetchall():
                            local["rows_read"] += n
                            if row_org != org:
                                local["crossed_rows"] += n
                        enc = seq % 2 == 0
                        cur.execute("INSERT INTO %s (org_id, client, seq, body, secret) VALUES (%%s, %%s, %%s, %%s, "
                                    "CASE WHEN %%s THEN tenant_guard.encrypt_text(%%s, 'load.secret') END)" % table,
                                    (org, cid, seq, "b%d" % seq, enc, "s%d:%d" % (cid, seq)))
                        if seq % 4 == 0:
                            cur.execute("SELECT client, seq, tenant_guard.decrypt_text(secret, 'load.secret') FROM %s "
                                        "WHERE secret IS NOT NULL AND (NOT %%s OR org_id = %%s) ORDER BY id DESC LIMIT 5"
                                        % table, (plain_table, org))
                            for c, s, plain in cur.fetchall():
                                local["decrypted"] += 1
                                if plain != "s%d:%d" % (c, s):
                                    local["bad_decrypt"] += 1
                wrote[org] += 1
                local["transactions"] += 1
                lat.append(time.perf_counter() - t0)
            except psycopg.Error as e:
                local["errors"] += 1
                if local["errors"] <= 3:
                    print("client %d: %s" % (cid, str(e).splitlines()[0]), file=sys.stderr)
        with lock:
            for t, n in wrote.items():
                ledger[t] += n
            for k, v in local.items():
                result[k] += v
            result["latencies"].extend(lat)

    started = time.time()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(nclients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - started
    pool.close()
    lat = sorted(result.pop("latencies"))
    pct = lambda p: round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 2) if lat else None
    result.update({"ledger": ledger, "seconds": round(elapsed, 1), "tps": round(result["transactions"] / elapsed, 1),
                   "p50_ms": pct(0.50), "p99_ms": pct(0.99)})
    json.dump(result, open(out, "w"))


if __name__ == "__main__":
    main()
