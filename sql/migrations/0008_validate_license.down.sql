REVOKE EXECUTE ON FUNCTION pretenant.validate_license(bytea, bytea, varchar, interval)
    FROM coditect_app;
DROP FUNCTION pretenant.validate_license(bytea, bytea, varchar, interval);
