-- Back to the helpers of 0005 (search_path pinned, so not inlinable) and to
-- pretenant.license_by_key as 0006 and 0007 left it (owned by coditect_system, EXECUTE
-- revoked from PUBLIC and granted to coditect_app). CREATE OR REPLACE keeps the helpers'
-- owner and grants.

CREATE OR REPLACE FUNCTION app.current_org_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$ SELECT nullif(pg_catalog.current_setting('app.org_id', true), '')::uuid $$;

CREATE OR REPLACE FUNCTION app.current_user_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$ SELECT nullif(pg_catalog.current_setting('app.user_id', true), '')::uuid $$;

CREATE OR REPLACE FUNCTION app.current_role() RETURNS public.user_role
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT nullif(pg_catalog.current_setting('app.role', true), '')::public.user_role
$$;

-- OWNER > ADMIN > MEMBER > GUEST; false when there is no role in the context.
CREATE OR REPLACE FUNCTION app.role_at_least(p_role public.user_role) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(
        pg_catalog.array_position('{GUEST,MEMBER,ADMIN,OWNER}'::public.user_role[],
                                  app.current_role())
        >= pg_catalog.array_position('{GUEST,MEMBER,ADMIN,OWNER}'::public.user_role[], p_role),
        false)
$$;

-- License validation lookup by key digest: the live (not deleted) license with that key,
-- with whether its organization is live. No row when unknown. Activation logic is not here.
CREATE FUNCTION pretenant.license_by_key(p_key_digest bytea)
    RETURNS TABLE (id uuid, organization_id uuid, name varchar, key_prefix varchar,
                   tier public.license_tier, status public.license_status, seats integer,
                   machine_bound boolean, features text[], starts_at timestamptz,
                   expires_at timestamptz, metadata jsonb, created_at timestamptz,
                   updated_at timestamptz, organization_live boolean)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT l.id, l.organization_id, l.name, l.key_prefix, l.tier, l.status, l.seats,
           l.machine_bound, l.features, l.starts_at, l.expires_at, l.metadata, l.created_at,
           l.updated_at, (o.status = 'ACTIVE' AND o.deleted_at IS NULL)
      FROM public.licenses AS l
      JOIN public.organizations AS o ON o.id = l.organization_id
     WHERE l.key_digest = p_key_digest
       AND l.deleted_at IS NULL
$$;

REVOKE ALL ON FUNCTION pretenant.license_by_key(bytea) FROM PUBLIC;

GRANT CREATE ON SCHEMA pretenant TO coditect_system;
ALTER FUNCTION pretenant.license_by_key(bytea) OWNER TO coditect_system;
REVOKE CREATE ON SCHEMA pretenant FROM coditect_system;

GRANT EXECUTE ON FUNCTION pretenant.license_by_key(bytea) TO coditect_app;
