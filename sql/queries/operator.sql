-- The operator API and the operator-key CLI, run as coditect_system: operator keys, stored
-- idempotent results, the call log, and the lists across tenants.

-- name: find_operator_key
select id, name, scopes
  from operator.keys
 where key_digest = :key_digest
   and revoked_at is null

-- name: create_operator_key
insert into operator.keys (name, key_prefix, key_digest, scopes)
values (:name, :key_prefix, :key_digest, :scopes)
returning id, name, key_prefix, scopes, created_at, revoked_at,
          null::timestamptz as last_used_at

-- name: list_operator_keys
select k.id, k.name, k.key_prefix, k.scopes, k.created_at, k.revoked_at,
       (select max(c.created_at)
          from operator.calls as c
         where c.operator_key_id = k.id) as last_used_at
  from operator.keys as k
 order by k.created_at, k.id

-- name: revoke_operator_key
update operator.keys
   set revoked_at = now()
 where (id::text = :key or name = :key)
   and revoked_at is null
returning id, name, key_prefix, scopes, created_at, revoked_at

-- name: record_operator_call
insert into operator.calls (operator_key_id, operation, organization_id, target_id, request_id)
values (:operator_key_id, :operation, :organization_id, :target_id, :request_id)

-- name: claim_idempotency_key
-- The first request with a key inserts its row and holds it until it commits: a concurrent
-- retry waits here, then finds the stored result (or, if the first rolled back, claims the
-- key itself). A row older than the retention is taken over as if it were not there.
insert into operator.idempotency (operator_key_id, idempotency_key, fingerprint)
values (:operator_key_id, :idempotency_key, :fingerprint)
on conflict (operator_key_id, idempotency_key) do update
   set fingerprint = excluded.fingerprint,
       status = null,
       location = null,
       sealed_body = null,
       created_at = now()
 where operator.idempotency.created_at < now() - make_interval(secs => :retention_s)
returning true as claimed

-- name: stored_idempotent_result
select fingerprint, status, location, sealed_body
  from operator.idempotency
 where operator_key_id = :operator_key_id
   and idempotency_key = :idempotency_key

-- name: store_idempotent_result
update operator.idempotency
   set status = :status,
       location = :location,
       sealed_body = :sealed_body
 where operator_key_id = :operator_key_id
   and idempotency_key = :idempotency_key

-- name: list_operator_organizations_first
-- Every filter is optional: null matches everything.
select o.id, o.name, o.slug, o.status, o.owner_id, o.metadata, o.created_at, o.updated_at
  from organizations as o
 where o.deleted_at is null
   and (:slug::text is null or o.slug = :slug)
   and (:status::public.organization_status is null or o.status = :status)
 order by o.created_at desc, o.id desc
 limit :limit

-- name: list_operator_organizations_after
select o.id, o.name, o.slug, o.status, o.owner_id, o.metadata, o.created_at, o.updated_at
  from organizations as o
 where o.deleted_at is null
   and (:slug::text is null or o.slug = :slug)
   and (:status::public.organization_status is null or o.status = :status)
   and (o.created_at, o.id) < (:after_created_at, :after_id)
 order by o.created_at desc, o.id desc
 limit :limit

-- name: list_operator_licenses_first
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
 where l.deleted_at is null
   and (:organization_id::uuid is null or l.organization_id = :organization_id)
   and (:status::public.license_status is null or l.status = :status)
   and (:tier::public.license_tier is null or l.tier = :tier)
   and (:key_prefix::text is null or l.key_prefix = :key_prefix)
 order by l.created_at desc, l.id desc
 limit :limit

-- name: list_operator_licenses_after
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
 where l.deleted_at is null
   and (:organization_id::uuid is null or l.organization_id = :organization_id)
   and (:status::public.license_status is null or l.status = :status)
   and (:tier::public.license_tier is null or l.tier = :tier)
   and (:key_prefix::text is null or l.key_prefix = :key_prefix)
   and (l.created_at, l.id) < (:after_created_at, :after_id)
 order by l.created_at desc, l.id desc
 limit :limit
