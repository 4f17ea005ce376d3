-- Licenses: the caller's organization's licenses, validation by key, and the operator
-- commands (coditect-cloud license ..., run as coditect_system).
-- seats_used counts the machines holding a seat as app.holds_seat defines it: active
-- activations whose lease (if the license has one) has not expired
-- (license_activations_org_license_active_idx).

-- name: list_licenses_first
select l.id, l.organization_id, l.name, l.key_prefix, l.tier, l.status, l.seats,
       (select count(*)::int
          from license_activations as a
         where a.organization_id = l.organization_id
           and a.license_id = l.id
           and app.holds_seat(a.deactivated_at, a.last_seen_at, l.lease_seconds)
       ) as seats_used,
       l.machine_bound, l.features, l.starts_at, l.expires_at, l.lease_seconds,
       coalesce(l.activation_limit, t.activation_limit) as activation_limit,
       coalesce(l.deactivation_limit, t.deactivation_limit) as deactivation_limit,
       coalesce(l.churn_window_seconds, t.churn_window_seconds) as churn_window_seconds,
       l.metadata, l.created_at, l.updated_at
  from licenses as l
  join license_tiers as t on t.tier = l.tier
 where l.organization_id = :organization_id
   and l.deleted_at is null
 order by l.created_at desc, l.id desc
 limit :limit

-- name: list_licenses_after
select l.id, l.organization_id, l.name, l.key_prefix, l.tier, l.status, l.seats,
       (select count(*)::int
          from license_activations as a
         where a.organization_id = l.organization_id
           and a.license_id = l.id
           and app.holds_seat(a.deactivated_at, a.last_seen_at, l.lease_seconds)
       ) as seats_used,
       l.machine_bound, l.features, l.starts_at, l.expires_at, l.lease_seconds,
       coalesce(l.activation_limit, t.activation_limit) as activation_limit,
       coalesce(l.deactivation_limit, t.deactivation_limit) as deactivation_limit,
       coalesce(l.churn_window_seconds, t.churn_window_seconds) as churn_window_seconds,
       l.metadata, l.created_at, l.updated_at
  from licenses as l
  join license_tiers as t on t.tier = l.tier
 where l.organization_id = :organization_id
   and l.deleted_at is null
   and (l.created_at, l.id) < (:after_created_at, :after_id)
 order by l.created_at desc, l.id desc
 limit :limit

-- name: get_license
select l.id, l.organization_id, l.name, l.key_prefix, l.tier, l.status, l.seats,
       (select count(*)::int
          from license_activations as a
         where a.organization_id = l.organization_id
           and a.license_id = l.id
           and app.holds_seat(a.deactivated_at, a.last_seen_at, l.lease_seconds)
       ) as seats_used,
       l.machine_bound, l.features, l.starts_at, l.expires_at, l.lease_seconds,
       coalesce(l.activation_limit, t.activation_limit) as activation_limit,
       coalesce(l.deactivation_limit, t.deactivation_limit) as deactivation_limit,
       coalesce(l.churn_window_seconds, t.churn_window_seconds) as churn_window_seconds,
       l.metadata, l.created_at, l.updated_at
  from licenses as l
  join license_tiers as t on t.tier = l.tier
 where l.organization_id = :organization_id
   and l.id = :license_id
   and l.deleted_at is null

-- name: update_license
-- Only what a tenant may change: name and metadata.
with updated as (
    update licenses
       set name = coalesce(:name, name),
           metadata = coalesce(:metadata, metadata)
     where organization_id = :organization_id
       and id = :license_id
       and deleted_at is null
    returning id, organization_id, name, key_prefix, tier, status, seats, machine_bound,
              features, starts_at, expires_at, lease_seconds, activation_limit,
              deactivation_limit, churn_window_seconds, metadata, created_at, updated_at
)
select u.id, u.organization_id, u.name, u.key_prefix, u.tier, u.status, u.seats,
       (select count(*)::int
          from license_activations as a
         where a.organization_id = u.organization_id
           and a.license_id = u.id
           and app.holds_seat(a.deactivated_at, a.last_seen_at, u.lease_seconds)
       ) as seats_used,
       u.machine_bound, u.features, u.starts_at, u.expires_at, u.lease_seconds,
       coalesce(u.activation_limit, t.activation_limit) as activation_limit,
       coalesce(u.deactivation_limit, t.deactivation_limit) as deactivation_limit,
       coalesce(u.churn_window_seconds, t.churn_window_seconds) as churn_window_seconds,
       u.metadata, u.created_at, u.updated_at
  from updated as u
  join license_tiers as t on t.tier = u.tier

