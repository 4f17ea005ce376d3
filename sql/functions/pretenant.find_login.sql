-- requires: 0019
--
-- A pre-tenant function (see pretenant.signup.sql for the rules they all follow).
--
-- Login lookup: the live user with this email (case-insensitive), whatever their status,
-- with whether their organization is live (ACTIVE and not deleted). No row when unknown.
-- The caller verifies the password against password_hash and decides. By email_key (0019),
-- not lower(email): RLS applies to coditect_system, and only a leakproof comparison with the
-- column may use its index before the policies' checks.

CREATE OR REPLACE FUNCTION pretenant.find_login(p_email varchar)
    RETURNS TABLE (user_id uuid, organization_id uuid, password_hash varchar,
                   user_status public.user_status, organization_live boolean)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT u.id, u.organization_id, u.password_hash, u.status,
           (o.status = 'ACTIVE' AND o.deleted_at IS NULL)
      FROM public.users AS u
      JOIN public.organizations AS o ON o.id = u.organization_id
     WHERE u.email_key = lower(p_email)
       AND u.deleted_at IS NULL
$$;

REVOKE ALL ON FUNCTION pretenant.find_login(varchar) FROM PUBLIC;
-- Owned by coditect_system (its policies of 0019), which needs CREATE on the schema for the
-- ownership change (a no-op when the function is already its own).
GRANT CREATE ON SCHEMA pretenant TO coditect_system;
ALTER FUNCTION pretenant.find_login(varchar) OWNER TO coditect_system;
REVOKE CREATE ON SCHEMA pretenant FROM coditect_system;
GRANT EXECUTE ON FUNCTION pretenant.find_login(varchar) TO coditect_app;
