DROP TABLE public.spent_refresh_tokens;
