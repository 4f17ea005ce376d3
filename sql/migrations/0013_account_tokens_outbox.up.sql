-- Password resets, invitations and the mail they send.
--
--   account_tokens  single-use tokens mailed to a user (password reset, invitation), kept only
--                   as sha256 digests, with an expiry; used_at / revoked_at end them.
--   outbox          messages to send, written in the transaction of the action that causes
--                   them and delivered by the outbox worker (app/mail) through the narrow
--                   pretenant.claim_outbox / complete_outbox / retry_outbox functions. A
--                   delivered message's body (which holds a token link) is erased.
--   users           an invited user has no password until they accept the invitation.
-- Both tables follow the tenancy rules of 0002/0003 (composite keys, RLS forced).

CREATE TABLE public.account_tokens (
    id              uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL,
    user_id         uuid NOT NULL,
    purpose         varchar(16) NOT NULL,
    -- global: a token is presented before its tenant is known.
    token_digest    bytea NOT NULL,
    expires_at      timestamptz NOT NULL,
    used_at         timestamptz NULL,
    revoked_at      timestamptz NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT account_tokens_pkey PRIMARY KEY (id),
    CONSTRAINT account_tokens_organization_id_id_key UNIQUE (organization_id, id),
    CONSTRAINT account_tokens_token_digest_key UNIQUE (token_digest),
    CONSTRAINT account_tokens_organization_fkey FOREIGN KEY (organization_id)
        REFERENCES public.organizations (id) ON DELETE CASCADE,
    CONSTRAINT account_tokens_user_fkey FOREIGN KEY (organization_id, user_id)
        REFERENCES public.users (organization_id, id) ON DELETE CASCADE,
    CONSTRAINT account_tokens_purpose_check
        CHECK (purpose IN ('password_reset', 'invitation')),
    CONSTRAINT account_tokens_token_digest_check CHECK (octet_length(token_digest) = 32),
    CONSTRAINT account_tokens_expiry_check CHECK (expires_at > created_at),
    CONSTRAINT account_tokens_single_end_check CHECK (used_at IS NULL OR revoked_at IS NULL)
);

-- "the user's open tokens of a purpose" (revoke on resend, the per-email reset limit)
CREATE INDEX account_tokens_org_user_idx
    ON public.account_tokens (organization_id, user_id, purpose, created_at DESC);

CREATE TABLE public.outbox (
    id              uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL,
    kind            varchar(32) NOT NULL,
    recipient       varchar(254) NOT NULL,
    subject         varchar(200) NOT NULL,
    -- Plain text; erased (NULL) once delivered or given up, as it holds a token link.
    body            text NULL,
    status          varchar(16) NOT NULL DEFAULT 'pending',
    attempts        integer NOT NULL DEFAULT 0,
    -- When the next attempt may start (backoff after a failure).
    available_at    timestamptz NOT NULL DEFAULT now(),
    -- A worker's claim: its id and until when it holds the message.
    lease_id        uuid NULL,
    leased_until    timestamptz NULL,
    last_error      varchar(500) NULL,
    sent_at         timestamptz NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT outbox_pkey PRIMARY KEY (id),
    CONSTRAINT outbox_organization_id_id_key UNIQUE (organization_id, id),
    CONSTRAINT outbox_organization_fkey FOREIGN KEY (organization_id)
        REFERENCES public.organizations (id) ON DELETE CASCADE,
    CONSTRAINT outbox_kind_check CHECK (kind ~ '^[a-z][a-z0-9_]*$'),
    CONSTRAINT outbox_status_check CHECK (status IN ('pending', 'sent', 'failed')),
    CONSTRAINT outbox_attempts_check CHECK (attempts >= 0),
    CONSTRAINT outbox_body_check CHECK ((status = 'pending') = (body IS NOT NULL)),
    CONSTRAINT outbox_lease_check CHECK ((lease_id IS NULL) = (leased_until IS NULL))
);

-- The worker's queue: pending messages by when they are due (global: it serves every tenant).
CREATE INDEX outbox_pending_idx
    ON public.outbox (available_at) WHERE status = 'pending';
CREATE INDEX outbox_org_keyset_idx
    ON public.outbox (organization_id, created_at DESC, id DESC);

CREATE TRIGGER account_tokens_touch_updated_at BEFORE UPDATE ON public.account_tokens
    FOR EACH ROW EXECUTE FUNCTION app.touch_updated_at();
CREATE TRIGGER outbox_touch_updated_at BEFORE UPDATE ON public.outbox
    FOR EACH ROW EXECUTE FUNCTION app.touch_updated_at();

ALTER TABLE public.account_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.account_tokens FORCE ROW LEVEL SECURITY;
ALTER TABLE public.outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.outbox FORCE ROW LEVEL SECURITY;

-- account_tokens: ADMIN+ issue and revoke invitations in their tenant; resets and
-- acceptance go through pretenant functions.
CREATE POLICY account_tokens_select ON public.account_tokens FOR SELECT
    USING (organization_id = (SELECT app.current_org_id())
           AND (SELECT app.role_at_least('ADMIN')));
CREATE POLICY account_tokens_insert ON public.account_tokens FOR INSERT
    WITH CHECK (organization_id = (SELECT app.current_org_id())
                AND (SELECT app.role_at_least('ADMIN')));
CREATE POLICY account_tokens_update ON public.account_tokens FOR UPDATE
    USING (organization_id = (SELECT app.current_org_id())
           AND (SELECT app.role_at_least('ADMIN')))
    WITH CHECK (organization_id = (SELECT app.current_org_id())
                AND (SELECT app.role_at_least('ADMIN')));
CREATE POLICY account_tokens_delete ON public.account_tokens FOR DELETE
    USING (organization_id = (SELECT app.current_org_id())
           AND (SELECT app.role_at_least('ADMIN')));

-- outbox: ADMIN+ queue mail of their tenant (invitations); delivery is the worker's, through
-- pretenant functions.
CREATE POLICY outbox_select ON public.outbox FOR SELECT
    USING (organization_id = (SELECT app.current_org_id())
           AND (SELECT app.role_at_least('ADMIN')));
CREATE POLICY outbox_insert ON public.outbox FOR INSERT
    WITH CHECK (organization_id = (SELECT app.current_org_id())
                AND (SELECT app.role_at_least('ADMIN')));
CREATE POLICY outbox_update ON public.outbox FOR UPDATE
    USING (organization_id = (SELECT app.current_org_id())
           AND (SELECT app.role_at_least('OWNER')))
    WITH CHECK (organization_id = (SELECT app.current_org_id())
                AND (SELECT app.role_at_least('OWNER')));
CREATE POLICY outbox_delete ON public.outbox FOR DELETE
    USING (organization_id = (SELECT app.current_org_id())
           AND (SELECT app.role_at_least('OWNER')));

GRANT SELECT, INSERT, UPDATE, DELETE ON public.account_tokens, public.outbox
    TO coditect_app, coditect_system;

-- Invited users have no password until they accept; everyone else has one.
ALTER TABLE public.users ALTER COLUMN password_hash DROP NOT NULL;
ALTER TABLE public.users ADD CONSTRAINT users_password_hash_present_check
    CHECK (password_hash IS NOT NULL OR status = 'INVITED');
