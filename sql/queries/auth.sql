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
