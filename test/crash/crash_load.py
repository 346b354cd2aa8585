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

Two more kinds of client run alongside (CRASH_AGENT_DSN and CRASH_ADMIN_DSN):
- a support agent issues a support grant for a tenant, redeems it with
  CALL begin_support_session(token), writes rows in that session (its rows are
  in the same ledger, and its grants in a ledger of their own: issued,
  redeemed, refused replays, ended, each acknowledged or cut by the crash),
  replays the used token (which must be refused), and sometimes ends the
  session;
- a key rotator calls rotate_key() for random tenants, counting the rotations
  acknowledged and cut.

Usage: crash_load.py check LEDGER_DIR, after a restart, checks the support
grants and the tenant keys against those ledgers (see check()).
"""
import glob
import hashlib
import json
import os
import random
import sys
import threading
import time

import psycopg
from psycopg import errors

FAILURES = []
TENANTS = ["%08x-0000-4000-8000-%012x" % (0x10000000 + i, i) for i in range(20)]


def client(cid, ledger_dir, deadline, dsn, body=None):
    rnd = random.Random(cid)
    ledger = {}
    stats = {"committed": 0, "rolled_back": 0, "uncertain": 0, "reconnects": 0}
    extra = {}
    try:
        (body or run)(cid, rnd, ledger, stats, deadline, dsn, extra)
    except Exception as e:  # recorded; main() then fails the run
        FAILURES.append("client %d: %s" % (cid, str(e).splitlines()[0] if str(e) else type(e).__name__))
    finally:
        with open(os.path.join(ledger_dir, "client%d.json" % cid), "w") as f:
            json.dump(dict({"ledger": ledger, "stats": stats}, **extra), f)


def lost(conn):
    """After a psycopg error: True when the server went away (the crash), so
    the outcome of what was in flight is unknown. Any other error is a failure
    of the test and is raised again by the caller. A connection lost inside a
    pipeline (executemany) is not always marked broken yet (libpq's "cannot
    exit pipeline mode while busy"): then a probe on the same connection
    tells."""
    if conn.broken or conn.closed:
        return True
    try:
        conn.rollback()
        conn.execute("SELECT 1")
        conn.rollback()
        return False
    except psycopg.Error:
        return True


def run(cid, rnd, ledger, stats, deadline, dsn, extra):
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
            if not lost(conn):
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


def agent(cid, rnd, ledger, stats, deadline, dsn, extra):
    """A support agent: grant, redeem, write in the session, replay, end."""
    grants = extra.setdefault("grants", {})      # token -> its ledger entry
    extra["issue_cut"] = 0                       # issue_support_grant() calls cut by the crash
    name = "crash-agent-%d" % cid
    seq = 0
    conn = None
    while time.time() < deadline:
        if conn is None:
            try:
                # autocommit: CALL begin_support_session() must run outside a transaction block
                conn = psycopg.connect(dsn, autocommit=True, connect_timeout=2)
            except psycopg.OperationalError:
                time.sleep(0.2)
                continue
        org = rnd.choice(TENANTS)
        step, g, keys = "issue", None, []
        try:
            tok = conn.execute("SELECT tenant_guard.issue_support_grant(%s, %s, 'crash recovery test')",
                               (org, name)).fetchone()[0]
            g = grants[tok] = {"org": org, "agent": name, "redeemed": "no", "ended": "no", "refused": 0,
                               "refused_cut": 0}
            step = "redeem"
            g["redeemed"] = "cut"
            conn.execute("CALL tenant_guard.begin_support_session(%s)", (tok,))
            g["redeemed"] = "yes"
            got = conn.execute("SELECT tenant_guard.current_user_org_id()::text, "
                               "tenant_guard.current_impersonator()").fetchone()
            if got != (org, name):
                raise AssertionError("support context %r, expected %r" % (got, (org, name)))
            # rows written in the session: audited with the agent as impersonator
            for _ in range(rnd.randint(1, 3)):
                step = "write"
                n = rnd.randint(1, 10)
                keys = []
                for _ in range(n):
                    seq += 1
                    keys.append("%d:%d" % (cid, seq))
                with conn.transaction():
                    with conn.cursor() as cur:
                        cur.executemany("INSERT INTO crash.items (client, seq, org_id, body) VALUES (%s, %s, %s, %s)",
                                        [(cid, int(k.split(":")[1]), org, "support " + k) for k in keys])
                        step = "commit"
                for k in keys:
                    ledger[k] = ["committed", org, name]
                stats["committed"] += 1
                keys = []
            # a used token is refused, now and after any crash
            step = "replay"
            try:
                conn.execute("CALL tenant_guard.begin_support_session(%s)", (tok,))
                raise AssertionError("a redeemed support token was accepted again")
            except errors.InvalidAuthorizationSpecification:  # 28000, support token refused
                g["refused"] += 1
            if rnd.random() < 0.5:
                step = "end"
                g["ended"] = "cut"
                if conn.execute("SELECT tenant_guard.end_support_session()").fetchone()[0] is not True:
                    raise AssertionError("end_support_session() found no session")
                g["ended"] = "yes"
        except psycopg.Error:
            if not lost(conn):
                raise
            if step == "issue":
                extra["issue_cut"] += 1
            elif step == "replay":
                g["refused_cut"] += 1
            outcome = "uncertain" if step == "commit" else "rolled_back"
            for k in keys:
                ledger[k] = [outcome, org, name]
            if keys:
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


def rotator(cid, rnd, ledger, stats, deadline, dsn, extra):
    """An administrator rotating tenant keys while the clients encrypt."""
    acked = extra.setdefault("rotations", {})    # org -> rotate_key() calls acknowledged
    cut = extra.setdefault("rotations_cut", {})  # org -> calls cut by the crash
    conn = None
    while time.time() < deadline:
        if conn is None:
            try:
                conn = psycopg.connect(dsn, autocommit=True, connect_timeout=2)
            except psycopg.OperationalError:
                time.sleep(0.2)
                continue
        org = rnd.choice(TENANTS)
        try:
            conn.execute("SELECT tenant_guard.rotate_key(%s)", (org,))
            acked[org] = acked.get(org, 0) + 1
        except psycopg.Error:
            if not lost(conn):
                raise
            cut[org] = cut.get(org, 0) + 1
            stats["reconnects"] += 1
            try:
                conn.close()
            except Exception:
                pass
            conn = None
        time.sleep(0.05)
    if conn is not None:
        conn.close()


def check(ledger_dir):
    """After a restart: the support grants and the tenant keys against the
    ledgers of the agents and the rotator. Prints what disagrees; 1 if any."""
    grants, rotations, rotations_cut, support_rows, issue_cut = {}, {}, {}, {}, 0
    for f in glob.glob(os.path.join(ledger_dir, "client*.json")):
        d = json.load(open(f))
        grants.update(d.get("grants", {}))
        issue_cut += d.get("issue_cut", 0)
        for mine, theirs in ((rotations, d.get("rotations", {})), (rotations_cut, d.get("rotations_cut", {}))):
            for org, n in theirs.items():
                mine[org] = mine.get(org, 0) + n
        for k, v in d["ledger"].items():
            if len(v) > 2:
                support_rows[k] = v
    # what earlier checks did themselves: refused replays, and redemptions of
    # grants whose redemption had been cut before it committed
    own_file = os.path.join(ledger_dir, "check.json")
    own = json.load(open(own_file)) if os.path.exists(own_file) else {"replays": {}, "redeemed": []}
    bad = []
    admin = psycopg.connect(os.environ["CRASH_ADMIN_DSN"], autocommit=True)
    db = {r[0]: r for r in admin.execute(
        "SELECT id::text, encode(token_hash, 'hex'), org_id::text, agent, redeemed_at IS NOT NULL,"
        "       redeemed_by IS NOT NULL, expires_at IS NOT NULL, ended_at IS NOT NULL, revoked_at IS NOT NULL"
        "  FROM tenant_guard.support_grants")}
    by_hash = {r[1]: r for r in db.values()}
    events = {(g, a): n for g, a, n in admin.execute(
        "SELECT detail->>'grant', action, count(*) FROM tenant_guard.audit_log"
        " WHERE action LIKE 'platform.%' GROUP BY 1, 2")}

    # 1. Every grant is whole: redeemed with all of its columns or none, and
    #    with exactly the audit events of its state.
    for gid, (_, _, org, who, red, red_by, exp, ended, revoked) in db.items():
        def ev(a):
            return events.get((gid, "platform." + a), 0)
        if not red == red_by == exp:
            bad.append("grant %s is half redeemed (redeemed_at %s, redeemed_by %s, expires_at %s)"
                       % (gid, red, red_by, exp))
        if (ended and not red) or revoked:
            bad.append("grant %s: ended %s without a redemption, or revoked %s" % (gid, ended, revoked))
        if ev("support_grant_issued") != 1:
            bad.append("grant %s has %d issue events" % (gid, ev("support_grant_issued")))
        if ev("impersonate_tenant") != (1 if red else 0):
            bad.append("grant %s: redeemed %s, %d sign-in events" % (gid, red, ev("impersonate_tenant")))
        if ev("support_session_ended") != (1 if ended else 0):
            bad.append("grant %s: ended %s, %d end events" % (gid, ended, ev("support_session_ended")))
    if events.get((None, "platform.support_session_refused")):
        bad.append("refusals of unknown tokens: every token replayed was issued")

    # 2. The agents' ledgers: what they saw acknowledged is there; what the
    #    crash cut is there entirely or not at all.
    seen = set()
    for tok, g in grants.items():
        r = by_hash.get(hashlib.sha256(tok.encode()).hexdigest())
        if r is None:
            bad.append("a grant issued (acknowledged) for %s is missing" % g["org"])
            continue
        gid = r[0]
        seen.add(gid)
        if (r[2], r[3]) != (g["org"], g["agent"]):
            bad.append("grant %s: tenant and agent %s, the ledger says %s" % (gid, r[2:4], (g["org"], g["agent"])))
        if g["redeemed"] == "yes" and not r[4]:
            bad.append("grant %s: a redemption the agent saw succeed is not recorded" % gid)
        if g["redeemed"] == "no" and r[4] and gid not in own["redeemed"]:
            bad.append("grant %s is redeemed, but no one redeemed it" % gid)
        if g["ended"] == "yes" and not r[7]:
            bad.append("grant %s: an end the agent saw is not recorded" % gid)
        n = events.get((gid, "platform.support_session_refused"), 0)
        lo = g["refused"] + own["replays"].get(gid, 0)
        if not lo <= n <= lo + g["refused_cut"]:
            bad.append("grant %s: %d refusal events, %d to %d expected" % (gid, n, lo, lo + g["refused_cut"]))
    unknown = [gid for gid in db if gid not in seen]
    if len(unknown) > issue_cut:
        bad.append("%d grants no agent saw issued, only %d issues were cut" % (len(unknown), issue_cut))

    # 3. Single use across the crash: every used token of this round is
    #    refused now (and a sample of the earlier rounds' tokens, refused
    #    after an earlier crash already); a token whose redemption was cut
    #    before it committed is still whole: it redeems once, then it is
    #    refused too.
    agent_conn = psycopg.connect(os.environ["CRASH_AGENT_DSN"], autocommit=True)
    refused = redeemed_now = 0

    def refuses(tok):
        try:
            agent_conn.execute("CALL tenant_guard.begin_support_session(%s)", (tok,))
            return False
        except errors.InvalidAuthorizationSpecification:
            return True
    earlier = 0
    for tok, g in sorted(grants.items()):
        r = by_hash.get(hashlib.sha256(tok.encode()).hexdigest())
        if r is None:
            continue
        gid = r[0]
        if gid in own["replays"]:
            earlier += 1
            if earlier > 25:
                continue
        if not r[4]:
            if refuses(tok):
                bad.append("grant %s: never redeemed, yet its token is refused" % gid)
                continue
            if agent_conn.execute("SELECT tenant_guard.current_user_org_id()::text").fetchone()[0] != g["org"]:
                bad.append("grant %s: redeemed after the crash, but no context for its tenant" % gid)
            agent_conn.execute("SELECT tenant_guard.end_support_session()")
            own["redeemed"].append(gid)
            redeemed_now += 1
        if not refuses(tok):
            bad.append("grant %s: a used token was accepted again after the crash" % gid)
        own["replays"][gid] = own["replays"].get(gid, 0) + 1
        refused += 1
    agent_conn.close()
    json.dump(own, open(own_file, "w"))

    # 4. Rows written in a support session: the INSERT record names the agent
    #    as actor and impersonator; no other record has an impersonator.
    imp = {k: (a, i) for k, a, i in admin.execute(
        "SELECT (row_pk->>'client') || ':' || (row_pk->>'seq'), actor, impersonator FROM tenant_guard.audit_trail"
        " WHERE table_name = 'crash.items' AND action = 'INSERT' AND impersonator IS NOT NULL")}
    for k, (outcome, org, who) in support_rows.items():
        if outcome == "committed" and imp.get(k) != (who, who):
            bad.append("row %s written by %s in a support session: actor and impersonator %s" % (k, who, imp.get(k)))
    for k, (a, i) in imp.items():
        if k not in support_rows or support_rows[k][2] != i:
            bad.append("row %s has impersonator %s, but no support session wrote it" % (k, i))

    # 5. Tenant keys: versions 1..n, the newest active and the rest retired,
    #    each created by exactly one key event; the rotations acknowledged
    #    are all there, and at most the cut ones more.
    keys, kev = {}, {}
    for org, version, state, retired in admin.execute(
            "SELECT org_id::text, version, state, retired_at IS NOT NULL FROM tenant_guard.tenant_keys"):
        keys.setdefault(org, []).append((version, state, retired))
    for org, event, versions, actor in admin.execute(
            "SELECT org_id::text, event, versions, session_actor FROM tenant_guard.key_events"):
        kev.setdefault(org, []).append((event, versions, actor))
    for org, ks in keys.items():
        ks.sort()
        n = len(ks)
        if [k[0] for k in ks] != list(range(1, n + 1)):
            bad.append("tenant %s has key versions %s" % (org, [k[0] for k in ks]))
        if [k[1] for k in ks] != ["retired"] * (n - 1) + ["active"] or not all(k[2] for k in ks[:-1]):
            bad.append("tenant %s: key states %s" % (org, ks))
        evs = kev.get(org, [])
        made = sorted(v for e, vs, _ in evs if e in ("created", "rotated") for v in vs)
        if made != list(range(1, n + 1)) or [vs for e, vs, _ in evs if e == "created"] != [[1]]:
            bad.append("tenant %s: %d key versions, key events %s" % (org, n, sorted(evs)))
        by_admin = sum(1 for e, _, a in evs if e in ("created", "rotated") and a == "postgres")
        lo = rotations.get(org, 0)
        if not lo <= by_admin <= lo + rotations_cut.get(org, 0):
            bad.append("tenant %s: %d rotations recorded, %d acknowledged and %d cut"
                       % (org, by_admin, lo, rotations_cut.get(org, 0)))
    for org in set(kev) - set(keys):
        bad.append("tenant %s has key events but no key" % org)
    admin.close()

    for b in bad[:10]:
        print("  " + b)
    states = {}
    for g in grants.values():
        states[g["redeemed"]] = states.get(g["redeemed"], 0) + 1
    print("support and keys: %d grants (%d redeemed, %d redemptions cut, %d issues cut), %d rows written in "
          "support sessions, %d used tokens replayed and refused, %d cut redemptions completed after the restart; "
          "%d key rotations acknowledged, %d cut, %d key versions"
          % (len(db), states.get("yes", 0), states.get("cut", 0), issue_cut,
             sum(1 for v in support_rows.values() if v[0] == "committed"), refused, redeemed_now,
             sum(rotations.values()), sum(rotations_cut.values()), sum(len(k) for k in keys.values())))
    return 1 if bad else 0


def main():
    if sys.argv[1] == "check":
        sys.exit(check(sys.argv[2]))
    ledger_dir, seconds, nclients = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    dsn = os.environ["CRASH_DSN"]
    deadline = time.time() + seconds
    base = int(os.environ.get("CRASH_CLIENT_BASE", "0"))
    threads = [threading.Thread(target=client, args=(base + i, ledger_dir, deadline, dsn)) for i in range(nclients)]
    if os.environ.get("CRASH_AGENT_DSN"):
        threads += [threading.Thread(target=client, args=(base + 50 + i, ledger_dir, deadline,
                                                          os.environ["CRASH_AGENT_DSN"], agent)) for i in range(2)]
    if os.environ.get("CRASH_ADMIN_DSN"):
        threads.append(threading.Thread(target=client, args=(base + 90, ledger_dir, deadline,
                                                             os.environ["CRASH_ADMIN_DSN"], rotator)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for f in FAILURES:
        print(f, file=sys.stderr)
    sys.exit(1 if FAILURES else 0)


if __name__ == "__main__":
    main()
