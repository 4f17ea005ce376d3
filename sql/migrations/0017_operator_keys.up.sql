-- The operator API's own tables, in schema operator: the vendor's API keys, the stored
-- results of idempotent requests, and one row per operator call.
--
-- Not tenant data, so not in public and not under RLS: only coditect_system (which serves
-- the operator API and the CLI) has USAGE on the schema; coditect_app cannot even name it.

CREATE SCHEMA operator;

CREATE TABLE operator.keys (
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    -- Unique for ever (revoked keys included), so a name in the audit trail means one key.
    name        varchar(64) NOT NULL,
    key_prefix  varchar(16) NOT NULL,
    -- sha256 of the key: the key itself is shown once, at creation, and never stored.
    key_digest  bytea NOT NULL,
    scopes      text[] NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz NULL,
    CONSTRAINT keys_pkey PRIMARY KEY (id),
    CONSTRAINT keys_name_key UNIQUE (name),
    CONSTRAINT keys_key_digest_key UNIQUE (key_digest),
    CONSTRAINT keys_name_check CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    CONSTRAINT keys_digest_check CHECK (octet_length(key_digest) = 32),
    CONSTRAINT keys_scopes_check
        CHECK (cardinality(scopes) >= 1
               AND scopes <@ ARRAY['licenses:read', 'licenses:write']::text[])
);

-- The first successful result of a POST sent with an Idempotency-Key, per operator key.
-- The response body is sealed (AES-GCM, app/rules/idempotency.py): it may hold a license
-- key, which is otherwise never stored.
CREATE TABLE operator.idempotency (
    operator_key_id uuid NOT NULL,
    idempotency_key varchar(255) NOT NULL,
    -- sha256 of the operation and the request body: a retry must send the same request.
    fingerprint     bytea NOT NULL,
    status          smallint NULL,
    location        varchar(2000) NULL,
    sealed_body     bytea NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT idempotency_pkey PRIMARY KEY (operator_key_id, idempotency_key),
    CONSTRAINT idempotency_key_fkey FOREIGN KEY (operator_key_id)
        REFERENCES operator.keys (id) ON DELETE CASCADE
);

-- One row per successful operator call (reads included): what each key did, and when a key
-- was last used. Changes to a tenant's objects are also in that tenant's audit_log.
CREATE TABLE operator.calls (
    id              uuid NOT NULL DEFAULT gen_random_uuid(),
    operator_key_id uuid NOT NULL,
    operation       varchar(64) NOT NULL,
    organization_id uuid NULL,
    target_id       uuid NULL,
    request_id      varchar(64) NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT calls_pkey PRIMARY KEY (id),
    CONSTRAINT calls_key_fkey FOREIGN KEY (operator_key_id)
        REFERENCES operator.keys (id) ON DELETE CASCADE
);
CREATE INDEX calls_key_created_idx ON operator.calls (operator_key_id, created_at DESC);

-- Cross-tenant keyset lists of the operator API, newest first.
CREATE INDEX organizations_created_idx ON public.organizations (created_at DESC, id DESC);
CREATE INDEX licenses_created_idx ON public.licenses (created_at DESC, id DESC);

GRANT USAGE ON SCHEMA operator TO coditect_system;
GRANT SELECT, INSERT, UPDATE ON operator.keys TO coditect_system;
GRANT SELECT, INSERT, UPDATE, DELETE ON operator.idempotency TO coditect_system;
GRANT SELECT, INSERT ON operator.calls TO coditect_system;
