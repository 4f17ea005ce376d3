-- requires: 0001
--
-- updated_at is maintained by the database, whoever writes the row: the BEFORE UPDATE
-- triggers of 0002 and 0003 call this. No EXECUTE grant: triggers do not check EXECUTE
-- when they fire.

CREATE OR REPLACE FUNCTION app.touch_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.updated_at := pg_catalog.now();
    RETURN NEW;
END
$$;

REVOKE ALL ON FUNCTION app.touch_updated_at() FROM PUBLIC;
