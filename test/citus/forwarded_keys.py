#!/usr/bin/python3
# Attacks on the tenant keys a Citus coordinator forwards to the worker
# backends of the transaction that made them (docs/citus.md, "Keys on the
# workers"; run by key_checks.sh). Prints one "label: outcome" line per check;
# key_checks.sh compares them. The forwarded value is read on a worker by a
# router query, and set by the application role itself (SET LOCAL with
# citus.propagate_set_commands = local, as any role may). Valid entries are
# also built here from the master key file, independently of tenant_guard's
# code (cryptography's AES-GCM, hmac, RFC 5869 HKDF by hand), to show that
# the MAC is what decides: a valid one is used in its own transaction only,
# and never instead of a key the worker has.
#
# usage: A_VERSION=<A's active key version> forwarded_keys.py MASTER_KEY_FILE ORG_K ORG_N ORG_A ORG_J
import hashlib
import hmac
import os
import struct
import sys
import uuid

import psycopg
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

master_file, ORG_K, ORG_N, ORG_A, ORG_J = sys.argv[1:6]
MASTER = bytes.fromhex(open(master_file).read().strip())
AAD = "t_enc.secret"
DSN = dict(host=os.environ["PGHOST"], port=os.environ["PGPORT"], dbname="postgres")


def out(label, value):
    print("%s: %s" % (label, value), flush=True)


def app():
    return psycopg.connect(user="ct_app", **DSN)


def claims(cur, org):
    cur.execute("SELECT set_config('request.jwt.claims', %s, true)", ('{"org_id": "%s"}' % org,))


def on_worker(cur, sql, row_id, params=()):
    """One value computed on the worker that holds row row_id of t_enc_id (a router query)."""
    cur.execute("SELECT %s FROM t_enc_id WHERE id = %d" % (sql, row_id), params)
    return cur.fetchone()[0]


def attempt(conn, fn):
    """fn() inside a savepoint: its result, or 'refused: <message>'."""
    try:
        with conn.transaction():
            return fn()
    except psycopg.Error as e:
        return "refused: " + (e.diag.message_primary or str(e))


def forward(cur, value):
    cur.execute("SET LOCAL citus.propagate_set_commands = 'local'")
    assert "'" not in value
    cur.execute("SET LOCAL tenant_guard.forwarded_keys = '%s'" % value)


# ---- the format, from docs/citus.md and src/core/forwarded_keys.hpp ----
def hkdf(ikm, salt, info, n=32):
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()[:n]


def kek_id():
    return hmac.new(MASTER, b"tenant_guard kek id v1", hashlib.sha256).digest()[:16]


def wrap(org, version, dek):
    nonce = os.urandom(12)
    ad = b"tgdek\x01" + uuid.UUID(org).bytes + struct.pack(">I", version)
    return nonce + AESGCM(MASTER).encrypt(nonce, dek, ad)


def seal(org, version, dek, plaintext):
    nonce = os.urandom(12)
    ad = (b"tgenc\x01" + struct.pack(">I", version) + uuid.UUID(org).bytes + struct.pack(">I", len(AAD))
          + AAD.encode())
    return b"\x01" + struct.pack(">I", version) + nonce + AESGCM(dek).encrypt(nonce, plaintext.encode(), ad)


def entry(txn, org, version, wrapped, kid=None):
    kid = kid or kek_id()
    initiator, number, stamp = txn
    msg = (b"tgfwd\x01" + struct.pack(">iQq", initiator, number, stamp) + uuid.UUID(org).bytes
           + struct.pack(">I", version) + kid + wrapped)
    mac = hmac.new(hkdf(MASTER, b"tenant_guard forwarded key v1", b""), msg, hashlib.sha256).digest()
    return "v1:%s.%d.%s.%s.%s" % (uuid.UUID(org).hex, version, kid.hex(), wrapped.hex(), mac.hex())


def txn_id(cur):
    cur.execute("SELECT initiator_node_identifier, transaction_number, "
                "(extract(epoch FROM transaction_stamp - '2000-01-01 00:00:00+00') * 1000000)::bigint "
                "FROM get_current_transaction_id()")
    return tuple(cur.fetchone())


def decrypt_hex(ct_hex):
    return ("tenant_guard.decrypt_text(decode(%s, 'hex'), %s)", (ct_hex, AAD))


# 1. K's first key, made and rolled back: used inside its transaction (a read on
#    the worker); its forwarded value and a ciphertext kept.
with app() as c:
    cur = c.cursor()
    claims(cur, ORG_K)
    cur.execute("INSERT INTO t_enc_id VALUES (301, %s, tenant_guard.encrypt_text('K-1', %s))", (ORG_K, AAD))
    out("first key, router read on the worker", on_worker(cur, "tenant_guard.decrypt_text(secret, %s)", 301, (AAD,)))
    captured = on_worker(cur, "current_setting('tenant_guard.forwarded_keys', true)", 301)
    out("the worker holds a forwarded key", captured.startswith("v1:") and ORG_K.replace("-", "") in captured)
    cur.execute("SELECT encode(secret, 'hex') FROM t_enc_id WHERE id = 301")
    k_ct = cur.fetchone()[0]
    c.rollback()


def replay(org, value, ct_hex, row_id):
    """In a new transaction of org: forwards value, checks the worker got it, decrypts ct_hex there."""
    with app() as c:
        cur = c.cursor()
        claims(cur, org)
        cur.execute("INSERT INTO t_enc_id VALUES (%s, %s, NULL)", (row_id, org))
        forward(cur, value)
        got = on_worker(cur, "current_setting('tenant_guard.forwarded_keys', true) = %s", row_id, (value,))
        sql, params = decrypt_hex(ct_hex)
        res = attempt(c, lambda: on_worker(cur, sql, row_id, params))
        c.rollback()
        return "%s (reached the worker: %s)" % (res if res.startswith("refused") else "decrypted " + res, got)


