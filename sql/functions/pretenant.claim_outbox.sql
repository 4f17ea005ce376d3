-- requires: 0013
--
-- A pre-tenant function (see pretenant.signup.sql for the rules they all follow): the mail
-- worker's, which serves every tenant.
--
-- Claims up to p_limit pending messages that are due and not leased by a live claim
-- (FOR UPDATE SKIP LOCKED: concurrent workers never claim the same message), leasing each
-- for p_lease under a new lease id and counting the attempt. Returns what is needed to send
-- them; complete_outbox or retry_outbox ends the claim.

CREATE OR REPLACE FUNCTION pretenant.claim_outbox(p_limit integer, p_lease interval)
    RETURNS TABLE (id uuid, lease_id uuid, kind varchar, recipient varchar, subject varchar,
                   body text, attempts integer)
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
AS $$
    UPDATE public.outbox AS m
       SET lease_id = gen_random_uuid(),
           leased_until = now() + p_lease,
           attempts = m.attempts + 1
      FROM (SELECT d.id
              FROM public.outbox AS d
             WHERE d.status = 'pending'
               AND d.available_at <= now()
               AND (d.leased_until IS NULL OR d.leased_until < now())
             ORDER BY d.available_at
             LIMIT p_limit
               FOR UPDATE SKIP LOCKED) AS due
     WHERE m.id = due.id
    RETURNING m.id, m.lease_id, m.kind, m.recipient, m.subject, m.body, m.attempts
$$;

REVOKE ALL ON FUNCTION pretenant.claim_outbox(integer, interval) FROM PUBLIC;
-- Owned by coditect_system (its policies of 0019 and 0020), which needs CREATE on the schema for the
-- ownership change (a no-op when the function is already its own).
GRANT CREATE ON SCHEMA pretenant TO coditect_system;
ALTER FUNCTION pretenant.claim_outbox(integer, interval) OWNER TO coditect_system;
REVOKE CREATE ON SCHEMA pretenant FROM coditect_system;
GRANT EXECUTE ON FUNCTION pretenant.claim_outbox(integer, interval) TO coditect_app;
