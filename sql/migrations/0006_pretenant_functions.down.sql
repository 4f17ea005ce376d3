DROP FUNCTION pretenant.license_by_key(bytea);
DROP FUNCTION pretenant.rotate_refresh(bytea, bytea, interval);
DROP FUNCTION pretenant.set_password_hash(uuid, varchar, varchar);
DROP FUNCTION pretenant.open_session(uuid, bytea, timestamptz, varchar, inet);
DROP FUNCTION pretenant.find_login(varchar);
DROP FUNCTION pretenant.signup(varchar, varchar, varchar, varchar, varchar, bytea, varchar,
    bytea, timestamptz, varchar, inet);
