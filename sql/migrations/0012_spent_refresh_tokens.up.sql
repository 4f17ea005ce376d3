-- Refresh-token rotation history: every token a session has rotated away, so that presenting
-- any of them again (not only the last one) is detected as reuse and revokes the session
-- (pretenant.rotate_refresh). sessions.previous_refresh_digest stays as the one token that
-- may still be honoured, once, within the grace window; it is cleared when that happens.
--
-- Written and read only by pretenant.rotate_refresh (SECURITY DEFINER, coditect_system).
-- The app role gets the same table grants as on every tenant table and RLS scopes them: it
-- may read its tenant's rows as an ADMIN, and it can never insert or change one.

CREATE TABLE public.spent_refresh_tokens (
    id              uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL,
    session_id      uuid NOT NULL,
    -- sha256 of the rotated-away token; global: refresh happens before the tenant is known.
    refresh_digest  bytea NOT NULL,
    spent_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT spent_refresh_tokens_pkey PRIMARY KEY (id),
    CONSTRAINT spent_refresh_tokens_organization_id_id_key UNIQUE (organization_id, id),
    CONSTRAINT spent_refresh_tokens_refresh_digest_key UNIQUE (refresh_digest),
    CONSTRAINT spent_refresh_tokens_organization_fkey FOREIGN KEY (organization_id)
        REFERENCES public.organizations (id) ON DELETE CASCADE,
    CONSTRAINT spent_refresh_tokens_session_fkey FOREIGN KEY (organization_id, session_id)
        REFERENCES public.sessions (organization_id, id) ON DELETE CASCADE,
    CONSTRAINT spent_refresh_tokens_refresh_digest_check CHECK (octet_length(refresh_digest) = 32)
);

-- the composite FK to sessions (cascading deletes)
CREATE INDEX spent_refresh_tokens_org_session_idx
    ON public.spent_refresh_tokens (organization_id, session_id);

ALTER TABLE public.spent_refresh_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.spent_refresh_tokens FORCE ROW LEVEL SECURITY;

CREATE POLICY spent_refresh_tokens_select ON public.spent_refresh_tokens FOR SELECT
    USING (organization_id = (SELECT app.current_org_id())
           AND (SELECT app.role_at_least('ADMIN')));
CREATE POLICY spent_refresh_tokens_insert ON public.spent_refresh_tokens FOR INSERT
    WITH CHECK (false);
CREATE POLICY spent_refresh_tokens_update ON public.spent_refresh_tokens FOR UPDATE
    USING (organization_id = (SELECT app.current_org_id())
           AND (SELECT app.role_at_least('OWNER')))
    WITH CHECK (false);
CREATE POLICY spent_refresh_tokens_delete ON public.spent_refresh_tokens FOR DELETE
    USING (organization_id = (SELECT app.current_org_id())
           AND (SELECT app.role_at_least('OWNER')));

GRANT SELECT, INSERT, UPDATE, DELETE ON public.spent_refresh_tokens TO coditect_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.spent_refresh_tokens TO coditect_system;
