-- requires: 0002
--
-- The tier an organization's traffic is rate-limited at: its best live, active license.
-- Read at login and refresh, before a tenant context exists, so it is a narrow definer
-- function like the other pre-tenant functions (see pretenant.signup.sql).

CREATE OR REPLACE FUNCTION pretenant.organization_tier(p_org uuid)
    RETURNS public.license_tier
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT max(l.tier)
      FROM public.licenses AS l
     WHERE l.organization_id = p_org
       AND l.status = 'ACTIVE'
       AND l.deleted_at IS NULL
       AND l.starts_at <= now()
       AND (l.expires_at IS NULL OR l.expires_at > now())
$$;

REVOKE ALL ON FUNCTION pretenant.organization_tier(uuid) FROM PUBLIC;
-- Owned by coditect_system (its policies of 0019), which needs CREATE on the schema for the
-- ownership change (a no-op when the function is already its own).
GRANT CREATE ON SCHEMA pretenant TO coditect_system;
ALTER FUNCTION pretenant.organization_tier(uuid) OWNER TO coditect_system;
REVOKE CREATE ON SCHEMA pretenant FROM coditect_system;
GRANT EXECUTE ON FUNCTION pretenant.organization_tier(uuid) TO coditect_app;
