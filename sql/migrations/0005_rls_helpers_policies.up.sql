-- Row-Level Security: the policies, and the tenant context their helpers read.
--
-- The context lives in three custom settings, always set transaction-locally
-- (set_config(..., true)), so it can never leak to the next user of a pooled connection:
--   app.org_id   the caller's organization (uuid)
--   app.user_id  the caller (uuid)
--   app.role     the caller's current role (user_role), loaded from the database by
--                app.begin_request, never taken from a token
-- Missing context fails closed: the helpers return NULL, every policy comparison is then
-- NULL (not true), so nothing is visible and every write is refused.
--
-- Policies are tenant + role only. They do not filter deleted_at (an UPDATE that soft
-- deletes must still see its row; queries filter deleted rows), and they never say
-- "OR is_system()": coditect_system bypasses RLS by its BYPASSRLS attribute. Helpers are
-- called as (SELECT app.f()) so PostgreSQL evaluates them once per statement (InitPlan).
--
-- The helpers are in sql/functions/: app.current_org_id, app.current_user_id,
-- app.current_role, app.role_at_least (the ones the policies call; they require 0001, so
-- they exist before this migration runs), app.set_tenant and app.begin_request.

ALTER TABLE public.organizations ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.organizations FORCE ROW LEVEL SECURITY;
ALTER TABLE public.users ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.users FORCE ROW LEVEL SECURITY;
ALTER TABLE public.licenses ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.licenses FORCE ROW LEVEL SECURITY;
ALTER TABLE public.license_activations ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.license_activations FORCE ROW LEVEL SECURITY;
ALTER TABLE public.projects ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.projects FORCE ROW LEVEL SECURITY;
ALTER TABLE public.sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.sessions FORCE ROW LEVEL SECURITY;
ALTER TABLE public.audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.audit_log FORCE ROW LEVEL SECURITY;

-- organizations: members see their own organization; ADMIN+ update it (the API soft
-- deletes with an UPDATE, OWNER only, checked by the handler); OWNER may hard delete.
-- No tenant creates an organization: signup goes through pretenant.signup.
CREATE POLICY organizations_select ON public.organizations FOR SELECT
    USING (id = (SELECT app.current_org_id()));
CREATE POLICY organizations_insert ON public.organizations FOR INSERT
    WITH CHECK (false);
CREATE POLICY organizations_update ON public.organizations FOR UPDATE
    USING (id = (SELECT app.current_org_id()) AND (SELECT app.role_at_least('ADMIN')))
    WITH CHECK (id = (SELECT app.current_org_id()) AND (SELECT app.role_at_least('ADMIN')));
CREATE POLICY organizations_delete ON public.organizations FOR DELETE
    USING (id = (SELECT app.current_org_id()) AND (SELECT app.role_at_least('OWNER')));

