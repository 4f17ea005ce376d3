-- Schemas for the helper functions and the pre-tenant functions, and the six enums.
--
--   app        RLS helper functions (tenant context) and small utilities; owned by
--              coditect_owner. The API role gets USAGE only.
--   pretenant  SECURITY DEFINER functions for what must happen before a tenant is known
--              (signup, login, refresh, license lookup). The API role gets USAGE only.
-- gen_random_uuid() is built in since PostgreSQL 13: no extension is needed.

CREATE SCHEMA app AUTHORIZATION coditect_owner;
CREATE SCHEMA pretenant AUTHORIZATION coditect_owner;
REVOKE ALL ON SCHEMA app FROM PUBLIC;
REVOKE ALL ON SCHEMA pretenant FROM PUBLIC;

CREATE TYPE public.organization_status AS ENUM ('ACTIVE', 'SUSPENDED');
-- Declared from most to least powerful; app.role_at_least() ranks roles explicitly anyway.
CREATE TYPE public.user_role AS ENUM ('OWNER', 'ADMIN', 'MEMBER', 'GUEST');
CREATE TYPE public.user_status AS ENUM ('ACTIVE', 'INVITED', 'SUSPENDED');
CREATE TYPE public.license_tier AS ENUM ('FREE', 'PRO', 'ENTERPRISE');
-- Expiry is not a status: it is computed from licenses.expires_at.
CREATE TYPE public.license_status AS ENUM ('ACTIVE', 'SUSPENDED', 'REVOKED');
CREATE TYPE public.project_status AS ENUM ('ACTIVE', 'ARCHIVED');
