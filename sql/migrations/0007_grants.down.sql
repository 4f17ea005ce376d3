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
