-- requires: 0015
--
-- License validation in one round trip: pretenant.validate_license checks a key in the
-- documented order (openapi.yaml, validateLicense) and activates the machine. Same rules as
-- the other pre-tenant functions (pretenant.signup.sql): SECURITY DEFINER owned by
-- coditect_system, search_path pinned, every table schema-qualified, every value a bound
-- parameter.
--
-- A seat is a machine (a fingerprint) on every license. A machine holds its seat while its
-- activation is not deactivated and, when the license has a lease, while it validated within
-- the lease (app.holds_seat, the one definition); validating renews the lease (last_seen_at, written at most every
-- p_seen_granularity, so a lease is renewed to within that much).
--
-- Seats are exact under concurrency: a validation that would take a seat locks the license
-- row (FOR UPDATE) and only then, under that lock, releases the seats whose lease expired
-- (each one an audit entry), checks the activation limit, counts the seats held and
-- inserts. Deactivations (pretenant.deactivate_machine, deactivateLicenseMachine) take the
-- same lock. A known machine re-validating takes no lock, so the common case never queues;
-- its renewal only applies while its row still holds a seat (deactivated_at IS NULL
-- re-checked by the UPDATE after any concurrent release), otherwise it needs a seat again.
--
-- Codes, first that applies: NOT_FOUND (unknown key, license or organization deleted),
-- REVOKED, SUSPENDED (license or organization), NOT_YET_VALID, EXPIRED,
-- FINGERPRINT_REQUIRED (no fingerprint), ACTIVATION_LIMIT_EXCEEDED (the machine holds no
-- seat and the license's activations in the churn window reached the limit),
-- SEAT_LIMIT_EXCEEDED (the machine holds no seat and all seats are taken), VALID.
-- A machine whose lease merely lapsed is not churn: taking its seat back does not count
-- against the activation limit (audit detail "previous": "lease_expired").
-- Always returns exactly one row; the license columns are null for NOT_FOUND, the
-- activation columns are set only for VALID.

CREATE OR REPLACE FUNCTION pretenant.validate_license(
    p_key_digest          bytea,
    p_fingerprint_digest  bytea,
    p_hostname            varchar,
    p_seen_granularity    interval,
    p_client_ip           inet,
    p_request_id          varchar)
    RETURNS TABLE (code text, checked_at timestamptz, license_id uuid, organization_id uuid,
                   tier public.license_tier, status public.license_status, seats integer,
                   seats_used integer, machine_bound boolean, features text[],
                   starts_at timestamptz, expires_at timestamptz,
                   organization_suspended boolean, lease_seconds integer,
                   activation_limit integer, churn_window_seconds integer,
                   activation_id uuid, activated_at timestamptz, last_seen_at timestamptz,
                   activation_new boolean)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_now      timestamptz := pg_catalog.now();
    v_lic      record;
    v_act      public.license_activations%ROWTYPE;
    v_code     text;
    v_used     integer;
    v_recent   integer;
    v_lease    interval;
    v_holds    boolean;
    v_previous text;
    v_new      boolean := false;
    v_counted  boolean := false;  -- v_used already holds the seats in use
    -- a blank hostname is no hostname (license_activations_hostname_check)
    v_host     varchar := nullif(pg_catalog.btrim(p_hostname), '');
BEGIN
    -- Pass 0 reads without a lock and settles every validation that takes no new seat.
    -- Pass 1 runs only when this machine would take a seat: it locks the license row,
    -- which waits for concurrent activations and deactivations and, once granted, reads
    -- everything again (each statement of a VOLATILE function sees what committed before
    -- it started).
    FOR v_locked IN 0..1 LOOP
        IF v_locked = 0 THEN
            SELECT l.id, l.organization_id, l.tier, l.status, l.seats, l.machine_bound,
                   l.features, l.starts_at, l.expires_at, l.lease_seconds,
                   coalesce(l.activation_limit, t.activation_limit) AS activation_limit,
                   coalesce(l.churn_window_seconds, t.churn_window_seconds)
                       AS churn_window_seconds,
                   (o.status = 'SUSPENDED') AS organization_suspended
              INTO v_lic
              FROM public.licenses AS l
              JOIN public.organizations AS o ON o.id = l.organization_id
              JOIN public.license_tiers AS t ON t.tier = l.tier
             WHERE l.key_digest = p_key_digest
               AND l.deleted_at IS NULL
               AND o.deleted_at IS NULL;
        ELSE
            SELECT l.id, l.organization_id, l.tier, l.status, l.seats, l.machine_bound,
                   l.features, l.starts_at, l.expires_at, l.lease_seconds,
                   coalesce(l.activation_limit, t.activation_limit) AS activation_limit,
                   coalesce(l.churn_window_seconds, t.churn_window_seconds)
                       AS churn_window_seconds,
                   (o.status = 'SUSPENDED') AS organization_suspended
              INTO v_lic
              FROM public.licenses AS l
              JOIN public.organizations AS o ON o.id = l.organization_id
              JOIN public.license_tiers AS t ON t.tier = l.tier
             WHERE l.key_digest = p_key_digest
               AND l.deleted_at IS NULL
               AND o.deleted_at IS NULL
               FOR UPDATE OF l;
        END IF;

        IF NOT FOUND THEN
            code := 'NOT_FOUND';
            checked_at := v_now;
            RETURN NEXT;
            RETURN;
        END IF;

        v_lease := pg_catalog.make_interval(secs => v_lic.lease_seconds);  -- null: no lease
        v_code := CASE
            WHEN v_lic.status = 'REVOKED' THEN 'REVOKED'
            WHEN v_lic.status = 'SUSPENDED' OR v_lic.organization_suspended THEN 'SUSPENDED'
            WHEN v_lic.starts_at > v_now THEN 'NOT_YET_VALID'
            WHEN v_lic.expires_at <= v_now THEN 'EXPIRED'
            WHEN p_fingerprint_digest IS NULL THEN 'FINGERPRINT_REQUIRED'
        END;
        EXIT WHEN v_code IS NOT NULL;

        SELECT a.* INTO v_act
          FROM public.license_activations AS a
         WHERE a.organization_id = v_lic.organization_id
           AND a.license_id = v_lic.id
           AND a.fingerprint_digest = p_fingerprint_digest;
        v_holds := v_act.id IS NOT NULL
                   AND app.holds_seat(v_act.deactivated_at, v_act.last_seen_at,
                                      v_lic.lease_seconds);
        IF v_holds THEN
            IF v_act.last_seen_at > v_now - p_seen_granularity
               AND coalesce(v_host = v_act.hostname, v_host IS NULL) THEN
                EXIT;  -- seen recently, nothing to write
            END IF;
            -- Renews the lease only if the seat was not released meanwhile (the UPDATE
            -- re-checks deactivated_at on the row's latest version).
            UPDATE public.license_activations AS a
               SET last_seen_at = v_now,
                   hostname = coalesce(v_host, a.hostname)
             WHERE a.organization_id = v_act.organization_id
               AND a.id = v_act.id
               AND a.deactivated_at IS NULL
            RETURNING a.* INTO v_act;
            EXIT WHEN FOUND;
        END IF;

        IF v_locked = 1 THEN
            -- Leases that expired free their seats now, each recorded.
            IF v_lease IS NOT NULL THEN
                WITH lapsed AS (
                    UPDATE public.license_activations AS a
                       SET deactivated_at = a.last_seen_at + v_lease,
                           deactivation_reason = 'lease_expired'
                     WHERE a.organization_id = v_lic.organization_id
                       AND a.license_id = v_lic.id
                       AND a.deactivated_at IS NULL
                       AND NOT app.holds_seat(a.deactivated_at, a.last_seen_at,
                                              v_lic.lease_seconds)
                    RETURNING a.id, a.hostname, a.fingerprint_digest, a.last_seen_at)
                INSERT INTO public.audit_log
                       (organization_id, actor_id, action, target_type, target_id, detail,
                        request_id)
                SELECT v_lic.organization_id, NULL, 'license.machine_lease_expired',
                       'license', v_lic.id,
                       pg_catalog.jsonb_build_object(
                           'machine_id', x.id, 'hostname', x.hostname,
                           'fingerprint',
                           pg_catalog.left(pg_catalog.encode(x.fingerprint_digest, 'hex'), 8),
                           'last_seen_at', x.last_seen_at,
                           'lease_seconds', v_lic.lease_seconds),
                       p_request_id
                  FROM lapsed AS x;
                SELECT a.* INTO v_act
                  FROM public.license_activations AS a
                 WHERE a.organization_id = v_lic.organization_id
                   AND a.license_id = v_lic.id
                   AND a.fingerprint_digest = p_fingerprint_digest;
            END IF;
            v_previous := CASE WHEN v_act.id IS NULL THEN 'none'
                               ELSE v_act.deactivation_reason END;

            IF v_previous IS DISTINCT FROM 'lease_expired' THEN
                SELECT pg_catalog.count(*) INTO v_recent
                  FROM public.audit_log AS g
                 WHERE g.organization_id = v_lic.organization_id
                   AND g.target_type = 'license'
                   AND g.target_id = v_lic.id
                   AND g.action = 'license.machine_activated'
                   AND g.created_at > v_now - pg_catalog.make_interval(
                                                  secs => v_lic.churn_window_seconds)
                   AND g.detail ->> 'previous' IS DISTINCT FROM 'lease_expired';
                IF v_recent >= v_lic.activation_limit THEN
                    v_code := 'ACTIVATION_LIMIT_EXCEEDED';
                END IF;
            END IF;

            -- After the release above every active row holds a seat.
            SELECT pg_catalog.count(*) INTO v_used
              FROM public.license_activations AS a
             WHERE a.organization_id = v_lic.organization_id
               AND a.license_id = v_lic.id
               AND a.deactivated_at IS NULL;
            v_counted := true;
            IF v_code IS NULL AND v_used >= v_lic.seats THEN
                v_code := 'SEAT_LIMIT_EXCEEDED';
            ELSIF v_code IS NULL THEN
                -- A machine seen before gets its row back: one row per machine, as history.
                INSERT INTO public.license_activations AS a
                       (organization_id, license_id, fingerprint_digest, hostname,
                        activated_at, last_seen_at)
                VALUES (v_lic.organization_id, v_lic.id, p_fingerprint_digest, v_host,
                        v_now, v_now)
                ON CONFLICT (organization_id, license_id, fingerprint_digest) DO UPDATE
                   SET deactivated_at = NULL,
                       deactivation_reason = NULL,
                       activated_at = EXCLUDED.activated_at,
                       last_seen_at = EXCLUDED.last_seen_at,
                       hostname = coalesce(EXCLUDED.hostname, a.hostname)
                RETURNING a.* INTO v_act;
                v_new := true;
                v_used := v_used + 1;  -- this machine's seat, under the same lock
                INSERT INTO public.audit_log
                       (organization_id, actor_id, action, target_type, target_id, detail,
                        request_id, client_ip)
                VALUES (v_lic.organization_id, NULL, 'license.machine_activated', 'license',
                        v_lic.id,
                        pg_catalog.jsonb_build_object(
                            'machine_id', v_act.id, 'hostname', v_act.hostname,
                            'fingerprint',
                            pg_catalog.left(pg_catalog.encode(p_fingerprint_digest, 'hex'), 8),
                            'previous', v_previous),
                        p_request_id, p_client_ip);
            END IF;
        END IF;
    END LOOP;

    IF NOT v_counted THEN
        SELECT pg_catalog.count(*) INTO v_used
          FROM public.license_activations AS a
         WHERE a.organization_id = v_lic.organization_id
           AND a.license_id = v_lic.id
           AND app.holds_seat(a.deactivated_at, a.last_seen_at, v_lic.lease_seconds);
    END IF;

    code := coalesce(v_code, 'VALID');
    checked_at := v_now;
    license_id := v_lic.id;
    organization_id := v_lic.organization_id;
    tier := v_lic.tier;
    status := v_lic.status;
    seats := v_lic.seats;
    seats_used := v_used;
    machine_bound := v_lic.machine_bound;
    features := v_lic.features;
    starts_at := v_lic.starts_at;
    expires_at := v_lic.expires_at;
    organization_suspended := v_lic.organization_suspended;
    lease_seconds := v_lic.lease_seconds;
    activation_limit := v_lic.activation_limit;
    churn_window_seconds := v_lic.churn_window_seconds;
    IF v_code IS NULL THEN
        activation_id := v_act.id;
        activated_at := v_act.activated_at;
        last_seen_at := v_now;  -- this validation, whether or not it was written
        activation_new := v_new;
    END IF;
    RETURN NEXT;
END
$$;

REVOKE ALL ON FUNCTION pretenant.validate_license(bytea, bytea, varchar, interval, inet, varchar)
    FROM PUBLIC;
-- Owned by coditect_system (its policies of 0019 and 0020), which needs CREATE on the schema for the
-- ownership change (a no-op when the function is already its own).
GRANT CREATE ON SCHEMA pretenant TO coditect_system;
ALTER FUNCTION pretenant.validate_license(bytea, bytea, varchar, interval, inet, varchar)
    OWNER TO coditect_system;
REVOKE CREATE ON SCHEMA pretenant FROM coditect_system;
GRANT EXECUTE ON FUNCTION pretenant.validate_license(bytea, bytea, varchar, interval, inet, varchar)
    TO coditect_app;
