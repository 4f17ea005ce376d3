DROP TABLE public.projects;
DROP TABLE public.licenses;
ALTER TABLE public.organizations DROP CONSTRAINT organizations_owner_fkey;
DROP TABLE public.users;
DROP TABLE public.organizations;
DROP FUNCTION app.text_items_valid(text[], integer);
DROP FUNCTION app.touch_updated_at();
