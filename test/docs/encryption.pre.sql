-- the page's first block, for this test's own database, with the run's master key
\getenv tokens_file TG_TOKENS_SQL
\i :tokens_file
SELECT current_database() AS doc_db \gset
ALTER DATABASE :"doc_db" SET tenant_guard.master_key_file = :'master_key_file';
