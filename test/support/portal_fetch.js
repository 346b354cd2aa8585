// An extended-protocol portal fetched in parts (Execute with a row limit, as a
// JDBC fetchSize does) across the revocation of the support session it was
// opened in. Run by run_revoke_portal.sh: PG* variables name the server; the
// grant's token comes from the environment (TG_SUPPORT_TOKEN), the tenant from
// TG_ORG. Prints one line per step; the harness compares them.
'use strict';
const { Client } = require('pg');

// A query submitted on the client's own queue: Parse, Bind of a named portal,
// Execute of `rows` rows; then further Executes of the same portal on demand.
class Portal {
	constructor(text) {
		this.text = text;
		this.rows = [];
		this.pending = null;
	}
	submit(connection) {
		this.connection = connection;
		connection.parse({ text: this.text, name: '' }, true);
		connection.bind({ portal: 'p', statement: '', values: [] }, true);
		connection.describe({ type: 'P', name: 'p' }, true);
		connection.execute({ portal: 'p', rows: 1 }, true);
		connection.flush();
	}
	execute(n) {
		return new Promise((resolve) => {
			this.rows = [];
			this.pending = resolve;
			this.connection.execute({ portal: 'p', rows: n }, true);
			this.connection.flush();
		});
	}
	finish(outcome) {
		const r = this.pending;
		this.pending = null;
		if (r) r(outcome);
	}
	handleRowDescription() {}
	handleDataRow(msg) { this.rows.push(msg.fields[0]); }
	handlePortalSuspended() { this.finish({ rows: this.rows, suspended: true }); }
	handleCommandComplete() { this.finish({ rows: this.rows, suspended: false }); this.connection.sync(); }
	handleEmptyQuery() { this.connection.sync(); }
	handleError(err) {
		this.finish({ error: err });
		this.connection.sync();
	}
	handleReadyForQuery() { if (this.done) this.done(); }
}

function show(step, o) {
	if (o.error) console.log(`${step}: ERROR ${o.error.code} ${o.error.message}`);
	else console.log(`${step}: rows ${o.rows.join(',')}${o.suspended ? ' (suspended)' : ''}`);
}

async function main() {
	const org = process.env.TG_ORG;
	const agent = new Client({ user: 'agent' });
	const admin = new Client();
	await agent.connect();
	await admin.connect();
	agent.on('notice', () => {});
	await agent.query('CALL tenant_guard.begin_support_session($1)', [process.env.TG_SUPPORT_TOKEN]);
	await agent.query('BEGIN');

	const p = new Portal('SELECT id FROM tickets ORDER BY id');
	const first = new Promise((resolve) => { p.pending = resolve; });
	const settled = new Promise((resolve) => { p.done = resolve; });
	// Client.query() accepts any object with submit() and queues it
	agent.query(p);
	show('first execute', await first);
	show('second execute', await p.execute(1));

	await admin.query("SET tenant_guard.context_source = 'setting'");
	await admin.query('SELECT set_config($1, $2, false)', ['tenant_guard.org_id', org]);
	await admin.query("SET tenant_guard.role = 'admin'");
	const r = await admin.query('SELECT tenant_guard.revoke_support_sessions() AS n');
	console.log(`admin revoked: ${r.rows[0].n}`);

	const third = await p.execute(2);
	show('execute after the revocation', third);
	// after an error the client drops the query at once: only a finished or
	// suspended portal waits for its ReadyForQuery
	if (!third.error) {
		if (third.suspended) p.connection.sync();
		await settled;
	}
	await agent.query('ROLLBACK');
	const after = await agent.query('SELECT count(*) AS n FROM tickets');
	console.log(`later: ${after.rows[0].n} rows`);
	await agent.end();
	await admin.end();
}

main().catch((e) => { console.log(`FAIL: ${e.stack}`); process.exit(1); });
