-- requires: 0013
--
-- A pre-tenant function (see pretenant.signup.sql for the rules they all follow).
--
-- A password reset request for an email: when it belongs to a live ACTIVE user of a live,
-- ACTIVE organization, and fewer than p_max_recent reset tokens were issued to that user in
-- the last p_window, stores the token's digest (expiring at p_expires_at) and queues the
-- message (the caller wrote it, link included) to the user's stored address, in this
-- transaction. Otherwise it does nothing. The caller answers the same either way; the
-- result (true when a message was queued) is for tests and logs only.

CREATE OR REPLACE FUNCTION pretenant.request_password_reset(
    p_email        varchar,
    p_token_digest bytea,
    p_expires_at   timestamptz,
    p_subject      varchar,
    p_body         text,
    p_max_recent   integer,
    p_window       interval)
    RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    v_user  public.users%ROWTYPE;
    v_count integer;
BEGIN
    SELECT u.* INTO v_user
      FROM public.users AS u
      JOIN public.organizations AS o ON o.id = u.organization_id
     WHERE lower(u.email) = lower(p_email)
       AND u.deleted_at IS NULL
       AND u.status = 'ACTIVE'
       AND o.status = 'ACTIVE'
       AND o.deleted_at IS NULL
       FOR UPDATE OF u;
    IF NOT FOUND THEN
        RETURN false;
    END IF;

    -- The per-email limit, counted under the user's row lock so concurrent requests agree.
    SELECT count(*) INTO v_count
      FROM public.account_tokens AS t
     WHERE t.organization_id = v_user.organization_id
       AND t.user_id = v_user.id
       AND t.purpose = 'password_reset'
       AND t.created_at > now() - p_window;
    IF v_count >= p_max_recent THEN
        RETURN false;
    END IF;

    INSERT INTO public.account_tokens (organization_id, user_id, purpose, token_digest,
                                       expires_at)
    VALUES (v_user.organization_id, v_user.id, 'password_reset', p_token_digest, p_expires_at);
    INSERT INTO public.outbox (organization_id, kind, recipient, subject, body)
    VALUES (v_user.organization_id, 'password_reset', v_user.email, p_subject, p_body);
    RETURN true;
END
$$;

REVOKE ALL ON FUNCTION pretenant.request_password_reset(varchar, bytea, timestamptz, varchar, text, integer, interval) FROM PUBLIC;
-- Owned by coditect_system (its policies of 0019 and 0020), which needs CREATE on the schema for the
-- ownership change (a no-op when the function is already its own).
GRANT CREATE ON SCHEMA pretenant TO coditect_system;
ALTER FUNCTION pretenant.request_password_reset(varchar, bytea, timestamptz, varchar, text, integer, interval) OWNER TO coditect_system;
REVOKE CREATE ON SCHEMA pretenant FROM coditect_system;
GRANT EXECUTE ON FUNCTION pretenant.request_password_reset(varchar, bytea, timestamptz, varchar, text, integer, interval) TO coditect_app;
