ALTER DATABASE :"doc_db" RESET tenant_guard.context_source;
SELECT tenant_guard.disable_audit('app.invoices');
DROP SCHEMA app CASCADE;
DROP OWNED BY regress_support_app_user, regress_support_dana;
DROP ROLE regress_support_app_user, regress_support_dana;
