"""psycopg 3 + psycopg_pool recipe for tenant_guard's signed mode (docs/signed-mode.md).

This file is the recipe the documentation shows, and test/recipes/run_recipes.sh
runs it through pgbouncer in transaction mode. Copy it into an application:

    pool = ConnectionPool(conninfo, kwargs=tenant_guard_connect_kwargs(), open=True)
    with tenant_transaction(pool, request_token) as conn:
        rows = conn.execute("SELECT id, title FROM app.projects").fetchall()

Rules it follows:
  * the token is a bind parameter of SELECT tenant_guard.set_context(%s):
    never formatted into the SQL text (tenant_guard refuses that, because every
    session of the role could read it in pg_stat_activity);
  * the context is transaction-scoped (set_context's default), so a pooled
    connection never carries one tenant's context into the next borrower,
    whatever the pooler does between transactions;
  * pipeline mode: BEGIN, set_context, the statements and COMMIT travel
    together, one network round trip per transaction, so the context costs no
    round trip of its own;
  * prepare_threshold=None: no named prepared statements, which a pooler in
    transaction mode (pgbouncer before 1.21) cannot route.
"""
from contextlib import contextmanager

import psycopg


def tenant_guard_connect_kwargs():
    """Connection options for a pool behind pgbouncer in transaction mode."""
    return {"prepare_threshold": None, "autocommit": True}


@contextmanager
def tenant_transaction(pool, token):
    """A transaction whose tenant context is the verified token's.

    Statements run inside the block belong to the token's tenant, user and
    role, and the context ends with the transaction. BEGIN, set_context, the
    block's statements and COMMIT are queued in one pipeline and sent with a
    single Sync: read results after the block, and the whole transaction is
    one network round trip (reading one inside the block costs one more).
    An error rolls the transaction back (psycopg_pool rolls back a
    connection returned inside a failed transaction before lending it again).
    """
    with pool.connection() as conn:
        with conn.pipeline():
            conn.execute("BEGIN")
            conn.execute("SELECT tenant_guard.set_context(%s)", [token])
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")


@contextmanager
def service_transaction(pool, service_token):
    """The same for a background job: the token is a service token
    (user id service:NAME, signed by a key listed in
    tenant_guard.jwt_service_key_ids) for one tenant."""
    with tenant_transaction(pool, service_token) as conn:
        yield conn


__all__ = ["tenant_guard_connect_kwargs", "tenant_transaction", "service_transaction", "psycopg"]