-- name: validate_license
-- One round trip: checks, seat, lease and churn (sql/functions/pretenant.validate_license.sql).
select code, checked_at, license_id, organization_id, tier, status, seats, seats_used,
       machine_bound, features, starts_at, expires_at, organization_suspended, lease_seconds,
       activation_limit, churn_window_seconds, activation_id, activated_at, last_seen_at,
       activation_new
  from pretenant.validate_license(:key_digest, :fingerprint_digest, :hostname,
                                  :seen_granularity, :client_ip, :request_id)

-- name: deactivate_machine_by_key
-- A client frees its own seat (sql/functions/pretenant.deactivate_machine.sql).
select code, checked_at, license_id, organization_id, tier, status, seats, seats_used,
       machine_bound, features, expires_at, lease_seconds, deactivation_limit,
       churn_window_seconds, machine_id, activated_at, deactivated_at
  from pretenant.deactivate_machine(:key_digest, :fingerprint_digest, :client_ip, :request_id)

-- name: list_license_machines_first
-- A license's machines, newest first by first activation; holds_seat and released_reason
-- as validation decides them (a lease that expired frees the seat even before it is
-- recorded).
select a.id, a.license_id, a.hostname,
       left(encode(a.fingerprint_digest, 'hex'), 8) as fingerprint_label,
       a.activated_at, a.last_seen_at,
       app.holds_seat(a.deactivated_at, a.last_seen_at, l.lease_seconds) as holds_seat,
       case when a.deactivated_at is not null then a.deactivation_reason
            when l.lease_seconds is not null
             and a.last_seen_at <= now() - make_interval(secs => l.lease_seconds)
                then 'lease_expired'
       end as released_reason,
       case when a.deactivated_at is not null then a.deactivated_at
            when l.lease_seconds is not null
             and a.last_seen_at <= now() - make_interval(secs => l.lease_seconds)
                then a.last_seen_at + make_interval(secs => l.lease_seconds)
       end as released_at,
       a.created_at
  from license_activations as a
  join licenses as l on l.organization_id = a.organization_id and l.id = a.license_id
 where a.organization_id = :organization_id
   and a.license_id = :license_id
 order by a.created_at desc, a.id desc
 limit :limit

-- name: list_license_machines_after
select a.id, a.license_id, a.hostname,
       left(encode(a.fingerprint_digest, 'hex'), 8) as fingerprint_label,
       a.activated_at, a.last_seen_at,
       app.holds_seat(a.deactivated_at, a.last_seen_at, l.lease_seconds) as holds_seat,
       case when a.deactivated_at is not null then a.deactivation_reason
            when l.lease_seconds is not null
             and a.last_seen_at <= now() - make_interval(secs => l.lease_seconds)
                then 'lease_expired'
       end as released_reason,
       case when a.deactivated_at is not null then a.deactivated_at
            when l.lease_seconds is not null
             and a.last_seen_at <= now() - make_interval(secs => l.lease_seconds)
                then a.last_seen_at + make_interval(secs => l.lease_seconds)
       end as released_at,
       a.created_at
  from license_activations as a
  join licenses as l on l.organization_id = a.organization_id and l.id = a.license_id
 where a.organization_id = :organization_id
   and a.license_id = :license_id
   and (a.created_at, a.id) < (:after_created_at, :after_id)
 order by a.created_at desc, a.id desc
 limit :limit

-- name: lock_license_for_machines
-- deactivateLicenseMachine: the same row lock validation takes before changing seats, with
-- the license's effective deactivation limit.
select l.id, l.lease_seconds,
       coalesce(l.deactivation_limit, t.deactivation_limit) as deactivation_limit,
       coalesce(l.churn_window_seconds, t.churn_window_seconds) as churn_window_seconds
  from licenses as l
  join license_tiers as t on t.tier = l.tier
 where l.organization_id = :organization_id
   and l.id = :license_id
   and l.deleted_at is null
   for update of l

-- name: count_recent_deactivations
-- The vendor's deactivations (by: operator, the operator API) are not the customer's churn.
select count(*)::int as recent
  from audit_log as g
 where g.organization_id = :organization_id
   and g.target_type = 'license'
   and g.target_id = :license_id
   and g.action = 'license.machine_deactivated'
   and g.created_at > now() - make_interval(secs => :churn_window_seconds)
   and g.detail ->> 'by' is distinct from 'operator'

