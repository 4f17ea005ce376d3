-- Users of the caller's organization.

-- name: list_users_first
select id, organization_id, email, full_name, role, status, metadata, last_login_at,
       created_at, updated_at
  from users
 where organization_id = :organization_id
   and deleted_at is null
 order by created_at desc, id desc
 limit :limit

-- name: list_users_after
select id, organization_id, email, full_name, role, status, metadata, last_login_at,
       created_at, updated_at
  from users
 where organization_id = :organization_id
   and deleted_at is null
   and (created_at, id) < (:after_created_at, :after_id)
 order by created_at desc, id desc
 limit :limit

-- name: get_user
select id, organization_id, email, full_name, role, status, metadata, last_login_at,
       created_at, updated_at
  from users
 where organization_id = :organization_id
   and id = :user_id
   and deleted_at is null

-- name: create_user
insert into users (organization_id, email, full_name, role, password_hash, metadata)
values (:organization_id, :email, :full_name, :role, :password_hash, :metadata)
returning id, organization_id, email, full_name, role, status, metadata, last_login_at,
          created_at, updated_at

-- name: find_user
-- Existence and rank of a user, before deciding whether the caller may change it.
select id, role, status
  from users
 where organization_id = :organization_id
   and id = :user_id
   and deleted_at is null

-- name: lock_user
-- The target row, locked so concurrent role changes cannot both pass the last-owner check.
select id, role, status
  from users
 where organization_id = :organization_id
   and id = :user_id
   and deleted_at is null
   for update

-- name: count_live_owners
select count(*) as owners
  from users
 where organization_id = :organization_id
   and role = 'OWNER'
   and status = 'ACTIVE'
   and deleted_at is null

-- name: lock_owners
-- Serialises every change that could remove the last owner.
select id
  from users
 where organization_id = :organization_id
   and role = 'OWNER'
   and deleted_at is null
 order by id
   for update

-- name: update_user
update users
   set full_name = coalesce(:full_name, full_name),
       role = coalesce(:role, role),
       status = coalesce(:status, status),
       metadata = coalesce(:metadata, metadata)
 where organization_id = :organization_id
   and id = :user_id
   and deleted_at is null
returning id, organization_id, email, full_name, role, status, metadata, last_login_at,
          created_at, updated_at

-- name: delete_user
update users
   set deleted_at = now()
 where organization_id = :organization_id
   and id = :user_id
   and deleted_at is null

-- name: end_user_sessions
update sessions
   set revoked_at = now(), revoked_reason = :reason
 where organization_id = :organization_id
   and user_id = :user_id
   and revoked_at is null

-- name: release_ownership
-- organizations.owner_id names a live user or nobody (the FK's SET NULL only sees hard deletes).
update organizations
   set owner_id = null
 where id = :organization_id
   and owner_id = :user_id

-- name: create_invited_user
-- No password until the invitation is accepted.
insert into users (organization_id, email, full_name, role, status, password_hash, metadata)
values (:organization_id, :email, :full_name, :role, 'INVITED', null, :metadata)
returning id, organization_id, email, full_name, role, status, metadata, last_login_at,
          created_at, updated_at

-- name: create_invitation_token
insert into account_tokens (organization_id, user_id, purpose, token_digest, expires_at)
values (:organization_id, :user_id, 'invitation', :token_digest, :expires_at)

-- name: revoke_invitation_tokens
update account_tokens
   set revoked_at = now()
 where organization_id = :organization_id
   and user_id = :user_id
   and purpose = 'invitation'
   and used_at is null
   and revoked_at is null

-- name: queue_mail
-- Written in the transaction of the action that causes it; the outbox worker delivers it.
insert into outbox (organization_id, kind, recipient, subject, body)
values (:organization_id, :kind, :recipient, :subject, :body)

-- name: find_invited_user
select id, email, full_name, role, status
  from users
 where organization_id = :organization_id
   and id = :user_id
   and deleted_at is null
