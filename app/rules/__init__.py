"""Domain rules that are neither HTTP nor SQL: roles, pagination cursors, audit entries, slugs."""
