-- Pre-tenant operations: what must happen before the caller's tenant is known (signup,
-- login, token refresh, license lookup by key). Each is a SECURITY DEFINER function owned
-- by coditect_system (BYPASSRLS), in schema pretenant where the API role has USAGE but
-- not CREATE, with search_path pinned and every table schema-qualified, every value a
-- bound parameter (no dynamic SQL), each doing exactly one thing.
-- EXECUTE is revoked from PUBLIC here and granted to coditect_app in 0007_grants.
-- (To hand a function to coditect_system, that role needs CREATE on the schema for the
-- duration of ALTER FUNCTION ... OWNER TO; it is granted and revoked around it below.
-- Later migrations that add pretenant functions do the same.)

-- Signup: a new organization, its OWNER, a FREE license and the first session, in one
-- statement. Returns one row. A taken email (case-insensitively, among live users) raises
-- unique_violation on constraint users_email_live_key; a taken slug raises it on
-- organizations_slug_live_key. Nothing is half-created: the statement fails as a whole.
CREATE FUNCTION pretenant.signup(
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
                                 seats, machine_bound)
    VALUES (v_org, 'Free license', p_license_key_prefix, p_license_key_digest, 'FREE', 'ACTIVE',
            1, true)
    RETURNING id INTO v_license;

    INSERT INTO public.sessions (organization_id, user_id, refresh_digest, expires_at,
                                 user_agent, ip)
    VALUES (v_org, v_user, p_refresh_digest, p_session_expires_at, p_user_agent, p_ip)
    RETURNING id INTO v_session;

    RETURN QUERY SELECT v_org, v_user, v_license, v_session;
END
$$;

-- Login lookup: the live user with this email (case-insensitive), whatever their status,
-- with whether their organization is live (ACTIVE and not deleted). No row when unknown.
-- The caller verifies the password against password_hash and decides.
CREATE FUNCTION pretenant.find_login(p_email varchar)
    RETURNS TABLE (user_id uuid, organization_id uuid, password_hash varchar,
                   user_status public.user_status, organization_live boolean)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT u.id, u.organization_id, u.password_hash, u.status,
           (o.status = 'ACTIVE' AND o.deleted_at IS NULL)
      FROM public.users AS u
      JOIN public.organizations AS o ON o.id = u.organization_id
     WHERE lower(u.email) = lower(p_email)
       AND u.deleted_at IS NULL
$$;

-- Opens a session (after the caller verified the password) for an ACTIVE, live user of a
-- live, ACTIVE organization, and records the login time. Returns the session id, or NULL
-- when the user may not log in.
CREATE FUNCTION pretenant.open_session(
    p_user_id        uuid,
    p_refresh_digest bytea,
    p_expires_at     timestamptz,
    p_user_agent     varchar,
    p_ip             inet)
    RETURNS uuid
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_org     uuid;
    v_session uuid;
BEGIN
    UPDATE public.users AS u
       SET last_login_at = now()
      FROM public.organizations AS o
     WHERE u.id = p_user_id
       AND u.status = 'ACTIVE'
       AND u.deleted_at IS NULL
       AND o.id = u.organization_id
       AND o.status = 'ACTIVE'
       AND o.deleted_at IS NULL
    RETURNING u.organization_id INTO v_org;

    IF v_org IS NULL THEN
        RETURN NULL;
    END IF;

    INSERT INTO public.sessions (organization_id, user_id, refresh_digest, expires_at,
                                 user_agent, ip)
    VALUES (v_org, p_user_id, p_refresh_digest, p_expires_at, p_user_agent, p_ip)
    RETURNING id INTO v_session;
    RETURN v_session;
END
$$;

-- Re-hash on login (new parameters): compare-and-set on the old hash, so a concurrent
-- password change is never overwritten. True when the hash was replaced.
CREATE FUNCTION pretenant.set_password_hash(p_user_id uuid, p_old_hash varchar, p_new_hash varchar)
    RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    UPDATE public.users
       SET password_hash = p_new_hash
     WHERE id = p_user_id
       AND password_hash = p_old_hash
       AND deleted_at IS NULL;
    RETURN FOUND;
END
$$;

-- Refresh-token rotation with reuse detection. The session row is locked (FOR UPDATE) so
-- concurrent refreshes of one session serialize. Outcomes:
--   'rotated'  p_old_digest is the session's current token and the session is live (not
--              revoked, not expired, user ACTIVE and not deleted, organization ACTIVE and
--              not deleted): the current token becomes p_new_digest, the old one is kept
--              as previous_refresh_digest, rotated_at = now().
--   'grace'    p_old_digest is the previous token, rotated less than p_grace ago (a retry
--              or a concurrent refresh), and the session is live: the current token is
--              replaced by p_new_digest again; previous token and rotated_at are kept, so
--              the grace window is never extended.
--   'reused'   p_old_digest is the previous token outside the grace window: the token was
--              stolen or replayed, so the session is revoked (revoked_reason
--              'refresh_reuse').
--   'invalid'  anything else: unknown token, a token older than the previous one (only
--              one previous token is kept, so older ones are simply unknown), the previous
--              token within grace of a session that is no longer live, or the current
--              token of a session that is no longer live.
-- session_id, user_id and organization_id are returned for every outcome but 'invalid'.
CREATE FUNCTION pretenant.rotate_refresh(p_old_digest bytea, p_new_digest bytea, p_grace interval)
    RETURNS TABLE (outcome text, session_id uuid, user_id uuid, organization_id uuid)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_session public.sessions%ROWTYPE;
    v_live    boolean;
