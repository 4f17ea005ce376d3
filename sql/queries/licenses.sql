-- Licenses: the caller's organization's licenses, validation by key, and the operator
-- commands (coditect-cloud license ..., run as coditect_system).
-- seats_used counts active activations (license_activations_org_license_active_idx).

-- name: list_licenses_first
select l.id, l.organization_id, l.name, l.key_prefix, l.tier, l.status, l.seats,
       (select count(*)::int
          from license_activations as a
         where a.organization_id = l.organization_id
           and a.license_id = l.id
           and a.deactivated_at is null) as seats_used,
       l.machine_bound, l.features, l.starts_at, l.expires_at, l.metadata, l.created_at,
       l.updated_at
  from licenses as l
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
           and a.deactivated_at is null) as seats_used,
       l.machine_bound, l.features, l.starts_at, l.expires_at, l.metadata, l.created_at,
       l.updated_at
  from licenses as l
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
           and a.deactivated_at is null) as seats_used,
       l.machine_bound, l.features, l.starts_at, l.expires_at, l.metadata, l.created_at,
       l.updated_at
  from licenses as l
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
              features, starts_at, expires_at, metadata, created_at, updated_at
)
select u.id, u.organization_id, u.name, u.key_prefix, u.tier, u.status, u.seats,
       (select count(*)::int
          from license_activations as a
         where a.organization_id = u.organization_id
           and a.license_id = u.id
           and a.deactivated_at is null) as seats_used,
       u.machine_bound, u.features, u.starts_at, u.expires_at, u.metadata, u.created_at,
       u.updated_at
  from updated as u

-- name: validate_license
-- One round trip: checks, seat and last_seen_at (sql/migrations/0008_validate_license).
select code, checked_at, license_id, organization_id, tier, status, seats, seats_used,
       machine_bound, features, starts_at, expires_at, organization_suspended,
       activation_id, activated_at, last_seen_at, activation_new
  from pretenant.validate_license(:key_digest, :fingerprint_digest, :hostname,
                                  :seen_granularity)

-- name: admin_find_organization
-- Operator commands (coditect_system, BYPASSRLS): the only way to issue a license or to
-- change its tier, seats, status or dates.
select id, name, slug
  from organizations
 where (id::text = :organization or slug = :organization)
   and deleted_at is null

-- name: admin_issue_license
insert into licenses (organization_id, name, key_prefix, key_digest, tier, seats,
                      machine_bound, features, starts_at, expires_at, metadata)
values (:organization_id, :name, :key_prefix, :key_digest, :tier, :seats, :machine_bound,
        :features, :starts_at, :expires_at, :metadata)
returning id

-- name: admin_lock_license
-- Locks the license as validate_license does before it takes a seat, so seats_used is exact
-- until the transaction ends.
select l.id, l.organization_id, l.name, l.status, l.tier, l.seats, l.features, l.starts_at,
       l.expires_at,
       (select count(*)::int
          from license_activations as a
         where a.organization_id = l.organization_id
           and a.license_id = l.id
           and a.deactivated_at is null) as seats_used
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
-- A null leaves its column as it is; the expiry changes only with :set_expiry (null is a
-- value there: perpetual).
update licenses
   set name = coalesce(:name, name),
       tier = coalesce(:tier::public.license_tier, tier),
       seats = coalesce(:seats, seats),
       features = coalesce(:features::text[], features),
       expires_at = case when :set_expiry then :expires_at::timestamptz else expires_at end
 where id = :license_id
   and deleted_at is null

-- name: admin_get_license
select l.id, l.organization_id, l.name, l.key_prefix, l.tier, l.status, l.seats,
       (select count(*)::int
          from license_activations as a
         where a.organization_id = l.organization_id
           and a.license_id = l.id
           and a.deactivated_at is null) as seats_used,
       l.machine_bound, l.features, l.starts_at, l.expires_at, l.metadata, l.created_at,
       l.updated_at
  from licenses as l
 where l.id = :license_id
   and l.deleted_at is null
