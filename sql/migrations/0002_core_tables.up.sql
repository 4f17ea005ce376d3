-- The four core tables: organizations (the tenant root), users, licenses, projects.
--
-- Tenancy rules (docs/architecture.md, "Data model and Row-Level Security"):
--   * every tenant table has organization_id NOT NULL (organizations: its own id) and a
--     unique key (organization_id, id);
--   * every foreign key between tenant tables is composite with organization_id, so a row
--     can only ever reference rows of its own tenant (a plain FK would let tenant A point
--     at, and so probe for, tenant B's rows);
--   * soft delete: deleted_at (queries filter it; RLS policies do not).
-- organizations.owner_id <-> users.organization_id is circular: the FK from organizations
-- to users is DEFERRABLE INITIALLY DEFERRED, so one transaction inserts the organization
-- (owner_id null), then its owner, then sets owner_id.

-- The trigger function app.touch_updated_at and the CHECK helper app.text_items_valid are
-- in sql/functions/ (they require 0001, so they exist before this migration runs).

CREATE TABLE public.organizations (
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    name        varchar(200) NOT NULL,
    slug        varchar(63) NOT NULL,
    status      public.organization_status NOT NULL DEFAULT 'ACTIVE',
    owner_id    uuid NULL,
    metadata    jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz NULL,
    -- The tenant root: its "organization_id" is its id, so the primary key is also the
    -- (organization_id, id) key.
    CONSTRAINT organizations_pkey PRIMARY KEY (id),
    CONSTRAINT organizations_name_check CHECK (char_length(btrim(name)) >= 1),
    CONSTRAINT organizations_slug_check
        CHECK (slug ~ '^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$'),
    CONSTRAINT organizations_metadata_check
        CHECK (jsonb_typeof(metadata) = 'object' AND pg_column_size(metadata) <= 16384)
);

CREATE TABLE public.users (
    id              uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL,
    email           varchar(254) NOT NULL,
    full_name       varchar(200) NOT NULL,
    role            public.user_role NOT NULL DEFAULT 'MEMBER',
    status          public.user_status NOT NULL DEFAULT 'ACTIVE',
    password_hash   varchar(255) NOT NULL,
    metadata        jsonb NOT NULL DEFAULT '{}'::jsonb,
    last_login_at   timestamptz NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz NULL,
    CONSTRAINT users_pkey PRIMARY KEY (id),
    CONSTRAINT users_organization_id_id_key UNIQUE (organization_id, id),
    CONSTRAINT users_organization_fkey FOREIGN KEY (organization_id)
        REFERENCES public.organizations (id) ON DELETE CASCADE,
    CONSTRAINT users_email_check
        CHECK (email = btrim(email) AND email ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
    CONSTRAINT users_full_name_check CHECK (char_length(btrim(full_name)) >= 1),
    -- Only argon2id PHC strings: a plaintext password can never be stored by mistake.
    CONSTRAINT users_password_hash_check CHECK (password_hash LIKE '$argon2id$%'),
    CONSTRAINT users_metadata_check
        CHECK (jsonb_typeof(metadata) = 'object' AND pg_column_size(metadata) <= 16384)
);

ALTER TABLE public.organizations
    ADD CONSTRAINT organizations_owner_fkey FOREIGN KEY (id, owner_id)
        REFERENCES public.users (organization_id, id)
        ON DELETE SET NULL (owner_id)
        DEFERRABLE INITIALLY DEFERRED;

CREATE TABLE public.licenses (
    id              uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL,
    name            varchar(100) NOT NULL,
    key_prefix      varchar(16) NOT NULL,
    key_digest      bytea NOT NULL,
    tier            public.license_tier NOT NULL,
    status          public.license_status NOT NULL DEFAULT 'ACTIVE',
    seats           integer NOT NULL,
    machine_bound   boolean NOT NULL DEFAULT true,
    features        text[] NOT NULL DEFAULT '{}',
    starts_at       timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NULL,
    metadata        jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz NULL,
    CONSTRAINT licenses_pkey PRIMARY KEY (id),
    CONSTRAINT licenses_organization_id_id_key UNIQUE (organization_id, id),
    -- Global: license validation looks a key up before its tenant is known.
    CONSTRAINT licenses_key_digest_key UNIQUE (key_digest),
    CONSTRAINT licenses_organization_fkey FOREIGN KEY (organization_id)
        REFERENCES public.organizations (id) ON DELETE CASCADE,
    CONSTRAINT licenses_name_check CHECK (char_length(btrim(name)) >= 1),
    CONSTRAINT licenses_key_prefix_check CHECK (char_length(key_prefix) >= 4),
    CONSTRAINT licenses_key_digest_check CHECK (octet_length(key_digest) = 32),
    CONSTRAINT licenses_seats_check CHECK (seats BETWEEN 1 AND 100000),
    CONSTRAINT licenses_features_check
        CHECK (cardinality(features) <= 50 AND app.text_items_valid(features, 64)),
    CONSTRAINT licenses_validity_check CHECK (expires_at IS NULL OR expires_at > starts_at),
    CONSTRAINT licenses_metadata_check
        CHECK (jsonb_typeof(metadata) = 'object' AND pg_column_size(metadata) <= 16384)
);

CREATE TABLE public.projects (
    id              uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL,
    name            varchar(100) NOT NULL,
    description     varchar(2000) NULL,
    status          public.project_status NOT NULL DEFAULT 'ACTIVE',
    created_by      uuid NOT NULL,
    metadata        jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz NULL,
    CONSTRAINT projects_pkey PRIMARY KEY (id),
    CONSTRAINT projects_organization_id_id_key UNIQUE (organization_id, id),
    CONSTRAINT projects_organization_fkey FOREIGN KEY (organization_id)
        REFERENCES public.organizations (id) ON DELETE CASCADE,
    CONSTRAINT projects_created_by_fkey FOREIGN KEY (organization_id, created_by)
        REFERENCES public.users (organization_id, id),
    CONSTRAINT projects_name_check CHECK (char_length(btrim(name)) >= 1),
    CONSTRAINT projects_metadata_check
        CHECK (jsonb_typeof(metadata) = 'object' AND pg_column_size(metadata) <= 16384)
);

CREATE TRIGGER organizations_touch_updated_at BEFORE UPDATE ON public.organizations
    FOR EACH ROW EXECUTE FUNCTION app.touch_updated_at();
CREATE TRIGGER users_touch_updated_at BEFORE UPDATE ON public.users
    FOR EACH ROW EXECUTE FUNCTION app.touch_updated_at();
CREATE TRIGGER licenses_touch_updated_at BEFORE UPDATE ON public.licenses
    FOR EACH ROW EXECUTE FUNCTION app.touch_updated_at();
CREATE TRIGGER projects_touch_updated_at BEFORE UPDATE ON public.projects
    FOR EACH ROW EXECUTE FUNCTION app.touch_updated_at();
