ALTER DATABASE :"doc_db" RESET tenant_guard.master_key_file;
DROP SCHEMA app CASCADE;
