-- coditect_system without BYPASSRLS: managed PostgreSQL (Cloud SQL, RDS, Azure) has no
-- superuser to grant that attribute, so the system role crosses tenants through explicit
-- policies instead, TO coditect_system only, one per table and command it uses today and
-- no other (a command without a policy here sees no row and writes none):
--
--   pretenant functions (SECURITY DEFINER, owned by coditect_system):
--     signup               INSERT organizations, users, licenses, sessions (RETURNING: SELECT);
--                          UPDATE organizations (its owner)
--     find_login           SELECT users, organizations
--     open_session         SELECT organizations; INSERT sessions; UPDATE users (last login)
--     set_password_hash    UPDATE users
--     rotate_refresh       SELECT users, organizations; SELECT, UPDATE sessions
--     organization_tier    SELECT licenses
--     validate_license     SELECT licenses (FOR UPDATE: UPDATE), organizations;
--                          SELECT, INSERT, UPDATE license_activations
--   operator commands (sql/queries/licenses.sql admin_*, app/ops/license_admin.py):
--     SELECT organizations; SELECT, INSERT, UPDATE licenses; SELECT license_activations;
--     INSERT audit_log (without RETURNING)
--   the development seed (sql/seeds/dev_seed_data.sql, loaded as coditect_system):
--     INSERT into every tenant table, projects included
--
-- Each also tests current_user: a policy TO a role applies to every role inheriting it,
-- and coditect_owner does (it must, to replace the functions coditect_system owns), yet the
-- owner stays subject to RLS like anyone else.
--
-- Nothing here deletes, reads projects or reads the audit log. The app role's policies
-- (0005) stay as they are: these name coditect_system, so they never apply to coditect_app.
-- Superuser setups lose BYPASSRLS on coditect_system too (sql/roles.sql), so both setups
-- run the same rules.

CREATE POLICY organizations_system_select ON public.organizations FOR SELECT
    TO coditect_system USING (current_user = 'coditect_system');
CREATE POLICY organizations_system_insert ON public.organizations FOR INSERT
    TO coditect_system WITH CHECK (current_user = 'coditect_system');
CREATE POLICY organizations_system_update ON public.organizations FOR UPDATE
    TO coditect_system USING (current_user = 'coditect_system')
    WITH CHECK (current_user = 'coditect_system');

CREATE POLICY users_system_select ON public.users FOR SELECT
    TO coditect_system USING (current_user = 'coditect_system');
CREATE POLICY users_system_insert ON public.users FOR INSERT
    TO coditect_system WITH CHECK (current_user = 'coditect_system');
CREATE POLICY users_system_update ON public.users FOR UPDATE
    TO coditect_system USING (current_user = 'coditect_system')
    WITH CHECK (current_user = 'coditect_system');

CREATE POLICY licenses_system_select ON public.licenses FOR SELECT
    TO coditect_system USING (current_user = 'coditect_system');
CREATE POLICY licenses_system_insert ON public.licenses FOR INSERT
    TO coditect_system WITH CHECK (current_user = 'coditect_system');
CREATE POLICY licenses_system_update ON public.licenses FOR UPDATE
    TO coditect_system USING (current_user = 'coditect_system')
    WITH CHECK (current_user = 'coditect_system');

CREATE POLICY license_activations_system_select ON public.license_activations FOR SELECT
    TO coditect_system USING (current_user = 'coditect_system');
CREATE POLICY license_activations_system_insert ON public.license_activations FOR INSERT
    TO coditect_system WITH CHECK (current_user = 'coditect_system');
CREATE POLICY license_activations_system_update ON public.license_activations FOR UPDATE
    TO coditect_system USING (current_user = 'coditect_system')
    WITH CHECK (current_user = 'coditect_system');

CREATE POLICY sessions_system_select ON public.sessions FOR SELECT
    TO coditect_system USING (current_user = 'coditect_system');
CREATE POLICY sessions_system_insert ON public.sessions FOR INSERT
    TO coditect_system WITH CHECK (current_user = 'coditect_system');
CREATE POLICY sessions_system_update ON public.sessions FOR UPDATE
    TO coditect_system USING (current_user = 'coditect_system')
    WITH CHECK (current_user = 'coditect_system');

CREATE POLICY projects_system_insert ON public.projects FOR INSERT
    TO coditect_system WITH CHECK (current_user = 'coditect_system');

CREATE POLICY audit_log_system_insert ON public.audit_log FOR INSERT
    TO coditect_system WITH CHECK (current_user = 'coditect_system');

-- Login looks a user up by lower(email) as coditect_system, to which RLS now applies: the
-- planner may not use the index on lower(email) there (lower() is not leakproof, so it may
-- not run before the policies' checks) and a login scanned every user (measured: 155 ms at
-- 50,000 users, against 0.05 ms by index). The lower-cased email as a column of its own,
-- compared by text equality, which is leakproof, is found by index again
-- (pretenant.find_login requires this migration for it).
ALTER TABLE public.users
    ADD COLUMN email_key text GENERATED ALWAYS AS (lower(email)) STORED;
CREATE INDEX users_email_key_live_idx ON public.users (email_key) WHERE deleted_at IS NULL;
