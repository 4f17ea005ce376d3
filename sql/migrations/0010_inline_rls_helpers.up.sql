-- The RLS helpers became inlinable here (their definitions, and why, are now in
-- sql/functions/app.current_org_id.sql and its neighbours), and the unused
-- pretenant.license_by_key was dropped. That function is no longer created by any
-- migration; a database made before function files existed may still have it.
DROP FUNCTION IF EXISTS pretenant.license_by_key(bytea);
