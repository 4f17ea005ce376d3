-- Privileges. coditect_app (the API server) gets exactly: USAGE on schemas app and
-- pretenant (USAGE on public comes from sql/roles.sql, as public belongs to the database
-- owner); DML on the tenant tables (audit_log: SELECT and INSERT only, it is append-only);
-- EXECUTE on the app.* helpers and the pretenant functions. It owns nothing and creates
-- nothing. coditect_system (jobs, CLI) gets all DML on all tables.
-- EXECUTE on each function is granted (and revoked from PUBLIC) by the function's own file
-- in sql/functions/, which applies whenever it creates or replaces the function; without
-- USAGE on the schema, which only this migration grants, nobody can call it.

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
