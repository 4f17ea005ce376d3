-- requires: 0002
--
-- A pre-tenant function (see pretenant.signup.sql for the rules they all follow).
--
-- Re-hash on login (new parameters): compare-and-set on the old hash, so a concurrent
-- password change is never overwritten. True when the hash was replaced.

CREATE OR REPLACE FUNCTION pretenant.set_password_hash(
    p_user_id  uuid,
    p_old_hash varchar,
    p_new_hash varchar)
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

REVOKE ALL ON FUNCTION pretenant.set_password_hash(uuid, varchar, varchar) FROM PUBLIC;
-- Owned by coditect_system (its policies of 0019), which needs CREATE on the schema for the
-- ownership change (a no-op when the function is already its own).
GRANT CREATE ON SCHEMA pretenant TO coditect_system;
ALTER FUNCTION pretenant.set_password_hash(uuid, varchar, varchar) OWNER TO coditect_system;
REVOKE CREATE ON SCHEMA pretenant FROM coditect_system;
GRANT EXECUTE ON FUNCTION pretenant.set_password_hash(uuid, varchar, varchar) TO coditect_app;
