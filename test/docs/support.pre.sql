-- the page's first block, for this test's own database
SELECT current_database() AS doc_db \gset
ALTER DATABASE :"doc_db" SET tenant_guard.context_source = 'signed';
