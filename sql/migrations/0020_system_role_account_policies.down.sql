-- Back to 0019: coditect_system loses its policies on the account tables.

DROP POLICY outbox_system_update ON public.outbox;
DROP POLICY outbox_system_insert ON public.outbox;
DROP POLICY outbox_system_select ON public.outbox;

DROP POLICY account_tokens_system_update ON public.account_tokens;
DROP POLICY account_tokens_system_insert ON public.account_tokens;
DROP POLICY account_tokens_system_select ON public.account_tokens;

DROP POLICY spent_refresh_tokens_system_insert ON public.spent_refresh_tokens;
DROP POLICY spent_refresh_tokens_system_select ON public.spent_refresh_tokens;
