// node-postgres (npm "pg") + pg.Pool recipe for tenant_guard's signed mode
// (docs/signed-mode.md). This file is the recipe the documentation shows, and
// test/recipes/run_recipes.sh runs it through pgbouncer in transaction mode.
//
//   const pool = new Pool({ connectionString });
//   const rows = await withTenant(pool, requestToken, (c) => c.query('SELECT id, title FROM app.projects'));
//
// Rules it follows:
//  * the token is a bind parameter ($1) of SELECT tenant_guard.set_context($1),
//    never formatted into the SQL text (tenant_guard refuses that: every
//    session of the role can read statement texts in pg_stat_activity);
//  * the context is transaction-scoped, set once per transaction: one round
//    trip per transaction, none per statement (node-postgres sends one query
//    at a time, so BEGIN, set_context and COMMIT are a round trip each);
//  * queries with parameters use unnamed statements, which pgbouncer in
//    transaction mode routes; do not give queries a "name" (a named prepared
//    statement) behind pgbouncer before 1.21.
'use strict';

async function withTenant(pool, token, fn) {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT tenant_guard.set_context($1)', [token]);
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

// A background job: the token is a service token (user id service:NAME,
// signed by a key listed in tenant_guard.jwt_service_key_ids) for one tenant.
const withService = withTenant;

module.exports = { withTenant, withService };
