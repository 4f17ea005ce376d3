-- The tier an organization's traffic is rate-limited at: its best live, active license.
-- Read at login and refresh, before a tenant context exists, so it is a narrow definer
-- function like the others in 0006 (same ownership hand-over and grants).

GRANT CREATE ON SCHEMA pretenant TO coditect_system;

CREATE FUNCTION pretenant.organization_tier(p_org uuid)
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

ALTER FUNCTION pretenant.organization_tier(uuid) OWNER TO coditect_system;
REVOKE CREATE ON SCHEMA pretenant FROM coditect_system;
REVOKE ALL ON FUNCTION pretenant.organization_tier(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pretenant.organization_tier(uuid) TO coditect_app;
