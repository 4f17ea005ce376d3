DROP FUNCTION IF EXISTS pretenant.organization_tier(uuid);
