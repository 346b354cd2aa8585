ALTER DATABASE :"doc_db" RESET tenant_guard.master_key_file;
DROP SCHEMA app CASCADE;
DROP OWNED BY regress_encryption_app_user;
DROP ROLE regress_encryption_app_user;
