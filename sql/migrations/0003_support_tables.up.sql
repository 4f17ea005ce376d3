-- Supporting tables: sessions (refresh-token families), license_activations (machines
-- holding a seat), audit_log (append-only). Same tenancy rules as the core tables: every
-- foreign key is composite with organization_id.

CREATE TABLE public.sessions (
    id                      uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id         uuid NOT NULL,
    user_id                 uuid NOT NULL,
    -- sha256 of the current refresh token; global: refresh happens before the tenant is known.
    refresh_digest          bytea NOT NULL,
    -- sha256 of the token rotated away, kept for the short grace window (see
    -- pretenant.rotate_refresh). Only one previous token is kept.
    previous_refresh_digest bytea NULL,
    rotated_at              timestamptz NULL,
    user_agent              varchar(512) NULL,
    ip                      inet NULL,
    expires_at              timestamptz NOT NULL,
    last_used_at            timestamptz NOT NULL DEFAULT now(),
    revoked_at              timestamptz NULL,
    revoked_reason          varchar(32) NULL,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sessions_pkey PRIMARY KEY (id),
    CONSTRAINT sessions_organization_id_id_key UNIQUE (organization_id, id),
    CONSTRAINT sessions_refresh_digest_key UNIQUE (refresh_digest),
    CONSTRAINT sessions_organization_fkey FOREIGN KEY (organization_id)
        REFERENCES public.organizations (id) ON DELETE CASCADE,
    CONSTRAINT sessions_user_fkey FOREIGN KEY (organization_id, user_id)
        REFERENCES public.users (organization_id, id) ON DELETE CASCADE,
    CONSTRAINT sessions_refresh_digest_check CHECK (octet_length(refresh_digest) = 32),
    CONSTRAINT sessions_previous_refresh_digest_check
        CHECK (octet_length(previous_refresh_digest) = 32
               AND previous_refresh_digest <> refresh_digest),
    CONSTRAINT sessions_rotation_check
        CHECK ((previous_refresh_digest IS NULL) = (rotated_at IS NULL)),
    CONSTRAINT sessions_revoked_reason_check
        CHECK (revoked_reason IS NULL OR (revoked_at IS NOT NULL
                                          AND revoked_reason ~ '^[a-z][a-z0-9_]*$'))
);

CREATE TABLE public.license_activations (
    id                 uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id    uuid NOT NULL,
    license_id         uuid NOT NULL,
    -- sha256 of the client's machine fingerprint; the raw fingerprint is never stored.
    fingerprint_digest bytea NOT NULL,
    hostname           varchar(255) NULL,
    activated_at       timestamptz NOT NULL DEFAULT now(),
    last_seen_at       timestamptz NOT NULL DEFAULT now(),
    deactivated_at     timestamptz NULL,
    metadata           jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT license_activations_pkey PRIMARY KEY (id),
    CONSTRAINT license_activations_organization_id_id_key UNIQUE (organization_id, id),
    CONSTRAINT license_activations_fingerprint_key
        UNIQUE (organization_id, license_id, fingerprint_digest),
    CONSTRAINT license_activations_organization_fkey FOREIGN KEY (organization_id)
        REFERENCES public.organizations (id) ON DELETE CASCADE,
    CONSTRAINT license_activations_license_fkey FOREIGN KEY (organization_id, license_id)
        REFERENCES public.licenses (organization_id, id) ON DELETE CASCADE,
    CONSTRAINT license_activations_fingerprint_digest_check
        CHECK (octet_length(fingerprint_digest) = 32),
    CONSTRAINT license_activations_hostname_check
        CHECK (hostname IS NULL OR char_length(btrim(hostname)) >= 1),
    CONSTRAINT license_activations_metadata_check
        CHECK (jsonb_typeof(metadata) = 'object' AND pg_column_size(metadata) <= 16384)
);

-- Append-only: the API role gets SELECT and INSERT only (0007_grants).
CREATE TABLE public.audit_log (
    id              uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL,
    actor_id        uuid NULL,
    action          varchar(64) NOT NULL,
    target_type     varchar(32) NOT NULL,
    target_id       uuid NULL,
    detail          jsonb NOT NULL DEFAULT '{}'::jsonb,
    request_id      varchar(64) NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT audit_log_pkey PRIMARY KEY (id),
    CONSTRAINT audit_log_organization_id_id_key UNIQUE (organization_id, id),
    CONSTRAINT audit_log_organization_fkey FOREIGN KEY (organization_id)
        REFERENCES public.organizations (id) ON DELETE CASCADE,
    -- A hard-deleted user (erasure) leaves the entries with no actor.
    CONSTRAINT audit_log_actor_fkey FOREIGN KEY (organization_id, actor_id)
        REFERENCES public.users (organization_id, id) ON DELETE SET NULL (actor_id),
    -- e.g. "user.role_changed", "auth.login"
    CONSTRAINT audit_log_action_check CHECK (action ~ '^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$'),
    CONSTRAINT audit_log_target_type_check CHECK (target_type ~ '^[a-z][a-z0-9_]*$'),
    CONSTRAINT audit_log_detail_check
        CHECK (jsonb_typeof(detail) = 'object' AND pg_column_size(detail) <= 16384),
    CONSTRAINT audit_log_request_id_check
        CHECK (request_id IS NULL OR char_length(request_id) >= 1)
);

CREATE TRIGGER sessions_touch_updated_at BEFORE UPDATE ON public.sessions
    FOR EACH ROW EXECUTE FUNCTION app.touch_updated_at();
CREATE TRIGGER license_activations_touch_updated_at BEFORE UPDATE ON public.license_activations
    FOR EACH ROW EXECUTE FUNCTION app.touch_updated_at();
