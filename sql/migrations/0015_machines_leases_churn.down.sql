DROP INDEX public.audit_log_org_target_action_idx;
DROP INDEX public.audit_log_org_action_idx;
ALTER TABLE public.audit_log DROP COLUMN client_ip;
DROP INDEX public.license_activations_org_license_keyset_idx;
ALTER TABLE public.license_activations
    DROP CONSTRAINT license_activations_deactivation_reason_check,
    DROP COLUMN deactivation_reason;
ALTER TABLE public.licenses
    DROP CONSTRAINT licenses_churn_window_check,
    DROP CONSTRAINT licenses_deactivation_limit_check,
    DROP CONSTRAINT licenses_activation_limit_check,
    DROP CONSTRAINT licenses_floating_lease_check,
    DROP CONSTRAINT licenses_lease_seconds_check,
    DROP COLUMN churn_window_seconds,
    DROP COLUMN deactivation_limit,
    DROP COLUMN activation_limit,
    DROP COLUMN lease_seconds;
DROP TABLE public.license_tiers;
