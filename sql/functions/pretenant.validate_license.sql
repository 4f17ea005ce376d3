-- requires: 0003
--
-- License validation in one round trip: pretenant.validate_license checks a key in the
-- documented order (openapi.yaml, validateLicense) and, for a machine-bound license,
-- activates the machine. Same rules as the other pre-tenant functions (pretenant.signup.sql):
-- SECURITY DEFINER owned by coditect_system, search_path pinned, every table
-- schema-qualified, every value a bound parameter.
--
-- Seats are exact under concurrency: a validation that would take a seat locks the license
-- row (FOR UPDATE) and only then counts the active seats and inserts, so concurrent
-- activations of one license serialize and never exceed `seats`. The lock is held until
-- the caller's transaction commits. A known machine re-validating takes no lock, so the
-- common case never queues; it writes last_seen_at only when the stored value is older
-- than p_seen_granularity (or the machine reports a new hostname), not on every validation.
--
-- Codes, first that applies: NOT_FOUND (unknown key, license or organization deleted),
-- REVOKED, SUSPENDED (license or organization), NOT_YET_VALID, EXPIRED,
-- FINGERPRINT_REQUIRED (machine-bound and no fingerprint), SEAT_LIMIT_EXCEEDED (machine
-- holds no seat and all seats are taken), VALID.
-- Always returns exactly one row; the license columns are null for NOT_FOUND, the
-- activation columns are set only for a VALID machine-bound validation.
--
-- Seats are counted once per call: under the lock nothing else can change the number, so
-- after taking a seat seats_used is the count taken before it plus one (a reactivated row
-- was not counted, being deactivated); only the paths that took no lock count at the end.
-- On a license with many machines the count is most of the call's cost.

CREATE OR REPLACE FUNCTION pretenant.validate_license(
    p_key_digest          bytea,
    p_fingerprint_digest  bytea,
    p_hostname            varchar,
    p_seen_granularity    interval)
    RETURNS TABLE (code text, checked_at timestamptz, license_id uuid, organization_id uuid,
                   tier public.license_tier, status public.license_status, seats integer,
                   seats_used integer, machine_bound boolean, features text[],
                   starts_at timestamptz, expires_at timestamptz,
                   organization_suspended boolean, activation_id uuid,
                   activated_at timestamptz, last_seen_at timestamptz, activation_new boolean)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_now    timestamptz := pg_catalog.now();
    v_lic    record;
    v_act    public.license_activations%ROWTYPE;
    v_code   text;
    v_used   integer;
    v_new    boolean := false;
    v_counted boolean := false;  -- v_used already holds the seats in use
    -- a blank hostname is no hostname (license_activations_hostname_check)
    v_host   varchar := nullif(pg_catalog.btrim(p_hostname), '');
