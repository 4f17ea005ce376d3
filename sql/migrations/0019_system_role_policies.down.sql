-- Back to 0018: coditect_system loses its policies. Code of 0018 and before expects it to
-- have BYPASSRLS, which that code's sql/roles.sql gives back at its next migrate (as a
-- superuser; managed PostgreSQL never could).

DROP INDEX public.users_email_key_live_idx;
ALTER TABLE public.users DROP COLUMN email_key;

DROP POLICY audit_log_system_insert ON public.audit_log;
DROP POLICY projects_system_insert ON public.projects;

DROP POLICY sessions_system_update ON public.sessions;
DROP POLICY sessions_system_insert ON public.sessions;
DROP POLICY sessions_system_select ON public.sessions;

DROP POLICY license_activations_system_update ON public.license_activations;
DROP POLICY license_activations_system_insert ON public.license_activations;
DROP POLICY license_activations_system_select ON public.license_activations;

DROP POLICY licenses_system_update ON public.licenses;
DROP POLICY licenses_system_insert ON public.licenses;
DROP POLICY licenses_system_select ON public.licenses;

DROP POLICY users_system_update ON public.users;
DROP POLICY users_system_insert ON public.users;
DROP POLICY users_system_select ON public.users;

DROP POLICY organizations_system_update ON public.organizations;
DROP POLICY organizations_system_insert ON public.organizations;
DROP POLICY organizations_system_select ON public.organizations;
