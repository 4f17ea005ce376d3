-- Signup, login, refresh and logout: the pre-tenant functions, and the caller's own session.

-- name: signup
select organization_id, user_id, license_id, session_id
  from pretenant.signup(:email, :password_hash, :full_name, :organization_name, :slug,
                        :license_key_digest, :license_key_prefix, :refresh_digest,
                        :session_expires_at, :user_agent, :ip)

-- name: find_login
select user_id, organization_id, password_hash, user_status, organization_live
  from pretenant.find_login(:email)

-- name: open_session
select pretenant.open_session(:user_id, :refresh_digest, :expires_at, :user_agent, :ip) as session_id

-- name: set_password_hash
select pretenant.set_password_hash(:user_id, :old_hash, :new_hash) as updated

-- name: rotate_refresh
select outcome, session_id, user_id, organization_id
  from pretenant.rotate_refresh(:old_digest, :new_digest, make_interval(secs => :grace_seconds))

-- name: set_tenant
-- Signup knows its tenant only after creating it: enter it as its new owner.
select app.set_tenant(:organization_id, :user_id, 'OWNER')

-- name: end_session
update sessions
   set revoked_at = now(), revoked_reason = 'logout'
 where organization_id = :organization_id
   and id = :session_id
   and revoked_at is null

-- name: organization_tier
-- Sizes the caller's rate limit (a token claim); never used to authorize anything.
select pretenant.organization_tier(:organization_id) as tier

-- name: list_sessions_first
-- The caller's own live sessions (RLS would show an ADMIN everyone's: filtered by user here).
select id, created_at, last_used_at, expires_at, host(ip) as client_address, user_agent,
       id = :session_id as current
  from sessions
 where organization_id = :organization_id
   and user_id = :user_id
   and revoked_at is null
   and expires_at > now()
 order by created_at desc, id desc
 limit :limit

-- name: list_sessions_after
select id, created_at, last_used_at, expires_at, host(ip) as client_address, user_agent,
       id = :session_id as current
  from sessions
 where organization_id = :organization_id
   and user_id = :user_id
   and revoked_at is null
   and expires_at > now()
   and (created_at, id) < (:after_created_at, :after_id)
 order by created_at desc, id desc
 limit :limit

-- name: revoke_session
-- One of the caller's own live sessions; another user's id ends nothing (404).
update sessions
   set revoked_at = now(), revoked_reason = 'revoked_by_user'
 where organization_id = :organization_id
   and user_id = :user_id
   and id = :session_id
   and revoked_at is null
   and expires_at > now()

-- name: end_all_sessions
update sessions
   set revoked_at = now(), revoked_reason = :reason
 where organization_id = :organization_id
   and user_id = :user_id
   and revoked_at is null

-- name: end_other_sessions
update sessions
   set revoked_at = now(), revoked_reason = :reason
 where organization_id = :organization_id
   and user_id = :user_id
   and id <> :session_id
   and revoked_at is null

-- name: get_password_hash
select password_hash
  from users
 where organization_id = :organization_id
   and id = :user_id
   and deleted_at is null

-- name: change_password_hash
-- Compare-and-set: a concurrent change of the same password is not overwritten.
update users
   set password_hash = :new_hash
 where organization_id = :organization_id
   and id = :user_id
   and password_hash = :old_hash
   and deleted_at is null

-- name: request_password_reset
select pretenant.request_password_reset(:email, :token_digest, :expires_at, :subject, :body,
                                        :max_recent, make_interval(secs => :window_seconds))
       as queued

-- name: reset_password
select user_id, organization_id
  from pretenant.reset_password(:token_digest, :new_hash, :request_id)

-- name: accept_invitation
select user_id, organization_id, session_id
  from pretenant.accept_invitation(:token_digest, :password_hash, :refresh_digest, :expires_at,
                                   :user_agent, :ip, :request_id)
