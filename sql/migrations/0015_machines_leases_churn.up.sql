-- Machines of a license as history, leases (floating seats), churn limits, tier defaults in
-- one table, and the client address on audit entries (issue 12).

-- The defaults of each tier, mirrored from app/licensing/tiers.py (tests/db/test_tiers.py
-- proves the two agree): signup reads FREE from here, validation the churn limits of the
-- license's tier when the license does not override them.
CREATE TABLE public.license_tiers (
    tier                 public.license_tier NOT NULL,
    seats                integer NOT NULL,
    machine_bound        boolean NOT NULL,
    features             text[] NOT NULL,
    activation_limit     integer NOT NULL,
    deactivation_limit   integer NOT NULL,
    churn_window_seconds integer NOT NULL,
    CONSTRAINT license_tiers_pkey PRIMARY KEY (tier),
    CONSTRAINT license_tiers_seats_check CHECK (seats >= 1),
    CONSTRAINT license_tiers_activation_limit_check CHECK (activation_limit >= 1),
    CONSTRAINT license_tiers_deactivation_limit_check CHECK (deactivation_limit >= 1),
    CONSTRAINT license_tiers_churn_window_check CHECK (churn_window_seconds >= 60)
);
INSERT INTO public.license_tiers VALUES
    ('FREE', 1, true, '{core,cli}', 5, 5, 86400),
    ('PRO', 5, true, '{core,cli,cloud-sync,priority-support}', 100, 100, 86400),
    ('ENTERPRISE', 25, true,
     '{core,cli,cloud-sync,priority-support,sso,audit-export,on-prem-runner}', 1000, 1000, 86400);
-- Reference data, not a tenant's: readable by both roles, written only by migrations.
GRANT SELECT ON public.license_tiers TO coditect_app, coditect_system;

-- Per-license terms: a lease (a machine that has not validated within it holds no seat) and
-- overrides of the tier's churn limits (null: the tier's).
ALTER TABLE public.licenses
    ADD COLUMN lease_seconds integer NULL,
    ADD COLUMN activation_limit integer NULL,
    ADD COLUMN deactivation_limit integer NULL,
    ADD COLUMN churn_window_seconds integer NULL;
-- A license not bound to machines is floating: its seats are concurrent machines, so it
-- always has a lease (an hour for those issued before leases existed).
UPDATE public.licenses SET lease_seconds = 3600 WHERE NOT machine_bound;
ALTER TABLE public.licenses
    ADD CONSTRAINT licenses_lease_seconds_check
        CHECK (lease_seconds BETWEEN 300 AND 31536000),
    ADD CONSTRAINT licenses_floating_lease_check
        CHECK (machine_bound OR lease_seconds IS NOT NULL),
    ADD CONSTRAINT licenses_activation_limit_check CHECK (activation_limit >= 1),
    ADD CONSTRAINT licenses_deactivation_limit_check CHECK (deactivation_limit >= 1),
    ADD CONSTRAINT licenses_churn_window_check CHECK (churn_window_seconds >= 60);

-- Why a machine no longer holds its seat: deactivated (by an ADMIN or by the client) or its
-- lease expired (recorded when another machine needed the seat).
ALTER TABLE public.license_activations ADD COLUMN deactivation_reason varchar(32) NULL;
UPDATE public.license_activations SET deactivation_reason = 'deactivated'
 WHERE deactivated_at IS NOT NULL;
ALTER TABLE public.license_activations
    ADD CONSTRAINT license_activations_deactivation_reason_check
        CHECK ((deactivated_at IS NULL AND deactivation_reason IS NULL)
               OR (deactivated_at IS NOT NULL AND deactivation_reason IS NOT NULL
                   AND deactivation_reason IN ('deactivated', 'lease_expired')));
-- listLicenseMachines: newest first by first activation (created_at never changes).
CREATE INDEX license_activations_org_license_keyset_idx
    ON public.license_activations (organization_id, license_id, created_at DESC, id DESC);

-- Who did it from where: the client address of the request that made the entry.
ALTER TABLE public.audit_log ADD COLUMN client_ip inet NULL;
-- listAuditEvents by action, and the churn counts (per license, action and time).
CREATE INDEX audit_log_org_action_idx
    ON public.audit_log (organization_id, action, created_at DESC, id DESC);
CREATE INDEX audit_log_org_target_action_idx
    ON public.audit_log (organization_id, target_type, target_id, action, created_at DESC);

-- validate_license takes the client address and request id for its audit entries; its file
-- (sql/functions/pretenant.validate_license.sql) now requires this migration; a database
-- made before has the old signature, a fresh one never had it.
DROP FUNCTION IF EXISTS pretenant.validate_license(bytea, bytea, varchar, interval);
