SELECT tenant_guard.disable_audit('app.members');
DROP SCHEMA app CASCADE;
DROP OWNED BY regress_audit_app_user;
DROP ROLE regress_audit_app_user;
