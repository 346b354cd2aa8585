-- Lint rule TG063 (lint(); tenant_guard._lint_support_findings()): a support
-- agent that reaches the application's tables and, in claims or setting mode,
-- sets its own tenant context, reads any tenant with no grant and no audit.
\set SHOW_CONTEXT never
SELECT current_user AS su \gset
\set org_b '22222222-2222-4222-8222-222222222222'
CREATE ROLE regress_ls_app;
CREATE ROLE regress_ls_dana LOGIN;
CREATE ROLE regress_ls_erin LOGIN;            -- an agent without the application's privileges
CREATE ROLE regress_ls_group NOLOGIN;
GRANT tenant_guard_support TO regress_ls_dana, regress_ls_erin, regress_ls_group;
GRANT regress_ls_app TO regress_ls_dana;      -- as support-access.md used to set it up
CREATE SCHEMA ls;
CREATE TABLE ls.notes (org_id uuid NOT NULL, id int, body text, PRIMARY KEY (org_id, id));
INSERT INTO ls.notes VALUES (:'org_b', 1, 'tenant B''s note');
SELECT tenant_guard.protect('ls.notes');
GRANT USAGE ON SCHEMA ls TO regress_ls_app;
GRANT SELECT ON ls.notes TO regress_ls_app;
-- claims mode (the default): the finding, and what it is about
SELECT * FROM tenant_guard.lint() WHERE code = 'TG063';
\c - regress_ls_dana
SELECT set_config('request.jwt.claims', '{"org_id": "22222222-2222-4222-8222-222222222222"}', false) IS NOT NULL AS set;
SELECT body FROM ls.notes;
\c - :su
-- signed mode for the session: no finding
SET tenant_guard.context_source = 'signed';
SELECT count(*) FROM tenant_guard.lint() WHERE code = 'TG063';
-- but the agent's own sessions set to claims: the finding again
ALTER ROLE regress_ls_dana SET tenant_guard.context_source = 'claims';
SELECT code, object FROM tenant_guard.lint() WHERE code = 'TG063';
ALTER ROLE regress_ls_dana RESET tenant_guard.context_source;
-- setting mode counts as well
SET tenant_guard.context_source = 'setting';
SELECT code, object FROM tenant_guard.lint() WHERE code = 'TG063';
RESET tenant_guard.context_source;
-- without the application's privileges: nothing to report
REVOKE regress_ls_app FROM regress_ls_dana;
SELECT count(*) FROM tenant_guard.lint() WHERE code = 'TG063';
-- not for PUBLIC
SET ROLE regress_ls_erin;
SELECT count(*) FROM tenant_guard.lint() WHERE code = 'TG063';
RESET ROLE;
DROP SCHEMA ls CASCADE;
DROP ROLE regress_ls_app, regress_ls_dana, regress_ls_erin, regress_ls_group;
