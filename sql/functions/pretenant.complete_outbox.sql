-- requires: 0013
--
-- A pre-tenant function (see pretenant.signup.sql for the rules they all follow): the mail
-- worker's.
--
-- Records a message as delivered, under the claim that sent it: status 'sent', body erased
-- (it holds a token link), lease cleared. False when the claim is no longer the message's
-- (it expired and another worker claimed it).

CREATE OR REPLACE FUNCTION pretenant.complete_outbox(p_id uuid, p_lease_id uuid)
    RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    UPDATE public.outbox
       SET status = 'sent', body = NULL, sent_at = now(), lease_id = NULL,
           leased_until = NULL, last_error = NULL
     WHERE id = p_id AND lease_id = p_lease_id AND status = 'pending';
    RETURN FOUND;
END
$$;

REVOKE ALL ON FUNCTION pretenant.complete_outbox(uuid, uuid) FROM PUBLIC;
-- Owned by coditect_system (its policies of 0019 and 0020), which needs CREATE on the schema for the
-- ownership change (a no-op when the function is already its own).
GRANT CREATE ON SCHEMA pretenant TO coditect_system;
ALTER FUNCTION pretenant.complete_outbox(uuid, uuid) OWNER TO coditect_system;
REVOKE CREATE ON SCHEMA pretenant FROM coditect_system;
GRANT EXECUTE ON FUNCTION pretenant.complete_outbox(uuid, uuid) TO coditect_app;
