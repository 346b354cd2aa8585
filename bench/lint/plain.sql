-- The plain-SQL audit users write by hand (the three checks most blog posts
-- and Supabase's advisor start with): tables without RLS, permissive
-- policies open to everyone, views without security_invoker.
SELECT count(*) FROM (
    SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND c.relkind IN ('r', 'p') AND NOT c.relrowsecurity
    UNION ALL
    SELECT p.policyname FROM pg_policies p WHERE p.permissive = 'PERMISSIVE' AND (p.qual = 'true' OR p.with_check = 'true')
    UNION ALL
    SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND c.relkind = 'v'
      AND NOT coalesce(c.reloptions @> '{security_invoker=true}', false)) x;
