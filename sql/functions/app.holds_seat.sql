-- requires: 0015
--
-- Whether a machine (a license_activations row) holds a seat of its license now: not
-- deactivated and, when the license has a lease, seen within it. The one definition every
-- count of seats and every machine's holds_seat uses (validation, the license lists, the
-- machines, the operator's seat checks), called as
-- app.holds_seat(a.deactivated_at, a.last_seen_at, l.lease_seconds).
-- Inlined like app.current_org_id (see app.current_org_id.sql): LANGUAGE sql, STABLE, no SET
-- clause, SECURITY INVOKER, one SELECT without FROM, every name schema-qualified (OPERATOR() binds left to right, hence the
-- parentheses). now() is the
-- transaction's start, the instant validate_license decides with.

CREATE OR REPLACE FUNCTION app.holds_seat(
    p_deactivated_at pg_catalog.timestamptz,
    p_last_seen_at   pg_catalog.timestamptz,
    p_lease_seconds  pg_catalog.int4) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE SECURITY INVOKER
AS $$
    SELECT p_deactivated_at IS NULL
       AND (p_lease_seconds IS NULL
            OR p_last_seen_at OPERATOR(pg_catalog.>)
               (pg_catalog.now() OPERATOR(pg_catalog.-)
                pg_catalog.make_interval(secs => p_lease_seconds::pg_catalog.float8)))
$$;

REVOKE ALL ON FUNCTION app.holds_seat(timestamptz, timestamptz, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.holds_seat(timestamptz, timestamptz, integer)
    TO coditect_app, coditect_system;
