-- The privilege surface of tenant_guard: every object the extension creates
-- (extension members, and the objects its scripts create in its schema or
-- for it), one line each, tab-separated:
--   kind, identity, owner, security definer, volatility/parallel, PUBLIC's
--   privileges, other grantees' privileges (role=privileges, the owner left out)
-- Owners show as "superuser" or the role's name; the roles a test creates
-- never appear. Read by test/meta/run_privilege_surface.sh.
WITH ext AS (
    SELECT e.oid FROM pg_catalog.pg_extension e WHERE e.extname = 'tenant_guard'
), members AS (
    SELECT d.classid, d.objid FROM pg_catalog.pg_depend d, ext
    WHERE d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
), objs AS (
    SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' ELSE 'function' END AS kind,
           p.oid::pg_catalog.regprocedure::text AS ident, p.proowner AS owner,
           CASE WHEN p.prosecdef THEN 'definer' ELSE 'invoker' END AS secdef,
           CASE p.provolatile WHEN 'i' THEN 'immutable' WHEN 's' THEN 'stable' ELSE 'volatile' END
               || '/' || CASE p.proparallel WHEN 's' THEN 'safe' WHEN 'r' THEN 'restricted' ELSE 'unsafe' END AS decl,
           coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner)) AS acl
    FROM pg_catalog.pg_proc p
    WHERE p.oid IN (SELECT objid FROM members WHERE classid = 'pg_catalog.pg_proc'::pg_catalog.regclass)
       OR p.pronamespace = 'tenant_guard'::pg_catalog.regnamespace
    UNION ALL
    SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table' WHEN 'v' THEN 'view'
                          WHEN 'S' THEN 'sequence' WHEN 'm' THEN 'materialized view' ELSE 'relation ' || c.relkind::text END
               || CASE WHEN c.relrowsecurity THEN ' (rls)' ELSE '' END,
           -- monthly audit partitions are one line: their names depend on the date
           CASE WHEN c.relispartition AND c.relname ~ '^audit_log_p[0-9]{6}$' THEN 'tenant_guard.audit_log_pYYYYMM'
                ELSE c.oid::pg_catalog.regclass::text END,
           c.relowner, '', '',
           coalesce(c.relacl, pg_catalog.acldefault((CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END)::"char", c.relowner))
    FROM pg_catalog.pg_class c
    WHERE c.relkind IN ('r', 'p', 'v', 'S', 'm', 'f')
      AND (c.oid IN (SELECT objid FROM members WHERE classid = 'pg_catalog.pg_class'::pg_catalog.regclass)
           OR c.relnamespace = 'tenant_guard'::pg_catalog.regnamespace)
    UNION ALL
    SELECT 'type', t.oid::pg_catalog.regtype::text, t.typowner, '', '',
           coalesce(t.typacl, pg_catalog.acldefault('T', t.typowner))
    FROM pg_catalog.pg_type t
    WHERE t.oid IN (SELECT objid FROM members WHERE classid = 'pg_catalog.pg_type'::pg_catalog.regclass)
      -- a table's or view's row type and its array type follow the relation,
      -- and a composite type's array type follows the type (18 lists them as
      -- extension members too, 15 does not)
      AND NOT EXISTS (SELECT FROM pg_catalog.pg_type r JOIN pg_catalog.pg_class c ON c.oid = r.typrelid
                      WHERE c.relkind <> 'c' AND (r.oid = t.oid OR r.typarray = t.oid))
      AND NOT EXISTS (SELECT FROM pg_catalog.pg_type e WHERE e.typarray = t.oid)
    UNION ALL
    SELECT 'schema', n.nspname::text, n.nspowner, '', '', coalesce(n.nspacl, pg_catalog.acldefault('n', n.nspowner))
    FROM pg_catalog.pg_namespace n WHERE n.nspname = 'tenant_guard'
    UNION ALL
    SELECT 'event trigger', e.evtname::text, e.evtowner, '', e.evtevent, NULL
    FROM pg_catalog.pg_event_trigger e
    WHERE e.oid IN (SELECT objid FROM members WHERE classid = 'pg_catalog.pg_event_trigger'::pg_catalog.regclass)
), grants AS (
    SELECT o.kind, o.ident, a.grantee, a.privilege_type
    FROM objs o, LATERAL pg_catalog.aclexplode(o.acl) a
    WHERE a.grantee <> o.owner
)
SELECT DISTINCT o.kind, o.ident,
       CASE WHEN r.rolsuper THEN 'superuser' ELSE r.rolname::text END AS owner,
       o.secdef, o.decl,
       coalesce((SELECT pg_catalog.string_agg(DISTINCT g.privilege_type, ',' ORDER BY g.privilege_type)
                 FROM grants g WHERE g.kind = o.kind AND g.ident = o.ident AND g.grantee = 0), '-') AS public,
       coalesce((SELECT pg_catalog.string_agg(x.who || '=' || x.privs, ' ' ORDER BY x.who)
                 FROM (SELECT gr.rolname::text AS who,
                              pg_catalog.string_agg(DISTINCT g.privilege_type, ',' ORDER BY g.privilege_type) AS privs
                       FROM grants g JOIN pg_catalog.pg_roles gr ON gr.oid = g.grantee
                       WHERE g.kind = o.kind AND g.ident = o.ident GROUP BY gr.rolname) x), '-') AS others
FROM objs o JOIN pg_catalog.pg_roles r ON r.oid = o.owner
ORDER BY 2, 1;
