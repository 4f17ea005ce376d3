-- requires: 0001
--
-- CHECK helper: every item of a text array is non-null and 1..p_max characters long.
-- Called by the CHECK constraint on licenses.features (0002); PostgreSQL checks EXECUTE on
-- functions in CHECK expressions for whoever writes the row, hence the grant.

CREATE OR REPLACE FUNCTION app.text_items_valid(p_items text[], p_max integer) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(pg_catalog.bool_and(item IS NOT NULL
                                        AND pg_catalog.char_length(item) BETWEEN 1 AND p_max),
                    true)
      FROM pg_catalog.unnest(p_items) AS item
$$;

REVOKE ALL ON FUNCTION app.text_items_valid(text[], integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.text_items_valid(text[], integer) TO coditect_app, coditect_system;