-- name: get_license_machine
select a.id, a.license_id, a.hostname,
       left(encode(a.fingerprint_digest, 'hex'), 8) as fingerprint_label,
       a.activated_at, a.last_seen_at,
       app.holds_seat(a.deactivated_at, a.last_seen_at, l.lease_seconds) as holds_seat,
       case when a.deactivated_at is not null then a.deactivation_reason
            when l.lease_seconds is not null
             and a.last_seen_at <= now() - make_interval(secs => l.lease_seconds)
                then 'lease_expired'
       end as released_reason,
       case when a.deactivated_at is not null then a.deactivated_at
            when l.lease_seconds is not null
             and a.last_seen_at <= now() - make_interval(secs => l.lease_seconds)
                then a.last_seen_at + make_interval(secs => l.lease_seconds)
       end as released_at,
       a.created_at
  from license_activations as a
  join licenses as l on l.organization_id = a.organization_id and l.id = a.license_id
 where a.organization_id = :organization_id
   and a.license_id = :license_id
   and a.id = :machine_id

-- name: deactivate_license_machine
update license_activations
   set deactivated_at = now(),
       deactivation_reason = 'deactivated'
 where organization_id = :organization_id
   and license_id = :license_id
   and id = :machine_id
   and deactivated_at is null

-- name: admin_find_organization
-- Operator commands (coditect_system, BYPASSRLS): the only way to issue a license or to
-- change its tier, seats, status or dates.
select id, name, slug
  from organizations
 where (id::text = :organization or slug = :organization)
   and deleted_at is null

-- name: admin_issue_license
-- Null churn limits: the tier's (license_tiers).
insert into licenses (organization_id, name, key_prefix, key_digest, tier, seats,
                      machine_bound, lease_seconds, activation_limit, deactivation_limit,
                      churn_window_seconds, features, starts_at, expires_at, metadata)
values (:organization_id, :name, :key_prefix, :key_digest, :tier, :seats, :machine_bound,
        :lease_seconds, :activation_limit, :deactivation_limit, :churn_window_seconds,
        :features, :starts_at, :expires_at, :metadata)
returning id

-- name: admin_lock_license
-- Locks the license as validate_license does before it takes a seat, so seats_used is exact
-- until the transaction ends (a lease can only expire meanwhile, freeing a seat).
select l.id, l.organization_id, l.name, l.status, l.tier, l.seats, l.machine_bound,
       l.features, l.starts_at, l.expires_at, l.lease_seconds, l.activation_limit,
       l.deactivation_limit, l.churn_window_seconds,
       (select count(*)::int
          from license_activations as a
         where a.organization_id = l.organization_id
           and a.license_id = l.id
           and app.holds_seat(a.deactivated_at, a.last_seen_at, l.lease_seconds)
       ) as seats_used
  from licenses as l
 where l.id = :license_id
   and l.deleted_at is null
   for update of l

-- name: admin_set_status
update licenses
   set status = :status
 where id = :license_id
   and deleted_at is null

-- name: admin_set_terms
-- A null leaves its column as it is; the expiry, the lease and the churn limits change only
-- with their :set_* flag (null is a value there: perpetual, no lease, the tier's limit).
update licenses
   set name = coalesce(:name, name),
       tier = coalesce(:tier::public.license_tier, tier),
       seats = coalesce(:seats, seats),
       features = coalesce(:features::text[], features),
       expires_at = case when :set_expiry then :expires_at::timestamptz else expires_at end,
       lease_seconds = case when :set_lease then :lease_seconds::int else lease_seconds end,
       activation_limit = case when :set_activation_limit then :activation_limit::int
                               else activation_limit end,
       deactivation_limit = case when :set_deactivation_limit then :deactivation_limit::int
                                 else deactivation_limit end,
       churn_window_seconds = case when :set_churn_window then :churn_window_seconds::int
                                   else churn_window_seconds end
 where id = :license_id
   and deleted_at is null

-- name: admin_get_license
select l.id, l.organization_id, l.name, l.key_prefix, l.tier, l.status, l.seats,
       (select count(*)::int
          from license_activations as a
         where a.organization_id = l.organization_id
           and a.license_id = l.id
           and app.holds_seat(a.deactivated_at, a.last_seen_at, l.lease_seconds)
       ) as seats_used,
       l.machine_bound, l.features, l.starts_at, l.expires_at, l.lease_seconds,
       coalesce(l.activation_limit, t.activation_limit) as activation_limit,
       coalesce(l.deactivation_limit, t.deactivation_limit) as deactivation_limit,
       coalesce(l.churn_window_seconds, t.churn_window_seconds) as churn_window_seconds,
       l.metadata, l.created_at, l.updated_at
  from licenses as l
  join license_tiers as t on t.tier = l.tier
 where l.id = :license_id
   and l.deleted_at is null
