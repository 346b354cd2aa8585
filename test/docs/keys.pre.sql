-- the master key of "Creating the master key", for this test's own database, with the run's key
\getenv tokens_file TG_TOKENS_SQL
\i :tokens_file
SELECT current_database() AS doc_db \gset
ALTER DATABASE :"doc_db" SET tenant_guard.master_key_file = :'master_key_file';
