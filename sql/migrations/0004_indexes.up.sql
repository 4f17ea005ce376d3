-- Indexes. Every index that serves a tenant query leads with organization_id; list
-- queries use keyset indexes (organization_id, created_at DESC, id DESC).
-- (The constraints of 0002/0003 already index: every primary key (id), every
-- (organization_id, id) key, licenses.key_digest, sessions.refresh_digest and
-- license_activations (organization_id, license_id, fingerprint_digest).)
--
-- The only global (not tenant-leading) indexes are the lookups made before a tenant is
-- known, by the pretenant functions, plus the primary keys:
--   organizations_slug_live_key, users_email_live_key, licenses_key_digest_key,
--   sessions_refresh_digest_key, sessions_previous_refresh_digest_idx.

-- organizations
CREATE UNIQUE INDEX organizations_slug_live_key
    ON public.organizations (slug) WHERE deleted_at IS NULL;

-- users
CREATE UNIQUE INDEX users_email_live_key
    ON public.users (lower(email)) WHERE deleted_at IS NULL;
CREATE INDEX users_org_keyset_idx
    ON public.users (organization_id, created_at DESC, id DESC) WHERE deleted_at IS NULL;
-- role checks ("the last OWNER can be neither removed nor demoted")
CREATE INDEX users_org_role_idx
    ON public.users (organization_id, role) WHERE deleted_at IS NULL;

-- licenses
CREATE INDEX licenses_org_keyset_idx
    ON public.licenses (organization_id, created_at DESC, id DESC) WHERE deleted_at IS NULL;

-- license_activations: seats in use per license
CREATE INDEX license_activations_org_license_active_idx
    ON public.license_activations (organization_id, license_id) WHERE deactivated_at IS NULL;

-- projects
CREATE UNIQUE INDEX projects_org_name_live_key
    ON public.projects (organization_id, lower(name)) WHERE deleted_at IS NULL;
CREATE INDEX projects_org_keyset_idx
    ON public.projects (organization_id, created_at DESC, id DESC) WHERE deleted_at IS NULL;
-- the composite FK to users, and "projects I created"
CREATE INDEX projects_org_created_by_idx
    ON public.projects (organization_id, created_by);

-- sessions
CREATE INDEX sessions_previous_refresh_digest_idx
    ON public.sessions (previous_refresh_digest) WHERE previous_refresh_digest IS NOT NULL;
-- the composite FK to users, and "revoke all sessions of a user"
CREATE INDEX sessions_org_user_idx
    ON public.sessions (organization_id, user_id);

-- audit_log
CREATE INDEX audit_log_org_keyset_idx
    ON public.audit_log (organization_id, created_at DESC, id DESC);
-- the composite FK to users (ON DELETE SET NULL), and "what did this user do"
CREATE INDEX audit_log_org_actor_idx
    ON public.audit_log (organization_id, actor_id, created_at DESC) WHERE actor_id IS NOT NULL;
CREATE INDEX audit_log_org_target_idx
    ON public.audit_log (organization_id, target_type, target_id, created_at DESC);
