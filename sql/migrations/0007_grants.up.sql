-- Privileges. coditect_app (the API server) gets exactly: USAGE on schemas app and
-- pretenant (USAGE on public comes from sql/roles.sql, as public belongs to the database
-- owner); DML on the tenant tables (audit_log: SELECT and INSERT only, it is append-only);
-- EXECUTE on the app.* helpers and the pretenant functions. It owns nothing and creates
-- nothing. coditect_system (jobs, CLI) gets all DML on all tables.
-- EXECUTE on functions was revoked from PUBLIC where each function was created.

GRANT USAGE ON SCHEMA app, pretenant TO coditect_app, coditect_system;

GRANT SELECT, INSERT, UPDATE, DELETE
    ON public.organizations, public.users, public.licenses, public.license_activations,
       public.projects, public.sessions
    TO coditect_app;
GRANT SELECT, INSERT ON public.audit_log TO coditect_app;

GRANT SELECT, INSERT, UPDATE, DELETE
    ON public.organizations, public.users, public.licenses, public.license_activations,
       public.projects, public.sessions, public.audit_log
    TO coditect_system;

-- (text_items_valid is called by a CHECK constraint on licenses; PostgreSQL checks EXECUTE
-- on functions in CHECK expressions for whoever writes the row. The trigger function
-- app.touch_updated_at needs no grant: triggers do not check EXECUTE when they fire.)
GRANT EXECUTE ON FUNCTION
    app.current_org_id(),
    app.current_user_id(),
    app.current_role(),
    app.role_at_least(public.user_role),
    app.set_tenant(uuid, uuid, public.user_role),
    app.begin_request(uuid, uuid, uuid),
    app.text_items_valid(text[], integer)
    TO coditect_app, coditect_system;

GRANT EXECUTE ON FUNCTION
    pretenant.signup(varchar, varchar, varchar, varchar, varchar, bytea, varchar, bytea,
                     timestamptz, varchar, inet),
    pretenant.find_login(varchar),
    pretenant.open_session(uuid, bytea, timestamptz, varchar, inet),
    pretenant.set_password_hash(uuid, varchar, varchar),
    pretenant.rotate_refresh(bytea, bytea, interval),
    pretenant.license_by_key(bytea)
    TO coditect_app;
