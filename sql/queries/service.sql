-- Service endpoints: what readiness reads.

-- name: schema_version
-- The newest applied migration; readable by the app role, and one round trip over the pool
-- that doubles as the database check.
select max(version) as current
  from public.schema_migrations