BEGIN
    -- Pass 0 reads without a lock and settles every validation that takes no new seat.
    -- Pass 1 runs only when this machine would take a seat: it locks the license row,
    -- which waits for concurrent activations and, once granted, reads everything again
    -- (each statement of a VOLATILE function sees what committed before it started).
    FOR v_locked IN 0..1 LOOP
        IF v_locked = 0 THEN
            SELECT l.id, l.organization_id, l.tier, l.status, l.seats, l.machine_bound,
                   l.features, l.starts_at, l.expires_at,
                   (o.status = 'SUSPENDED') AS organization_suspended
              INTO v_lic
              FROM public.licenses AS l
              JOIN public.organizations AS o ON o.id = l.organization_id
             WHERE l.key_digest = p_key_digest
               AND l.deleted_at IS NULL
               AND o.deleted_at IS NULL;
        ELSE
            SELECT l.id, l.organization_id, l.tier, l.status, l.seats, l.machine_bound,
                   l.features, l.starts_at, l.expires_at,
                   (o.status = 'SUSPENDED') AS organization_suspended
              INTO v_lic
              FROM public.licenses AS l
              JOIN public.organizations AS o ON o.id = l.organization_id
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

        v_code := CASE
            WHEN v_lic.status = 'REVOKED' THEN 'REVOKED'
            WHEN v_lic.status = 'SUSPENDED' OR v_lic.organization_suspended THEN 'SUSPENDED'
            WHEN v_lic.starts_at > v_now THEN 'NOT_YET_VALID'
            WHEN v_lic.expires_at <= v_now THEN 'EXPIRED'
            WHEN v_lic.machine_bound AND p_fingerprint_digest IS NULL
                THEN 'FINGERPRINT_REQUIRED'
        END;
        EXIT WHEN v_code IS NOT NULL OR NOT v_lic.machine_bound;

        SELECT a.* INTO v_act
          FROM public.license_activations AS a
         WHERE a.organization_id = v_lic.organization_id
           AND a.license_id = v_lic.id
           AND a.fingerprint_digest = p_fingerprint_digest;
        EXIT WHEN v_act.id IS NOT NULL AND v_act.deactivated_at IS NULL;  -- holds a seat

        IF v_locked = 1 THEN
            SELECT pg_catalog.count(*) INTO v_used
              FROM public.license_activations AS a
             WHERE a.organization_id = v_lic.organization_id
               AND a.license_id = v_lic.id
               AND a.deactivated_at IS NULL;
            v_counted := true;
            IF v_used >= v_lic.seats THEN
                v_code := 'SEAT_LIMIT_EXCEEDED';
            ELSE
                -- A machine deactivated earlier gets its row back as a new activation.
                INSERT INTO public.license_activations AS a
                       (organization_id, license_id, fingerprint_digest, hostname,
                        activated_at, last_seen_at)
                VALUES (v_lic.organization_id, v_lic.id, p_fingerprint_digest, v_host,
                        v_now, v_now)
                ON CONFLICT (organization_id, license_id, fingerprint_digest) DO UPDATE
                   SET deactivated_at = NULL,
                       activated_at = EXCLUDED.activated_at,
                       last_seen_at = EXCLUDED.last_seen_at,
                       hostname = coalesce(EXCLUDED.hostname, a.hostname)
                RETURNING a.* INTO v_act;
                v_new := true;
                v_used := v_used + 1;  -- this machine's seat, under the same lock
            END IF;
        END IF;
    END LOOP;

    IF v_code IS NULL AND v_lic.machine_bound AND NOT v_new
       AND (v_act.last_seen_at <= v_now - p_seen_granularity
            OR v_host <> coalesce(v_act.hostname, '')) THEN
        UPDATE public.license_activations AS a
           SET last_seen_at = v_now,
               hostname = coalesce(v_host, a.hostname)
         WHERE a.organization_id = v_act.organization_id
           AND a.id = v_act.id;
    END IF;

    IF NOT v_counted THEN
        SELECT pg_catalog.count(*) INTO v_used
          FROM public.license_activations AS a
         WHERE a.organization_id = v_lic.organization_id
           AND a.license_id = v_lic.id
           AND a.deactivated_at IS NULL;
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
    IF v_code IS NULL AND v_lic.machine_bound THEN
        activation_id := v_act.id;
        activated_at := v_act.activated_at;
        last_seen_at := v_now;  -- this validation, whether or not it was written
        activation_new := v_new;
    END IF;
    RETURN NEXT;
END
$$;

REVOKE ALL ON FUNCTION pretenant.validate_license(bytea, bytea, varchar, interval) FROM PUBLIC;
-- Owned by coditect_system (BYPASSRLS), which needs CREATE on the schema just for the
-- ownership change (a no-op when the function is already its own).
GRANT CREATE ON SCHEMA pretenant TO coditect_system;
ALTER FUNCTION pretenant.validate_license(bytea, bytea, varchar, interval) OWNER TO coditect_system;
REVOKE CREATE ON SCHEMA pretenant FROM coditect_system;
GRANT EXECUTE ON FUNCTION pretenant.validate_license(bytea, bytea, varchar, interval)
    TO coditect_app;
