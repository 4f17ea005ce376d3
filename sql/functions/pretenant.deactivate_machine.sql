-- requires: 0015
--
-- A client frees its own seat (POST /licenses/deactivate): the key is the credential and
-- the fingerprint names the machine. Same rules as pretenant.validate_license: SECURITY
-- DEFINER owned by coditect_system, search_path pinned, tables schema-qualified.
--
-- Takes the license row lock, like every change to a license's seats, so the deactivation
-- limit and the seat count stay exact under concurrent activations and deactivations. The
-- activation row stays, as history; the same machine validating later gets it back.
--
-- Codes, first that applies: NOT_FOUND (unknown key, license or organization deleted),
-- NOT_ACTIVATED (this fingerprint holds no seat: never activated, deactivated, or its lease
-- expired), DEACTIVATION_LIMIT_EXCEEDED (the license's deactivations in the churn window
-- reached the limit), DEACTIVATED. A revoked, suspended or expired license may still free
-- its seats. Always returns exactly one row.

CREATE OR REPLACE FUNCTION pretenant.deactivate_machine(
    p_key_digest          bytea,
    p_fingerprint_digest  bytea,
    p_client_ip           inet,
    p_request_id          varchar)
    RETURNS TABLE (code text, checked_at timestamptz, license_id uuid, organization_id uuid,
                   tier public.license_tier, status public.license_status, seats integer,
                   seats_used integer, machine_bound boolean, features text[],
                   expires_at timestamptz, lease_seconds integer, deactivation_limit integer,
                   churn_window_seconds integer, machine_id uuid, activated_at timestamptz,
                   deactivated_at timestamptz)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_now    timestamptz := pg_catalog.now();
    v_lic    record;
    v_act    public.license_activations%ROWTYPE;
    v_recent integer;
    v_code   text;
BEGIN
    SELECT l.id, l.organization_id, l.tier, l.status, l.seats, l.machine_bound, l.features,
           l.expires_at, l.lease_seconds,
           coalesce(l.deactivation_limit, t.deactivation_limit) AS deactivation_limit,
           coalesce(l.churn_window_seconds, t.churn_window_seconds) AS churn_window_seconds
      INTO v_lic
      FROM public.licenses AS l
      JOIN public.organizations AS o ON o.id = l.organization_id
      JOIN public.license_tiers AS t ON t.tier = l.tier
     WHERE l.key_digest = p_key_digest
       AND l.deleted_at IS NULL
       AND o.deleted_at IS NULL
       FOR UPDATE OF l;
    IF NOT FOUND THEN
        code := 'NOT_FOUND';
        checked_at := v_now;
        RETURN NEXT;
        RETURN;
    END IF;

    SELECT a.* INTO v_act
      FROM public.license_activations AS a
     WHERE a.organization_id = v_lic.organization_id
       AND a.license_id = v_lic.id
       AND a.fingerprint_digest = p_fingerprint_digest
       AND app.holds_seat(a.deactivated_at, a.last_seen_at, v_lic.lease_seconds);
    IF v_act.id IS NULL THEN
        v_code := 'NOT_ACTIVATED';
    ELSE
        SELECT pg_catalog.count(*) INTO v_recent
          FROM public.audit_log AS g
         WHERE g.organization_id = v_lic.organization_id
           AND g.target_type = 'license'
           AND g.target_id = v_lic.id
           AND g.action = 'license.machine_deactivated'
           AND g.created_at > v_now - pg_catalog.make_interval(
                                          secs => v_lic.churn_window_seconds)
           -- the vendor's deactivations (operator API) are not the customer's churn
           AND g.detail ->> 'by' IS DISTINCT FROM 'operator';
        IF v_recent >= v_lic.deactivation_limit THEN
            v_code := 'DEACTIVATION_LIMIT_EXCEEDED';
        ELSE
            UPDATE public.license_activations AS a
               SET deactivated_at = v_now,
                   deactivation_reason = 'deactivated'
             WHERE a.organization_id = v_act.organization_id
               AND a.id = v_act.id
            RETURNING a.* INTO v_act;
            INSERT INTO public.audit_log
                   (organization_id, actor_id, action, target_type, target_id, detail,
                    request_id, client_ip)
            VALUES (v_lic.organization_id, NULL, 'license.machine_deactivated', 'license',
                    v_lic.id,
                    pg_catalog.jsonb_build_object(
                        'machine_id', v_act.id, 'hostname', v_act.hostname,
                        'fingerprint',
                        pg_catalog.left(pg_catalog.encode(p_fingerprint_digest, 'hex'), 8),
                        'by', 'client'),
                    p_request_id, p_client_ip);
        END IF;
    END IF;

    code := coalesce(v_code, 'DEACTIVATED');
    checked_at := v_now;
    license_id := v_lic.id;
    organization_id := v_lic.organization_id;
    tier := v_lic.tier;
    status := v_lic.status;
    seats := v_lic.seats;
    SELECT pg_catalog.count(*)::integer INTO seats_used
      FROM public.license_activations AS a
     WHERE a.organization_id = v_lic.organization_id
       AND a.license_id = v_lic.id
       AND app.holds_seat(a.deactivated_at, a.last_seen_at, v_lic.lease_seconds);
    machine_bound := v_lic.machine_bound;
    features := v_lic.features;
    expires_at := v_lic.expires_at;
    lease_seconds := v_lic.lease_seconds;
    deactivation_limit := v_lic.deactivation_limit;
    churn_window_seconds := v_lic.churn_window_seconds;
    IF v_code IS NULL THEN
        machine_id := v_act.id;
        activated_at := v_act.activated_at;
        deactivated_at := v_act.deactivated_at;
    END IF;
    RETURN NEXT;
END
$$;

REVOKE ALL ON FUNCTION pretenant.deactivate_machine(bytea, bytea, inet, varchar) FROM PUBLIC;
-- Owned by coditect_system (its policies of 0019 and 0020), which needs CREATE on the schema for the
-- ownership change (a no-op when the function is already its own).
GRANT CREATE ON SCHEMA pretenant TO coditect_system;
ALTER FUNCTION pretenant.deactivate_machine(bytea, bytea, inet, varchar) OWNER TO coditect_system;
REVOKE CREATE ON SCHEMA pretenant FROM coditect_system;
GRANT EXECUTE ON FUNCTION pretenant.deactivate_machine(bytea, bytea, inet, varchar)
    TO coditect_app;
