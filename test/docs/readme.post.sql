SELECT * FROM tenant_guard.uninstall();
DROP EXTENSION tenant_guard;
DROP SCHEMA app CASCADE;
DROP OWNED BY regress_readme_app_user, regress_readme_migrator;
DROP ROLE regress_readme_app_user, regress_readme_migrator;
