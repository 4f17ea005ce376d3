-- The caller's own organization (RLS shows no other).

-- name: get_organization
select id, name, slug, status, owner_id, metadata, created_at, updated_at
  from organizations
 where id = :organization_id
   and deleted_at is null

-- name: update_organization
update organizations
   set name = coalesce(:name, name),
       slug = coalesce(:slug, slug),
       metadata = coalesce(:metadata, metadata)
 where id = :organization_id
   and deleted_at is null
returning id, name, slug, status, owner_id, metadata, created_at, updated_at

-- name: delete_organization
update organizations
   set deleted_at = now()
 where id = :organization_id
   and deleted_at is null

-- name: end_organization_sessions
update sessions
   set revoked_at = now(), revoked_reason = 'organization_deleted'
 where organization_id = :organization_id
   and revoked_at is null

-- name: delete_organization_users
-- The organization's users go with it, so their emails are free for a new signup.
update users
   set deleted_at = now()
 where organization_id = :organization_id
   and deleted_at is null