# 2. replayed in a later transaction (no node has a row for K's version 1)
out("replayed in another transaction", replay(ORG_K, captured, k_ct, 302))
# 3. forged: random MAC, another tenant's label
parts = captured[3:].split(".")
out("random MAC", replay(ORG_K, "v1:" + ".".join(parts[:4] + [os.urandom(32).hex()]), k_ct, 302))
out("relabelled to another tenant",
    replay(ORG_N, "v1:" + ".".join([uuid.UUID(ORG_N).hex] + parts[1:]), k_ct, 302))
out("random bytes", replay(ORG_K, "v1:%s.1.%s.%s.%s" % (uuid.UUID(ORG_K).hex, os.urandom(16).hex(),
                                                          os.urandom(60).hex(), os.urandom(32).hex()), k_ct, 302))

# 4. a valid entry built here for this transaction (N has no key anywhere):
#    used; the same value in a later transaction: refused.
dek = os.urandom(32)
n_ct = seal(ORG_N, 1, dek, "N-forwarded").hex()
with app() as c:
    cur = c.cursor()
    claims(cur, ORG_N)
    cur.execute("INSERT INTO t_enc_id VALUES (303, %s, NULL)", (ORG_N,))
    n_value = entry(txn_id(cur), ORG_N, 1, wrap(ORG_N, 1, dek))
    forward(cur, n_value)
    sql, params = decrypt_hex(n_ct)
    out("valid entry for this transaction", attempt(c, lambda: on_worker(cur, sql, 303, params)))
    c.rollback()
out("valid entry replayed in another transaction", replay(ORG_N, n_value, n_ct, 304))

# 5. a valid entry for a version the worker has (A's active key): the local key wins
with app() as c:
    cur = c.cursor()
    claims(cur, ORG_A)
    cur.execute("INSERT INTO t_enc_id VALUES (305, %s, tenant_guard.encrypt_text('A-local', %s))", (ORG_A, AAD))
    version = int(os.environ["A_VERSION"])
    dek = os.urandom(32)
    forged_ct = seal(ORG_A, version, dek, "A-forged").hex()
    forward(cur, entry(txn_id(cur), ORG_A, version, wrap(ORG_A, version, dek)))
    out("local key, own value", attempt(c, lambda: on_worker(cur, "tenant_guard.decrypt_text(secret, %s)", 305, (AAD,))))
    sql, params = decrypt_hex(forged_ct)
    res = attempt(c, lambda: on_worker(cur, sql, 305, params))
    out("local key, value under a forwarded key of the same version", res if res.startswith("refused") else "decrypted")
    c.rollback()

# 6. J's first key, committed, then shredded: its captured value replayed refuses
with app() as c:
    cur = c.cursor()
    claims(cur, ORG_J)
    cur.execute("INSERT INTO t_enc_id VALUES (306, %s, tenant_guard.encrypt_text('J-1', %s))", (ORG_J, AAD))
    j_value = on_worker(cur, "current_setting('tenant_guard.forwarded_keys', true)", 306)
    cur.execute("SELECT encode(secret, 'hex') FROM t_enc_id WHERE id = 306")
    j_ct = cur.fetchone()[0]
    c.commit()
with psycopg.connect(user="postgres", autocommit=True, **DSN) as su:
    su.execute("SELECT tenant_guard.shred_keys(%s)", (ORG_J,))
out("replayed after shred_keys()", replay(ORG_J, j_value, j_ct, 307))

# 7. two transactions make the same tenant's first key: the second waits for
#    the first (the tenant's lock on the coordinator), then uses its key if it
#    committed, or makes its own if it rolled back; each reads on the workers.
import threading  # noqa: E402


def concurrent(org, first_ends, base):
    c1, c2 = app(), app()
    cur1, cur2 = c1.cursor(), c2.cursor()
    claims(cur1, org)
    claims(cur2, org)
    cur1.execute("INSERT INTO t_enc_id VALUES (%s, %s, tenant_guard.encrypt_text('one', %s))", (base, org, AAD))
    cur2.execute("SELECT pg_backend_pid()")
    pid2 = cur2.fetchone()[0]
    result = {}

    def second():
        try:
            cur2.execute("INSERT INTO t_enc_id VALUES (%s, %s, tenant_guard.encrypt_text('two', %s))",
                         (base + 1, org, AAD))
            result["read"] = on_worker(cur2, "tenant_guard.decrypt_text(secret, %s)", base + 1, (AAD,))
            c2.commit()
        except psycopg.Error as e:
            result["read"] = "error: " + (e.diag.message_primary or str(e))
            c2.rollback()

    t = threading.Thread(target=second)
    t.start()
    # wait (bounded) until the second one waits for the first one's lock
    with psycopg.connect(user="postgres", autocommit=True, **DSN) as su:
        waited = False
        for _ in range(1200):
            waited = su.execute("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s",
                                (pid2,)).fetchone()[0]
            if waited or not t.is_alive():
                break
            t.join(0.05)
        out("concurrent first keys, first %s: the second waited" % first_ends, waited)
    first_read = on_worker(cur1, "tenant_guard.decrypt_text(secret, %s)", base, (AAD,))
    c1.commit() if first_ends == "commit" else c1.rollback()
    t.join(120)
    out("concurrent first keys, first %s: reads" % first_ends, "%s %s" % (first_read, result.get("read")))
    c1.close()
    c2.close()


concurrent(os.environ["ORG_P"], "commit", 311)
concurrent(os.environ["ORG_Q"], "rollback", 321)
