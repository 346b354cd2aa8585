// Runs the node-postgres recipe (tenant_pg.js) the way an application would:
// a pg.Pool through pgbouncer in transaction mode, concurrent requests for two
// tenants with string org ids, and a background job with a service token.
// Prints one JSON line of figures; exits non-zero on any failure. Tokens come
// from the environment and are never printed.
// Environment: PGHOST/PGPORT/PGUSER/PGDATABASE (pgbouncer), TOKEN_A, TOKEN_B,
// TOKEN_JOB, ORG_A, ORG_B, TX.
'use strict';
const { Pool } = require('pg');
const { withTenant, withService } = require('./tenant_pg');

const TX = Number(process.env.TX || 40);
const tenants = { a: [process.env.TOKEN_A, process.env.ORG_A], b: [process.env.TOKEN_B, process.env.ORG_B] };
const errors = [];
const pids = new Set();
let done = 0;

async function worker(pool, name) {
  const [token, org] = tenants[name[0]];
  for (let i = 0; i < TX; i++) {
    try {
      const r = await withTenant(pool, token, async (c) => {
        const before = await c.query('SELECT tenant_guard.current_user_org_text() AS org, pg_backend_pid() AS pid');
        await c.query('INSERT INTO app.notes (org_id, body) VALUES (tenant_guard.current_user_org_text(), $1)',
                      [`node-${name}-${i}`]);
        const seen = await c.query('SELECT org_id, count(*) FROM app.notes GROUP BY org_id');
        return { before: before.rows[0], seen: seen.rows };
      });
      done++;
      pids.add(r.before.pid);
      if (r.before.org !== org) errors.push(`${name} tx ${i}: context ${r.before.org}, expected ${org}`);
      if (r.seen.some((row) => row.org_id !== org)) errors.push(`${name} tx ${i}: saw another tenant's rows`);
    } catch (e) {
      errors.push(`${name} tx ${i}: ${e.code || ''} ${String(e.message).split('\n')[0]}`);
      return;
    }
  }
}

// ReadyForQuery messages (one per round trip) of one recipe transaction with
// two statements, counted on the connection itself.
async function roundTrips(pool) {
  const client = await pool.connect();
  let rfq = 0;
  const count = () => { rfq++; };
  client.connection.on('readyForQuery', count);
  client.release();
  // the pool hands the same idle client back (max 1 in this pool)
  await withTenant(pool, tenants.a[0], async (c) => {
    await c.query('SELECT count(*) FROM app.notes');
    await c.query('SELECT tenant_guard.current_user_id()');
  });
  client.connection.removeListener('readyForQuery', count);
  return rfq;
}

async function main() {
  const pool = new Pool({ max: 4 });
  await Promise.all(['a1', 'a2', 'b1', 'b2'].map((n) => worker(pool, n)));
  const job = await withService(pool, process.env.TOKEN_JOB, async (c) => {
    const r = await c.query('SELECT tenant_guard.current_user_id() AS uid, tenant_guard.current_user_org_text() AS org');
    await c.query("INSERT INTO app.notes (org_id, body) VALUES (tenant_guard.current_user_org_text(), 'node job')");
    return r.rows[0];
  });
  if (job.uid !== 'service:nightly-billing' || job.org !== tenants.a[1]) errors.push(`service job ran as ${job.uid}`);
  let literal = 'accepted';
  try {
    await pool.query(`SELECT tenant_guard.set_context('${tenants.a[0]}')`);
  } catch (e) {
    literal = e.code;
  }
  if (literal !== '28000') errors.push(`a literal token gave ${literal}, expected 28000`);
  await pool.end();
  const one = new Pool({ max: 1 });
  const rt = await roundTrips(one);
  await one.end();
  if (done !== 4 * TX) errors.push(`${done} transactions ran, expected ${4 * TX}`);
  console.log(JSON.stringify({ client: 'node-postgres', transactions: done, server_pids: pids.size,
                               round_trips_per_transaction: rt, literal_token: literal, errors: errors.slice(0, 10) }));
  process.exit(errors.length ? 1 : 0);
}

main().catch((e) => { console.error(`FAIL: ${e.code || ''} ${String(e.message).split('\n')[0]}`); process.exit(1); });
