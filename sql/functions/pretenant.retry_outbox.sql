-- requires: 0013
--
-- A pre-tenant function (see pretenant.signup.sql for the rules they all follow): the mail
-- worker's.
--
-- Records a failed attempt under the claim that made it: the message is due again after
-- p_delay, or, once it has had p_max_attempts attempts, given up (status 'failed', body
-- erased). False when the claim is no longer the message's.

CREATE OR REPLACE FUNCTION pretenant.retry_outbox(
    p_id           uuid,
    p_lease_id     uuid,
    p_error        varchar,
    p_delay        interval,
    p_max_attempts integer)
    RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    UPDATE public.outbox
       SET available_at = now() + p_delay,
           lease_id = NULL,
           leased_until = NULL,
           last_error = left(p_error, 500),
           status = CASE WHEN attempts >= p_max_attempts THEN 'failed' ELSE 'pending' END,
           body = CASE WHEN attempts >= p_max_attempts THEN NULL ELSE body END
     WHERE id = p_id AND lease_id = p_lease_id AND status = 'pending';
    RETURN FOUND;
END
$$;

REVOKE ALL ON FUNCTION pretenant.retry_outbox(uuid, uuid, varchar, interval, integer) FROM PUBLIC;
-- Owned by coditect_system (its policies of 0019 and 0020), which needs CREATE on the schema for the
-- ownership change (a no-op when the function is already its own).
GRANT CREATE ON SCHEMA pretenant TO coditect_system;
ALTER FUNCTION pretenant.retry_outbox(uuid, uuid, varchar, interval, integer) OWNER TO coditect_system;
REVOKE CREATE ON SCHEMA pretenant FROM coditect_system;
GRANT EXECUTE ON FUNCTION pretenant.retry_outbox(uuid, uuid, varchar, interval, integer) TO coditect_app;
