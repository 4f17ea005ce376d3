-- Development seed data: two demo tenants with users of every role and status, licenses of
-- every tier, machine activations, projects and audit entries. Load it with
-- `coditect-cloud seed`. NEVER load it into production: the credentials below are public.
--
-- Runs as coditect_system (its policies, 0019) in one transaction. Idempotent-ish: fixed ids and
-- ON CONFLICT DO NOTHING, so loading it twice changes nothing; it does not repair rows you
-- edited. Times are relative to the load time (expired things are in the past, etc.).
--
-- Dev credentials
-- ---------------
-- Every user's password: coditect-dev-password   (argon2id, m=19456 KiB, t=2, p=1)
--
-- Ids: <org letter>000000<kind>-0000-4000-8000-0000000000NN, org letter a = Acme, b = Globex;
--      kind 1 organization, 2 user, 3 license, 4 activation, 5 project, 6 audit entry.
--
-- Acme Robotics    (slug acme-robotics)    a0000001-0000-4000-8000-000000000001
--   users  a0000002-...-00000000000N
--     01 ada.okafor@acme.example       OWNER   ACTIVE     (the organization's owner)
--     02 ben.carter@acme.example       ADMIN   ACTIVE
--     03 chloe.nguyen@acme.example     MEMBER  ACTIVE
--     04 dmitri.volkov@acme.example    MEMBER  SUSPENDED
--     05 elena.rossi@acme.example      GUEST   ACTIVE
--     06 farid.haddad@acme.example     MEMBER  INVITED
--   licenses a0000003-...-00000000000N  (key_prefix = first 12 characters of the key)
--     01 FREE        cdt_dev_acme_free_0000000000000001   ACTIVE, 1 seat, perpetual
--     02 PRO         cdt_dev_acme_pro_0000000000000001    ACTIVE, 10 seats, expires in 1 year
--     03 ENTERPRISE  cdt_dev_acme_ent_0000000000000001    ACTIVE, 250 seats, perpetual, not machine-bound
--     04 PRO         cdt_dev_acme_pro_0000000000000002    ACTIVE but EXPIRED 35 days ago
--   projects a0000005-...: 01 Warehouse picker arm, 02 Vision pipeline, 03 Firmware 2.0
--     (ARCHIVED), 04 Old prototype (soft-deleted)
--
-- Globex Research  (slug globex-research)  b0000001-0000-4000-8000-000000000001
--   users  b0000002-...-00000000000N
--     01 grace.lin@globex.example      OWNER   ACTIVE     (the organization's owner)
--     02 hiro.tanaka@globex.example    ADMIN   ACTIVE
--     03 isla.murphy@globex.example    MEMBER  ACTIVE
--     04 jonas.berg@globex.example     GUEST   SUSPENDED
--     05 kavya.iyer@globex.example     MEMBER  ACTIVE
--   licenses b0000003-...-00000000000N
--     01 FREE        cdt_dev_globex_free_0000000000000001 ACTIVE, 1 seat, perpetual
--     02 PRO         cdt_dev_globex_pro_0000000000000001  SUSPENDED, 5 seats
--     03 ENTERPRISE  cdt_dev_globex_ent_0000000000000001  ACTIVE, 500 seats, expires in 2 years
--     04 PRO         cdt_dev_globex_pro_0000000000000002  REVOKED
--   projects b0000005-...: 01 Protein folding study, 02 Lab notebook, 03 Grant report 2024
--     (ARCHIVED)
--
-- License keys are stored as sha256(key) (key_digest); machine fingerprints as
-- sha256(fingerprint), e.g. sha256('dev-fingerprint-acme-workstation-01').

-- Organizations first, with their owner already set: the (id, owner_id) -> users foreign
-- key is deferred to COMMIT, by which time the owners exist.
INSERT INTO public.organizations (id, name, slug, status, owner_id, metadata, created_at, updated_at)
VALUES
    ('a0000001-0000-4000-8000-000000000001', 'Acme Robotics', 'acme-robotics', 'ACTIVE',
     'a0000002-0000-4000-8000-000000000001',
     '{"industry": "robotics", "billing_email": "billing@acme.example"}',
     now() - interval '120 days', now() - interval '10 days'),
    ('b0000001-0000-4000-8000-000000000001', 'Globex Research', 'globex-research', 'ACTIVE',
     'b0000002-0000-4000-8000-000000000001',
     '{"industry": "life sciences", "billing_email": "accounts@globex.example"}',
     now() - interval '90 days', now() - interval '90 days')
ON CONFLICT DO NOTHING;

INSERT INTO public.users (id, organization_id, email, full_name, role, status, password_hash,
                          metadata, last_login_at, created_at, updated_at)
VALUES
    -- Acme Robotics
    ('a0000002-0000-4000-8000-000000000001', 'a0000001-0000-4000-8000-000000000001',
     'ada.okafor@acme.example', 'Ada Okafor', 'OWNER', 'ACTIVE',
     '$argon2id$v=19$m=19456,t=2,p=1$j6Xl9ZyGvR0SqMJ8Wrb0NQ$y6bgXacUUYrrt4ciPdDUrKlqrz4cFbahGrSW1La4phY',
     '{"title": "CTO"}', now() - interval '1 day',
     now() - interval '120 days', now() - interval '1 day'),
    ('a0000002-0000-4000-8000-000000000002', 'a0000001-0000-4000-8000-000000000001',
     'ben.carter@acme.example', 'Ben Carter', 'ADMIN', 'ACTIVE',
     '$argon2id$v=19$m=19456,t=2,p=1$mH4EHoZqwbxhOFjwSZojWw$I4IBSE4C92EcUVH/BQEDj65vIvD3zOGie/x99EOel10',
     '{"title": "Engineering manager"}', now() - interval '2 days',
     now() - interval '110 days', now() - interval '2 days'),
    ('a0000002-0000-4000-8000-000000000003', 'a0000001-0000-4000-8000-000000000001',
     'chloe.nguyen@acme.example', 'Chloe Nguyen', 'MEMBER', 'ACTIVE',
     '$argon2id$v=19$m=19456,t=2,p=1$UVzzbaAQ/vzAVLSd9Kc7+w$r+fIEYoIRiS5ZFSjbPBWN9DJvpn2V3JIcShEwkFz9Sc',
     '{"team": "manipulation"}', now() - interval '3 hours',
     now() - interval '100 days', now() - interval '3 hours'),
    ('a0000002-0000-4000-8000-000000000004', 'a0000001-0000-4000-8000-000000000001',
     'dmitri.volkov@acme.example', 'Dmitri Volkov', 'MEMBER', 'SUSPENDED',
     '$argon2id$v=19$m=19456,t=2,p=1$Eas4IsLKdngrm9IZImldfA$zV5JUf3AcNRlEl5UDaXh6MAhNJPypaBKUTDgCT8dZak',
     '{"team": "perception", "suspension_reason": "contract ended"}', now() - interval '40 days',
     now() - interval '95 days', now() - interval '30 days'),
    ('a0000002-0000-4000-8000-000000000005', 'a0000001-0000-4000-8000-000000000001',
     'elena.rossi@acme.example', 'Elena Rossi', 'GUEST', 'ACTIVE',
     '$argon2id$v=19$m=19456,t=2,p=1$H7ypicj2QaQ0lvLlwD+RPA$N1otX5reMHsQR9B28v1ZtZ46P63KByKQY5LydTub8Kc',
     '{"company": "Initech (auditor)"}', NULL,
     now() - interval '20 days', now() - interval '20 days'),
    ('a0000002-0000-4000-8000-000000000006', 'a0000001-0000-4000-8000-000000000001',
     'farid.haddad@acme.example', 'Farid Haddad', 'MEMBER', 'INVITED',
     '$argon2id$v=19$m=19456,t=2,p=1$xh4rfDNkv6ppnWHRyAukwg$GMXU3bV6r2xC0d3flI46NCZvnmqRDOsmZ4u5ASYhmoc',
     '{}', NULL,
     now() - interval '2 days', now() - interval '2 days'),
    -- Globex Research
    ('b0000002-0000-4000-8000-000000000001', 'b0000001-0000-4000-8000-000000000001',
     'grace.lin@globex.example', 'Grace Lin', 'OWNER', 'ACTIVE',
     '$argon2id$v=19$m=19456,t=2,p=1$EcQELEIJeJls46V0hAfZQg$sDVTOXq+t9H9zovwQBzyLmblhIHbEr3ApBuz/ITlICU',
     '{"title": "Principal investigator"}', now() - interval '5 hours',
     now() - interval '90 days', now() - interval '5 hours'),
    ('b0000002-0000-4000-8000-000000000002', 'b0000001-0000-4000-8000-000000000001',
     'hiro.tanaka@globex.example', 'Hiro Tanaka', 'ADMIN', 'ACTIVE',
     '$argon2id$v=19$m=19456,t=2,p=1$JMxPlvrpKZMg7wS3JStlYA$1kqDoke1ZxhCPQkwRJrHB5IHz7XfAVZd/Pylgv6/Bhg',
     '{"title": "Lab manager"}', now() - interval '1 day',
     now() - interval '85 days', now() - interval '1 day'),
    ('b0000002-0000-4000-8000-000000000003', 'b0000001-0000-4000-8000-000000000001',
     'isla.murphy@globex.example', 'Isla Murphy', 'MEMBER', 'ACTIVE',
     '$argon2id$v=19$m=19456,t=2,p=1$tuP/yuI815cMXA3a/5eyVw$1RXrQ5MtX4mQCNb0ju7tJEnr6b4zQkYmSnmxlQEy6nc',
     '{"group": "structural biology"}', now() - interval '6 days',
     now() - interval '60 days', now() - interval '6 days'),
    ('b0000002-0000-4000-8000-000000000004', 'b0000001-0000-4000-8000-000000000001',
     'jonas.berg@globex.example', 'Jonas Berg', 'GUEST', 'SUSPENDED',
     '$argon2id$v=19$m=19456,t=2,p=1$Evpg3/dARwdh7/3jSLuRJA$FVnozuUxinohwSm1rsgUURlNdqjBFmRvTdLXjA9hd6k',
     '{"company": "Visiting researcher"}', now() - interval '50 days',
     now() - interval '70 days', now() - interval '45 days'),
    ('b0000002-0000-4000-8000-000000000005', 'b0000001-0000-4000-8000-000000000001',
     'kavya.iyer@globex.example', 'Kavya Iyer', 'MEMBER', 'ACTIVE',
     '$argon2id$v=19$m=19456,t=2,p=1$VQrD6HnLy0/Iw+IO4yw4lw$9sUlC5U12QXapr0IRwfq5WW8XMeV7uCUGhnTD7984Ck',
     '{"group": "bioinformatics"}', now() - interval '12 hours',
     now() - interval '30 days', now() - interval '12 hours')
ON CONFLICT DO NOTHING;

INSERT INTO public.licenses (id, organization_id, name, key_prefix, key_digest, tier, status,
                             seats, machine_bound, lease_seconds, features, starts_at,
                             expires_at, metadata, created_at, updated_at)
SELECT v.id::uuid, v.organization_id::uuid, v.name, left(v.license_key, 12),
       sha256(convert_to(v.license_key, 'UTF8')), v.tier::public.license_tier,
       v.status::public.license_status, v.seats, v.machine_bound,
       -- a floating license (not machine-bound) always has a lease: an hour here
       CASE WHEN v.machine_bound THEN NULL ELSE 3600 END, v.features::text[],
       now() + v.starts_in::interval, now() + v.expires_in::interval, v.metadata::jsonb,
       now() + v.created_in::interval, now() + v.created_in::interval
  FROM (VALUES
    -- Acme Robotics
    ('a0000003-0000-4000-8000-000000000001', 'a0000001-0000-4000-8000-000000000001',
     'Free license', 'cdt_dev_acme_free_0000000000000001', 'FREE', 'ACTIVE', 1, true,
     '{}', '-120 days', NULL, '{}', '-120 days'),
    ('a0000003-0000-4000-8000-000000000002', 'a0000001-0000-4000-8000-000000000001',
     'Robotics team', 'cdt_dev_acme_pro_0000000000000001', 'PRO', 'ACTIVE', 10, true,
     '{cloud_sync,priority_support,offline_validation}', '-60 days', '365 days',
     '{"purchase_order": "PO-2024-0117"}', '-60 days'),
    ('a0000003-0000-4000-8000-000000000003', 'a0000001-0000-4000-8000-000000000001',
     'Factory floor', 'cdt_dev_acme_ent_0000000000000001', 'ENTERPRISE', 'ACTIVE', 250, false,
     '{cloud_sync,priority_support,offline_validation,sso,audit_export}', '-45 days', NULL,
     '{"contract": "ENT-ACME-001", "site": "Plant 3"}', '-45 days'),
    ('a0000003-0000-4000-8000-000000000004', 'a0000001-0000-4000-8000-000000000001',
     'Legacy PRO (2023)', 'cdt_dev_acme_pro_0000000000000002', 'PRO', 'ACTIVE', 5, true,
     '{cloud_sync}', '-400 days', '-35 days', '{"renewal": "declined"}', '-400 days'),
    -- Globex Research
    ('b0000003-0000-4000-8000-000000000001', 'b0000001-0000-4000-8000-000000000001',
     'Free license', 'cdt_dev_globex_free_0000000000000001', 'FREE', 'ACTIVE', 1, true,
     '{}', '-90 days', NULL, '{}', '-90 days'),
    ('b0000003-0000-4000-8000-000000000002', 'b0000001-0000-4000-8000-000000000001',
     'Wet lab', 'cdt_dev_globex_pro_0000000000000001', 'PRO', 'SUSPENDED', 5, true,
     '{cloud_sync,priority_support}', '-80 days', '285 days',
     '{"suspension_reason": "invoice overdue"}', '-80 days'),
    ('b0000003-0000-4000-8000-000000000003', 'b0000001-0000-4000-8000-000000000001',
     'Research cluster', 'cdt_dev_globex_ent_0000000000000001', 'ENTERPRISE', 'ACTIVE', 500,
     true, '{cloud_sync,priority_support,offline_validation,sso}', '-75 days', '730 days',
     '{"contract": "ENT-GLOBEX-007"}', '-75 days'),
    ('b0000003-0000-4000-8000-000000000004', 'b0000001-0000-4000-8000-000000000001',
     'Pilot (revoked)', 'cdt_dev_globex_pro_0000000000000002', 'PRO', 'REVOKED', 2, true,
     '{cloud_sync}', '-88 days', '277 days', '{"revocation_reason": "key leaked"}',
     '-88 days')
  ) AS v (id, organization_id, name, license_key, tier, status, seats, machine_bound,
          features, starts_in, expires_in, metadata, created_in)
ON CONFLICT DO NOTHING;

INSERT INTO public.license_activations (id, organization_id, license_id, fingerprint_digest,
                                        hostname, activated_at, last_seen_at, deactivated_at,
                                        deactivation_reason, metadata, created_at, updated_at)
SELECT v.id::uuid, v.organization_id::uuid, v.license_id::uuid,
       sha256(convert_to(v.fingerprint, 'UTF8')), v.hostname,
       now() + v.activated_in::interval, now() + v.seen_in::interval,
       now() + v.deactivated_in::interval,
       CASE WHEN v.deactivated_in IS NOT NULL THEN 'deactivated' END, v.metadata::jsonb,
       now() + v.activated_in::interval, now() + v.seen_in::interval
  FROM (VALUES
    ('a0000004-0000-4000-8000-000000000001', 'a0000001-0000-4000-8000-000000000001',
     'a0000003-0000-4000-8000-000000000002', 'dev-fingerprint-acme-workstation-01',
     'acme-ws-01.lab.acme.example', '-58 days', '-2 hours', NULL, '{"os": "linux"}'),
    ('a0000004-0000-4000-8000-000000000002', 'a0000001-0000-4000-8000-000000000001',
     'a0000003-0000-4000-8000-000000000002', 'dev-fingerprint-acme-laptop-chloe',
     'chloe-laptop', '-30 days', '-1 day', NULL, '{"os": "macos"}'),
    ('a0000004-0000-4000-8000-000000000003', 'a0000001-0000-4000-8000-000000000001',
     'a0000003-0000-4000-8000-000000000002', 'dev-fingerprint-acme-laptop-dmitri',
     'dmitri-laptop', '-50 days', '-31 days', '-30 days', '{"os": "windows"}'),
    ('a0000004-0000-4000-8000-000000000004', 'a0000001-0000-4000-8000-000000000001',
     'a0000003-0000-4000-8000-000000000003', 'dev-fingerprint-acme-plc-gateway-07',
     'plant3-gw-07', '-44 days', '-10 minutes', NULL, '{"os": "linux", "site": "Plant 3"}'),
    ('b0000004-0000-4000-8000-000000000001', 'b0000001-0000-4000-8000-000000000001',
     'b0000003-0000-4000-8000-000000000003', 'dev-fingerprint-globex-hpc-node-01',
     'hpc-node-01.globex.example', '-74 days', '-1 hour', NULL, '{"os": "linux"}'),
    ('b0000004-0000-4000-8000-000000000002', 'b0000001-0000-4000-8000-000000000001',
     'b0000003-0000-4000-8000-000000000003', 'dev-fingerprint-globex-hpc-node-02',
     'hpc-node-02.globex.example', '-74 days', '-1 hour', NULL, '{"os": "linux"}'),
    ('b0000004-0000-4000-8000-000000000003', 'b0000001-0000-4000-8000-000000000001',
     'b0000003-0000-4000-8000-000000000001', 'dev-fingerprint-globex-laptop-isla',
     'isla-mbp', '-55 days', '-6 days', NULL, '{"os": "macos"}')
  ) AS v (id, organization_id, license_id, fingerprint, hostname, activated_in, seen_in,
          deactivated_in, metadata)
ON CONFLICT DO NOTHING;

INSERT INTO public.projects (id, organization_id, name, description, status, created_by,
                             metadata, created_at, updated_at, deleted_at)
SELECT v.id::uuid, v.organization_id::uuid, v.name, v.description,
       v.status::public.project_status, v.created_by::uuid, v.metadata::jsonb,
       now() + v.created_in::interval, now() + v.updated_in::interval,
       now() + v.deleted_in::interval
  FROM (VALUES
    ('a0000005-0000-4000-8000-000000000001', 'a0000001-0000-4000-8000-000000000001',
     'Warehouse picker arm', 'Six-axis arm that picks mixed SKUs from totes.', 'ACTIVE',
     'a0000002-0000-4000-8000-000000000003', '{"repo": "git@acme.example:arm/picker.git"}',
     '-80 days', '-3 hours', NULL),
    ('a0000005-0000-4000-8000-000000000002', 'a0000001-0000-4000-8000-000000000001',
     'Vision pipeline', 'Camera calibration and object detection for the picker.', 'ACTIVE',
     'a0000002-0000-4000-8000-000000000002', '{"priority": "high"}',
     '-70 days', '-2 days', NULL),
    ('a0000005-0000-4000-8000-000000000003', 'a0000001-0000-4000-8000-000000000001',
     'Firmware 2.0', 'Motor controller firmware rewrite (shipped).', 'ARCHIVED',
     'a0000002-0000-4000-8000-000000000001', '{"release": "2.0.3"}',
     '-115 days', '-20 days', NULL),
    ('a0000005-0000-4000-8000-000000000004', 'a0000001-0000-4000-8000-000000000001',
     'Old prototype', NULL, 'ACTIVE',
     'a0000002-0000-4000-8000-000000000003', '{}',
     '-99 days', '-50 days', '-50 days'),
    ('b0000005-0000-4000-8000-000000000001', 'b0000001-0000-4000-8000-000000000001',
     'Protein folding study', 'Folding simulations for the enzyme panel.', 'ACTIVE',
     'b0000002-0000-4000-8000-000000000003', '{"grant": "NIH-R01-0042"}',
     '-58 days', '-6 days', NULL),
    ('b0000005-0000-4000-8000-000000000002', 'b0000001-0000-4000-8000-000000000001',
     'Lab notebook', 'Shared electronic lab notebook.', 'ACTIVE',
     'b0000002-0000-4000-8000-000000000002', '{}',
     '-84 days', '-1 day', NULL),
    ('b0000005-0000-4000-8000-000000000003', 'b0000001-0000-4000-8000-000000000001',
     'Grant report 2024', 'Annual report data and figures.', 'ARCHIVED',
     'b0000002-0000-4000-8000-000000000001', '{"year": 2024}',
     '-89 days', '-40 days', NULL)
  ) AS v (id, organization_id, name, description, status, created_by, metadata, created_in,
          updated_in, deleted_in)
ON CONFLICT DO NOTHING;

INSERT INTO public.audit_log (id, organization_id, actor_id, action, target_type, target_id,
                              detail, request_id, created_at)
SELECT v.id::uuid, v.organization_id::uuid, v.actor_id::uuid, v.action, v.target_type,
       v.target_id::uuid, v.detail::jsonb, v.request_id, now() + v.created_in::interval
  FROM (VALUES
    ('a0000006-0000-4000-8000-000000000001', 'a0000001-0000-4000-8000-000000000001',
     'a0000002-0000-4000-8000-000000000001', 'organization.created', 'organization',
     'a0000001-0000-4000-8000-000000000001', '{"name": "Acme Robotics"}', 'seed-req-a01',
     '-120 days'),
    ('a0000006-0000-4000-8000-000000000002', 'a0000001-0000-4000-8000-000000000001',
     'a0000002-0000-4000-8000-000000000001', 'user.created', 'user',
     'a0000002-0000-4000-8000-000000000002', '{"role": "ADMIN"}', 'seed-req-a02',
     '-110 days'),
    ('a0000006-0000-4000-8000-000000000003', 'a0000001-0000-4000-8000-000000000001',
     'a0000002-0000-4000-8000-000000000002', 'project.created', 'project',
     'a0000005-0000-4000-8000-000000000002', '{"name": "Vision pipeline"}', 'seed-req-a03',
     '-70 days'),
    ('a0000006-0000-4000-8000-000000000004', 'a0000001-0000-4000-8000-000000000001',
     'a0000002-0000-4000-8000-000000000002', 'user.suspended', 'user',
     'a0000002-0000-4000-8000-000000000004', '{"reason": "contract ended"}', 'seed-req-a04',
     '-30 days'),
    ('a0000006-0000-4000-8000-000000000005', 'a0000001-0000-4000-8000-000000000001',
     NULL, 'license.expired', 'license',
     'a0000003-0000-4000-8000-000000000004', '{"expired_by": "system"}', NULL,
     '-35 days'),
    ('b0000006-0000-4000-8000-000000000001', 'b0000001-0000-4000-8000-000000000001',
     'b0000002-0000-4000-8000-000000000001', 'organization.created', 'organization',
     'b0000001-0000-4000-8000-000000000001', '{"name": "Globex Research"}', 'seed-req-b01',
     '-90 days'),
    ('b0000006-0000-4000-8000-000000000002', 'b0000001-0000-4000-8000-000000000001',
     'b0000002-0000-4000-8000-000000000001', 'user.role_changed', 'user',
     'b0000002-0000-4000-8000-000000000002', '{"from": "MEMBER", "to": "ADMIN"}',
     'seed-req-b02', '-80 days'),
    ('b0000006-0000-4000-8000-000000000003', 'b0000001-0000-4000-8000-000000000001',
     'b0000002-0000-4000-8000-000000000003', 'project.created', 'project',
     'b0000005-0000-4000-8000-000000000001', '{"name": "Protein folding study"}',
     'seed-req-b03', '-58 days')
  ) AS v (id, organization_id, actor_id, action, target_type, target_id, detail, request_id,
          created_in)
ON CONFLICT DO NOTHING;
