-- Deterministic description of every object in one schema, for the interop
-- tests (catalogFacts replaces :'schema' with a bind parameter); by hand:
--
-- psql "$DATABASE_URL" -v schema=graphile_worker -At -F ' | ' -f catalog.sql
--
-- One row per fact: (kind, name, detail), ordered by kind, name, detail.
-- The schema's own name followed by a dot (quoted as pg_get_*def prints it, or
-- always double-quoted as in SQL written with escapeIdentifier), also inside
-- function bodies before they are checksummed, is shown as "@SCHEMA@.", and
-- the schema row is named @SCHEMA@, so that two schemas migrated by different
-- tools (e.g. Node into "nodeonly", Go into "gotest") can be compared with a
-- plain diff. Role names
-- in ACLs are shown as-is, except the owner of the object, shown as "@OWNER@".
-- Attribute positions are logical (dropped columns are skipped), so a table
-- that was built by a chain of ALTERs and one created in a single CREATE TABLE
-- compare equal when their visible columns match.
with s as (
  select n.oid as nsp, n.nspname::text as nspname,
         quote_ident(n.nspname) || '.' as qprefix,                         -- as pg_get_*def prints it
         '"' || replace(n.nspname, '"', '""') || '".' as dqprefix          -- always-quoted form
  from pg_catalog.pg_namespace n
  where n.nspname = :'schema'
),
rels as (
  select c.oid, c.relname, c.relkind, c.relowner, c.relacl, c.relpersistence,
         c.relrowsecurity, c.relforcerowsecurity, c.reloptions, c.relispartition
  from pg_catalog.pg_class c join s on c.relnamespace = s.nsp
),
facts(kind, name, detail) as (
  -- the schema itself (its name is shown as @SCHEMA@ too)
  select 'schema'::text, '@SCHEMA@'::text,
         'acl=' || coalesce(regexp_replace(n.nspacl::text, '\m' || pg_catalog.pg_get_userbyid(n.nspowner) || '\M', '@OWNER@', 'g'), 'default')
  from s join pg_catalog.pg_namespace n on n.oid = s.nsp

  -- relations: tables, partitioned tables, views, materialized views,
  -- sequences, composite types (relkind c), foreign tables; indexes too
  union all
  select 'relation', r.relname,
         'relkind=' || r.relkind::text
         || ' persistence=' || r.relpersistence::text
         || ' rls=' || r.relrowsecurity
         || ' force_rls=' || r.relforcerowsecurity
         || ' partition=' || r.relispartition
         || ' options=' || coalesce(r.reloptions::text, 'none')
         || ' acl=' || coalesce(regexp_replace(r.relacl::text, '\m' || pg_catalog.pg_get_userbyid(r.relowner) || '\M', '@OWNER@', 'g'), 'default')
  from rels r

  -- columns of tables, views, composite types, ... (not indexes / sequences)
  union all
  select 'column', r.relname || '.' || a.attname,
         'pos=' || row_number() over (partition by r.oid order by a.attnum)
         || ' type=' || pg_catalog.format_type(a.atttypid, a.atttypmod)
         || ' notnull=' || a.attnotnull
         || ' default=' || coalesce(case when a.attgenerated = '' then pg_catalog.pg_get_expr(d.adbin, d.adrelid) end, 'none')
         || ' generated=' || coalesce(case when a.attgenerated <> '' then a.attgenerated::text || ':' || pg_catalog.pg_get_expr(d.adbin, d.adrelid) end, 'none')
         || ' identity=' || coalesce(nullif(a.attidentity::text, ''), 'none')
         || ' collation=' || coalesce(case when a.attcollation <> t.typcollation then (select co.collname from pg_catalog.pg_collation co where co.oid = a.attcollation) end, 'default')
         || ' acl=' || coalesce(a.attacl::text, 'default')
  from rels r
  join pg_catalog.pg_attribute a on a.attrelid = r.oid and a.attnum > 0 and not a.attisdropped
  join pg_catalog.pg_type t on t.oid = a.atttypid
  left join pg_catalog.pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
  where r.relkind in ('r', 'p', 'v', 'm', 'c', 'f')

  -- constraints on tables (and on domains, see below)
  union all
  select 'constraint', r.relname || '.' || con.conname,
         'type=' || con.contype::text || ' ' || pg_catalog.pg_get_constraintdef(con.oid, true)
         || ' validated=' || con.convalidated
  from rels r join pg_catalog.pg_constraint con on con.conrelid = r.oid

  -- indexes (including those backing constraints)
  union all
  select 'index', ic.relname,
         pg_catalog.pg_get_indexdef(i.indexrelid)
         || ' valid=' || i.indisvalid
         || ' clustered=' || i.indisclustered
         || ' replident=' || i.indisreplident
  from pg_catalog.pg_index i
  join pg_catalog.pg_class ic on ic.oid = i.indexrelid
  join s on ic.relnamespace = s.nsp

  -- triggers (not internal ones, e.g. those implementing foreign keys)
  union all
  select 'trigger', r.relname || '.' || tg.tgname,
         pg_catalog.pg_get_triggerdef(tg.oid, true) || ' enabled=' || tg.tgenabled::text
  from rels r join pg_catalog.pg_trigger tg on tg.tgrelid = r.oid and not tg.tgisinternal

  -- row level security policies
  union all
  select 'policy', r.relname || '.' || p.polname,
         'cmd=' || p.polcmd::text || ' permissive=' || p.polpermissive
         || ' roles=' || coalesce((select string_agg(case when x = 0 then 'public' else pg_catalog.pg_get_userbyid(x) end, ',' order by 1)
                                   from unnest(p.polroles) x), '')
         || ' using=' || coalesce(pg_catalog.pg_get_expr(p.polqual, p.polrelid), 'none')
         || ' check=' || coalesce(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), 'none')
  from rels r join pg_catalog.pg_policy p on p.polrelid = r.oid

  -- rewrite rules other than the ones that implement views
  union all
  select 'rule', r.relname || '.' || rw.rulename, pg_catalog.pg_get_ruledef(rw.oid, true)
  from rels r join pg_catalog.pg_rewrite rw on rw.ev_class = r.oid
  where rw.rulename <> '_RETURN'

  -- views and materialized views
  union all
  select 'view', r.relname, pg_catalog.pg_get_viewdef(r.oid, true)
  from rels r where r.relkind in ('v', 'm')

  -- sequences: parameters and owning column
  union all
  select 'sequence', r.relname,
         'type=' || pg_catalog.format_type(sq.seqtypid, null)
         || ' start=' || sq.seqstart || ' increment=' || sq.seqincrement
         || ' min=' || sq.seqmin || ' max=' || sq.seqmax
         || ' cache=' || sq.seqcache || ' cycle=' || sq.seqcycle
         || ' owned_by=' || coalesce((
              select dep.deptype::text || ':' || oc.relname || '.' || oa.attname
              from pg_catalog.pg_depend dep
              join pg_catalog.pg_class oc on oc.oid = dep.refobjid
              join pg_catalog.pg_attribute oa on oa.attrelid = dep.refobjid and oa.attnum = dep.refobjsubid
              where dep.classid = 'pg_catalog.pg_class'::regclass and dep.objid = r.oid
                and dep.refclassid = 'pg_catalog.pg_class'::regclass and dep.deptype in ('a', 'i')
              limit 1), 'none')
  from rels r join pg_catalog.pg_sequence sq on sq.seqrelid = r.oid

  -- types defined in the schema other than the row types of tables/views:
  -- composite (attributes are listed as 'column' rows), enum, domain, range, base
  union all
  select 'type', t.typname,
         'typtype=' || t.typtype::text
         || case t.typtype
              when 'e' then ' labels=' || coalesce((select string_agg(e.enumlabel, ',' order by e.enumsortorder)
                                                    from pg_catalog.pg_enum e where e.enumtypid = t.oid), '')
              when 'd' then ' base=' || pg_catalog.format_type(t.typbasetype, t.typtypmod)
                            || ' notnull=' || t.typnotnull
                            || ' default=' || coalesce(t.typdefault, 'none')
              else ''
            end
         || ' acl=' || coalesce(regexp_replace(t.typacl::text, '\m' || pg_catalog.pg_get_userbyid(t.typowner) || '\M', '@OWNER@', 'g'), 'default')
  from pg_catalog.pg_type t join s on t.typnamespace = s.nsp
  where not exists (select 1 from pg_catalog.pg_type el where el.typarray = t.oid)  -- implicit array types
    and (t.typrelid = 0 or (select c.relkind from pg_catalog.pg_class c where c.oid = t.typrelid) = 'c')
  union all
  select 'type_constraint', t.typname || '.' || con.conname, pg_catalog.pg_get_constraintdef(con.oid, true)
  from pg_catalog.pg_type t join s on t.typnamespace = s.nsp
  join pg_catalog.pg_constraint con on con.contypid = t.oid

  -- functions, procedures, aggregates
  union all
  select 'function', p.proname || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')',
         'kind=' || p.prokind::text
         || ' args=(' || pg_catalog.pg_get_function_arguments(p.oid) || ')'
         || ' returns=' || coalesce(pg_catalog.pg_get_function_result(p.oid), 'none')
         || ' language=' || l.lanname
         || ' volatility=' || p.provolatile::text
         || ' strict=' || p.proisstrict
         || ' security_definer=' || p.prosecdef
         || ' leakproof=' || p.proleakproof
         || ' parallel=' || p.proparallel::text
         || ' cost=' || p.procost
         || ' rows=' || p.prorows
         || ' config=' || coalesce(p.proconfig::text, 'none')
         || ' acl=' || coalesce(regexp_replace(p.proacl::text, '\m' || pg_catalog.pg_get_userbyid(p.proowner) || '\M', '@OWNER@', 'g'), 'default')
  from pg_catalog.pg_proc p
  join s on p.pronamespace = s.nsp
  join pg_catalog.pg_language l on l.oid = p.prolang
  union all
  -- function bodies, as checksums: exact text, and with runs of whitespace
  -- collapsed (the full text is in pg_dump --schema-only)
  select 'function_body', p.proname || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')',
         'md5=' || md5(b.src) || ' md5_ws=' || md5(btrim(regexp_replace(b.src, '\s+', ' ', 'g')))
  from pg_catalog.pg_proc p join s on p.pronamespace = s.nsp
  cross join lateral (
    select replace(replace(coalesce(p.prosrc, ''), s.dqprefix, '@SCHEMA@.'), s.qprefix, '@SCHEMA@.') as src
  ) b

  -- comments on anything in the schema
  union all
  select 'comment', r.relname || coalesce('.' || a.attname, ''), ds.description
  from rels r
  join pg_catalog.pg_description ds on ds.classoid = 'pg_catalog.pg_class'::regclass and ds.objoid = r.oid
  left join pg_catalog.pg_attribute a on a.attrelid = r.oid and a.attnum = ds.objsubid and ds.objsubid > 0
  union all
  select 'comment', p.proname || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')', ds.description
  from pg_catalog.pg_proc p join s on p.pronamespace = s.nsp
  join pg_catalog.pg_description ds on ds.classoid = 'pg_catalog.pg_proc'::regclass and ds.objoid = p.oid
)
select kind, name, detail
from (
  select f.kind::text as kind,
         replace(replace(f.name, s.dqprefix, '@SCHEMA@.'), s.qprefix, '@SCHEMA@.') as name,
         -- newlines (view definitions, comments) are shown as \n: one fact, one line
         replace(coalesce(replace(replace(f.detail, s.dqprefix, '@SCHEMA@.'), s.qprefix, '@SCHEMA@.'), '(null)'),
                 E'\n', '\n') as detail
  from facts f cross join s
) described
order by kind collate "C", name collate "C", detail collate "C";
