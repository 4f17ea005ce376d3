REVOKE EXECUTE ON FUNCTION
    pretenant.signup(varchar, varchar, varchar, varchar, varchar, bytea, varchar, bytea,
                     timestamptz, varchar, inet),
    pretenant.find_login(varchar),
    pretenant.open_session(uuid, bytea, timestamptz, varchar, inet),
    pretenant.set_password_hash(uuid, varchar, varchar),
    pretenant.rotate_refresh(bytea, bytea, interval),
    pretenant.license_by_key(bytea)
    FROM coditect_app;

REVOKE EXECUTE ON FUNCTION
    app.current_org_id(),
    app.current_user_id(),
    app.current_role(),
    app.role_at_least(public.user_role),
    app.set_tenant(uuid, uuid, public.user_role),
    app.begin_request(uuid, uuid, uuid),
    app.text_items_valid(text[], integer)
    FROM coditect_app, coditect_system;

REVOKE SELECT, INSERT, UPDATE, DELETE
    ON public.organizations, public.users, public.licenses, public.license_activations,
       public.projects, public.sessions, public.audit_log
    FROM coditect_system;

REVOKE SELECT, INSERT ON public.audit_log FROM coditect_app;
REVOKE SELECT, INSERT, UPDATE, DELETE
    ON public.organizations, public.users, public.licenses, public.license_activations,
       public.projects, public.sessions
    FROM coditect_app;

REVOKE USAGE ON SCHEMA app, pretenant FROM coditect_app, coditect_system;
