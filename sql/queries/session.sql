-- Statements every request runs before its own queries.

-- name: begin_request
-- First statement of every authenticated transaction: sets the tenant context
-- (transaction-local) and returns the caller's current role, or no row when the
-- session, user or organization is no longer live.
select role, status, email, full_name
  from app.begin_request(:organization_id, :user_id, :session_id)
