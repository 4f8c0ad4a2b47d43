-- Exact reverse of up.sql: it changed no row, so only its triggers go.
DROP TRIGGER accounts_guard_active_id_update;
DROP TRIGGER accounts_guard_active_replace;
DROP TRIGGER active_identity_empty_means_none_on_insert;
DROP TRIGGER active_identity_empty_means_none_on_update;
