-- requires: 0015
--
-- Pre-tenant functions do what must happen before the caller's tenant is known (signup,
-- login, token refresh, license validation by key). Each is a SECURITY DEFINER function
-- owned by coditect_system (crossing tenants by its policies of migration 0019), in schema
-- pretenant where the API role has USAGE but not CREATE, with search_path pinned and every
-- table schema-qualified, every value a bound parameter (no dynamic SQL), each doing exactly
-- one thing. EXECUTE: coditect_app only, never PUBLIC.
--
-- Signup: a new organization, its OWNER, a FREE license (the FREE defaults of
-- public.license_tiers, which mirrors app/licensing/tiers.py) and the first session, in one
-- statement. Returns one row. A taken email (case-insensitively, among live users) raises
-- unique_violation on constraint users_email_live_key; a taken slug raises it on
-- organizations_slug_live_key. Nothing is half-created: the statement fails as a whole.

CREATE OR REPLACE FUNCTION pretenant.signup(
    p_email               varchar,
    p_password_hash       varchar,
    p_full_name           varchar,
    p_org_name            varchar,
    p_org_slug            varchar,
    p_license_key_digest  bytea,
    p_license_key_prefix  varchar,
    p_refresh_digest      bytea,
    p_session_expires_at  timestamptz,
    p_user_agent          varchar,
    p_ip                  inet)
    RETURNS TABLE (organization_id uuid, user_id uuid, license_id uuid, session_id uuid)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_org     uuid;
    v_user    uuid;
    v_license uuid;
    v_session uuid;
BEGIN
    INSERT INTO public.organizations (name, slug)
    VALUES (p_org_name, p_org_slug)
    RETURNING id INTO v_org;

    INSERT INTO public.users (organization_id, email, full_name, role, status, password_hash,
                              last_login_at)
    VALUES (v_org, p_email, p_full_name, 'OWNER', 'ACTIVE', p_password_hash, now())
    RETURNING id INTO v_user;

    UPDATE public.organizations SET owner_id = v_user WHERE id = v_org;

    INSERT INTO public.licenses (organization_id, name, key_prefix, key_digest, tier, status,
                                 seats, machine_bound, features)
    SELECT v_org, 'Free license', p_license_key_prefix, p_license_key_digest, t.tier, 'ACTIVE',
           t.seats, t.machine_bound, t.features
      FROM public.license_tiers AS t
     WHERE t.tier = 'FREE'
    RETURNING id INTO v_license;

    INSERT INTO public.sessions (organization_id, user_id, refresh_digest, expires_at,
                                 user_agent, ip)
    VALUES (v_org, v_user, p_refresh_digest, p_session_expires_at, p_user_agent, p_ip)
    RETURNING id INTO v_session;

    RETURN QUERY SELECT v_org, v_user, v_license, v_session;
END
$$;

REVOKE ALL ON FUNCTION pretenant.signup(varchar, varchar, varchar, varchar, varchar, bytea,
    varchar, bytea, timestamptz, varchar, inet)
    FROM PUBLIC;
-- Owned by coditect_system (its policies of 0019), which needs CREATE on the schema for the
-- ownership change (a no-op when the function is already its own).
GRANT CREATE ON SCHEMA pretenant TO coditect_system;
ALTER FUNCTION pretenant.signup(varchar, varchar, varchar, varchar, varchar, bytea,
    varchar, bytea, timestamptz, varchar, inet)
    OWNER TO coditect_system;
REVOKE CREATE ON SCHEMA pretenant FROM coditect_system;
GRANT EXECUTE ON FUNCTION pretenant.signup(varchar, varchar, varchar, varchar, varchar, bytea,
    varchar, bytea, timestamptz, varchar, inet)
    TO coditect_app;