-- users: everyone in the tenant reads; ADMIN+ create, update, delete; a user may update
-- their own row (which columns is the application's rule).
CREATE POLICY users_select ON public.users FOR SELECT
    USING (organization_id = (SELECT app.current_org_id()));
CREATE POLICY users_insert ON public.users FOR INSERT
    WITH CHECK (organization_id = (SELECT app.current_org_id())
                AND (SELECT app.role_at_least('ADMIN')));
CREATE POLICY users_update ON public.users FOR UPDATE
    USING (organization_id = (SELECT app.current_org_id())
           AND ((SELECT app.role_at_least('ADMIN')) OR id = (SELECT app.current_user_id())))
    WITH CHECK (organization_id = (SELECT app.current_org_id())
                AND ((SELECT app.role_at_least('ADMIN')) OR id = (SELECT app.current_user_id())));
CREATE POLICY users_delete ON public.users FOR DELETE
    USING (organization_id = (SELECT app.current_org_id())
           AND (SELECT app.role_at_least('ADMIN')));

-- licenses: everyone in the tenant reads; ADMIN+ update (name, metadata: the handler
-- decides which columns); only coditect_system issues or deletes licenses.
CREATE POLICY licenses_select ON public.licenses FOR SELECT
    USING (organization_id = (SELECT app.current_org_id()));
CREATE POLICY licenses_insert ON public.licenses FOR INSERT
    WITH CHECK (false);
CREATE POLICY licenses_update ON public.licenses FOR UPDATE
    USING (organization_id = (SELECT app.current_org_id())
           AND (SELECT app.role_at_least('ADMIN')))
    WITH CHECK (organization_id = (SELECT app.current_org_id())
                AND (SELECT app.role_at_least('ADMIN')));
CREATE POLICY licenses_delete ON public.licenses FOR DELETE
    USING (false);

-- license_activations: everyone in the tenant reads; activations are created only by
-- license validation (a pretenant function, issue 4) or coditect_system; ADMIN+ may
-- deactivate or delete a machine to free a seat.
CREATE POLICY license_activations_select ON public.license_activations FOR SELECT
    USING (organization_id = (SELECT app.current_org_id()));
CREATE POLICY license_activations_insert ON public.license_activations FOR INSERT
    WITH CHECK (false);
CREATE POLICY license_activations_update ON public.license_activations FOR UPDATE
    USING (organization_id = (SELECT app.current_org_id())
           AND (SELECT app.role_at_least('ADMIN')))
    WITH CHECK (organization_id = (SELECT app.current_org_id())
                AND (SELECT app.role_at_least('ADMIN')));
CREATE POLICY license_activations_delete ON public.license_activations FOR DELETE
    USING (organization_id = (SELECT app.current_org_id())
           AND (SELECT app.role_at_least('ADMIN')));

-- projects: everyone in the tenant reads; MEMBER+ create (as themselves); ADMIN+ update
-- and delete any project, MEMBER+ the ones they created.
CREATE POLICY projects_select ON public.projects FOR SELECT
    USING (organization_id = (SELECT app.current_org_id()));
CREATE POLICY projects_insert ON public.projects FOR INSERT
    WITH CHECK (organization_id = (SELECT app.current_org_id())
                AND (SELECT app.role_at_least('MEMBER'))
                AND created_by = (SELECT app.current_user_id()));
CREATE POLICY projects_update ON public.projects FOR UPDATE
    USING (organization_id = (SELECT app.current_org_id())
           AND ((SELECT app.role_at_least('ADMIN'))
                OR ((SELECT app.role_at_least('MEMBER'))
                    AND created_by = (SELECT app.current_user_id()))))
    WITH CHECK (organization_id = (SELECT app.current_org_id())
                AND ((SELECT app.role_at_least('ADMIN'))
                     OR ((SELECT app.role_at_least('MEMBER'))
                         AND created_by = (SELECT app.current_user_id()))));
CREATE POLICY projects_delete ON public.projects FOR DELETE
    USING (organization_id = (SELECT app.current_org_id())
           AND ((SELECT app.role_at_least('ADMIN'))
                OR ((SELECT app.role_at_least('MEMBER'))
                    AND created_by = (SELECT app.current_user_id()))));

-- sessions: a user sees, creates and ends their own sessions; ADMIN+ see and end any
-- session of the tenant. (Login and refresh go through pretenant functions.)
CREATE POLICY sessions_select ON public.sessions FOR SELECT
    USING (organization_id = (SELECT app.current_org_id())
           AND (user_id = (SELECT app.current_user_id()) OR (SELECT app.role_at_least('ADMIN'))));
CREATE POLICY sessions_insert ON public.sessions FOR INSERT
    WITH CHECK (organization_id = (SELECT app.current_org_id())
                AND user_id = (SELECT app.current_user_id()));
CREATE POLICY sessions_update ON public.sessions FOR UPDATE
    USING (organization_id = (SELECT app.current_org_id())
           AND (user_id = (SELECT app.current_user_id()) OR (SELECT app.role_at_least('ADMIN'))))
    WITH CHECK (organization_id = (SELECT app.current_org_id())
                AND (user_id = (SELECT app.current_user_id())
                     OR (SELECT app.role_at_least('ADMIN'))));
CREATE POLICY sessions_delete ON public.sessions FOR DELETE
    USING (organization_id = (SELECT app.current_org_id())
           AND (user_id = (SELECT app.current_user_id()) OR (SELECT app.role_at_least('ADMIN'))));

-- audit_log: ADMIN+ read; anyone in the tenant appends entries acting as themselves (or
-- with no actor). It is append-only because coditect_app has no UPDATE or DELETE grant;
-- the UPDATE and DELETE policies still exist, tenant-scoped and OWNER-only, so a grant
-- added by mistake would not open it across tenants.
-- Note: INSERT ... RETURNING also needs the SELECT policy, so non-admins insert without
-- RETURNING.
CREATE POLICY audit_log_select ON public.audit_log FOR SELECT
    USING (organization_id = (SELECT app.current_org_id())
           AND (SELECT app.role_at_least('ADMIN')));
CREATE POLICY audit_log_insert ON public.audit_log FOR INSERT
    WITH CHECK (organization_id = (SELECT app.current_org_id())
                AND (actor_id IS NULL OR actor_id = (SELECT app.current_user_id())));
CREATE POLICY audit_log_update ON public.audit_log FOR UPDATE
    USING (organization_id = (SELECT app.current_org_id())
           AND (SELECT app.role_at_least('OWNER')))
    WITH CHECK (organization_id = (SELECT app.current_org_id())
                AND (SELECT app.role_at_least('OWNER')));
CREATE POLICY audit_log_delete ON public.audit_log FOR DELETE
    USING (organization_id = (SELECT app.current_org_id())
           AND (SELECT app.role_at_least('OWNER')));