BEGIN
    SELECT s.* INTO v_session
      FROM public.sessions AS s
     WHERE s.refresh_digest = p_old_digest
       FOR UPDATE;

    IF NOT FOUND THEN
        SELECT s.* INTO v_session
          FROM public.sessions AS s
         WHERE s.previous_refresh_digest = p_old_digest
           FOR UPDATE;
        IF NOT FOUND THEN
            RETURN QUERY SELECT 'invalid'::text, NULL::uuid, NULL::uuid, NULL::uuid;
            RETURN;
        END IF;
    END IF;

    SELECT v_session.revoked_at IS NULL
       AND v_session.expires_at > now()
       AND EXISTS (SELECT 1
                     FROM public.users AS u
                     JOIN public.organizations AS o ON o.id = u.organization_id
                    WHERE u.organization_id = v_session.organization_id
                      AND u.id = v_session.user_id
                      AND u.status = 'ACTIVE'
                      AND u.deleted_at IS NULL
                      AND o.status = 'ACTIVE'
                      AND o.deleted_at IS NULL)
      INTO v_live;

    IF v_session.refresh_digest = p_old_digest THEN
        IF NOT v_live THEN
            RETURN QUERY SELECT 'invalid'::text, NULL::uuid, NULL::uuid, NULL::uuid;
            RETURN;
        END IF;
        UPDATE public.sessions
           SET previous_refresh_digest = p_old_digest,
               refresh_digest = p_new_digest,
               rotated_at = now(),
               last_used_at = now()
         WHERE id = v_session.id;
        RETURN QUERY SELECT 'rotated'::text, v_session.id, v_session.user_id,
                            v_session.organization_id;
        RETURN;
    END IF;

    -- p_old_digest is the previous token.
    IF v_session.rotated_at > now() - p_grace THEN
        IF NOT v_live THEN
            RETURN QUERY SELECT 'invalid'::text, NULL::uuid, NULL::uuid, NULL::uuid;
            RETURN;
        END IF;
        UPDATE public.sessions
           SET refresh_digest = p_new_digest,
               last_used_at = now()
         WHERE id = v_session.id;
        RETURN QUERY SELECT 'grace'::text, v_session.id, v_session.user_id,
                            v_session.organization_id;
        RETURN;
    END IF;

    UPDATE public.sessions
       SET revoked_at = now(),
           revoked_reason = 'refresh_reuse'
     WHERE id = v_session.id
       AND revoked_at IS NULL;
    RETURN QUERY SELECT 'reused'::text, v_session.id, v_session.user_id,
                        v_session.organization_id;
END
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

REVOKE ALL ON FUNCTION pretenant.signup(varchar, varchar, varchar, varchar, varchar, bytea,
    varchar, bytea, timestamptz, varchar, inet) FROM PUBLIC;
REVOKE ALL ON FUNCTION pretenant.find_login(varchar) FROM PUBLIC;
REVOKE ALL ON FUNCTION pretenant.open_session(uuid, bytea, timestamptz, varchar, inet) FROM PUBLIC;
REVOKE ALL ON FUNCTION pretenant.set_password_hash(uuid, varchar, varchar) FROM PUBLIC;
REVOKE ALL ON FUNCTION pretenant.rotate_refresh(bytea, bytea, interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION pretenant.license_by_key(bytea) FROM PUBLIC;

-- Hand them to coditect_system (BYPASSRLS), which needs CREATE on the schema just for
-- the ownership change.
GRANT CREATE ON SCHEMA pretenant TO coditect_system;
ALTER FUNCTION pretenant.signup(varchar, varchar, varchar, varchar, varchar, bytea, varchar,
    bytea, timestamptz, varchar, inet) OWNER TO coditect_system;
ALTER FUNCTION pretenant.find_login(varchar) OWNER TO coditect_system;
ALTER FUNCTION pretenant.open_session(uuid, bytea, timestamptz, varchar, inet)
    OWNER TO coditect_system;
ALTER FUNCTION pretenant.set_password_hash(uuid, varchar, varchar) OWNER TO coditect_system;
ALTER FUNCTION pretenant.rotate_refresh(bytea, bytea, interval) OWNER TO coditect_system;
ALTER FUNCTION pretenant.license_by_key(bytea) OWNER TO coditect_system;
REVOKE CREATE ON SCHEMA pretenant FROM coditect_system;
