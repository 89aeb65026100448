-- Disable the enforcement of foreign-keys constraints
PRAGMA foreign_keys = off;
-- Create "new_api_keys" table
CREATE TABLE `new_api_keys` (`id` text NOT NULL, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL, `admin` bool NOT NULL DEFAULT (false), `prefix` text NOT NULL, `token_hash` blob NOT NULL, `kind` text NOT NULL DEFAULT ('API_KEY'), `scopes` json NULL, `expires_at` datetime NULL, `last_used_at` datetime NULL, `revoked_at` datetime NULL, `app_id` text NOT NULL, PRIMARY KEY (`id`), CONSTRAINT `api_keys_apps_api_keys` FOREIGN KEY (`app_id`) REFERENCES `apps` (`id`) ON DELETE NO ACTION);
-- Copy rows from old table "api_keys" to new temporary table "new_api_keys"
INSERT INTO `new_api_keys` (`id`, `created_at`, `updated_at`, `name`, `admin`, `prefix`, `token_hash`, `last_used_at`, `revoked_at`, `app_id`) SELECT `id`, `created_at`, `updated_at`, `name`, `admin`, `prefix`, `token_hash`, `last_used_at`, `revoked_at`, `app_id` FROM `api_keys`;
-- Drop "api_keys" table after copying rows
DROP TABLE `api_keys`;
-- Rename temporary table "new_api_keys" to "api_keys"
ALTER TABLE `new_api_keys` RENAME TO `api_keys`;
-- Create index "api_keys_token_hash_key" to table: "api_keys"
CREATE UNIQUE INDEX `api_keys_token_hash_key` ON `api_keys` (`token_hash`);
-- Create index "apikey_app_id_created_at" to table: "api_keys"
CREATE INDEX `apikey_app_id_created_at` ON `api_keys` (`app_id`, `created_at`);
-- Create index "apikey_app_id_kind_revoked_at" to table: "api_keys"
CREATE INDEX `apikey_app_id_kind_revoked_at` ON `api_keys` (`app_id`, `kind`, `revoked_at`);
-- Create index "apikey_kind_expires_at" to table: "api_keys"
CREATE INDEX `apikey_kind_expires_at` ON `api_keys` (`kind`, `expires_at`);
-- Create "new_apps" table
CREATE TABLE `new_apps` (`id` text NOT NULL, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL, `accept_unknown_event_types` bool NOT NULL DEFAULT (false), `portal_display_name` text NOT NULL DEFAULT (''), `portal_accent_color` text NOT NULL DEFAULT (''), `portal_theme` text NOT NULL DEFAULT ('AUTO'), `portal_allowed_origins` json NULL, `endpoints_version` integer NOT NULL DEFAULT (0), PRIMARY KEY (`id`));
-- Copy rows from old table "apps" to new temporary table "new_apps"
INSERT INTO `new_apps` (`id`, `created_at`, `updated_at`, `name`, `accept_unknown_event_types`) SELECT `id`, `created_at`, `updated_at`, `name`, `accept_unknown_event_types` FROM `apps`;
-- Drop "apps" table after copying rows
DROP TABLE `apps`;
-- Rename temporary table "new_apps" to "apps"
ALTER TABLE `new_apps` RENAME TO `apps`;
-- Create index "attempt_endpoint_id_completed_at" to table: "attempts"
CREATE INDEX `attempt_endpoint_id_completed_at` ON `attempts` (`endpoint_id`, `completed_at`);
-- Create "new_deliveries" table
CREATE TABLE `new_deliveries` (`id` text NOT NULL, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `event_type` text NOT NULL, `ordering_key` text NULL, `status` text NOT NULL DEFAULT ('PENDING'), `attempt_count` integer NOT NULL DEFAULT (0), `next_attempt_at` datetime NULL, `next_trigger` text NOT NULL DEFAULT ('SCHEDULED'), `claimed_by` text NULL, `last_attempt_at` datetime NULL, `last_response_status` integer NULL, `last_error` text NULL, `completed_at` datetime NULL, `app_id` text NOT NULL, `endpoint_id` text NOT NULL, `event_id` text NOT NULL, PRIMARY KEY (`id`), CONSTRAINT `deliveries_apps_deliveries` FOREIGN KEY (`app_id`) REFERENCES `apps` (`id`) ON DELETE NO ACTION, CONSTRAINT `deliveries_endpoints_deliveries` FOREIGN KEY (`endpoint_id`) REFERENCES `endpoints` (`id`) ON DELETE NO ACTION, CONSTRAINT `deliveries_events_deliveries` FOREIGN KEY (`event_id`) REFERENCES `events` (`id`) ON DELETE NO ACTION);
-- Copy rows from old table "deliveries" to new temporary table "new_deliveries"
INSERT INTO `new_deliveries` (`id`, `created_at`, `updated_at`, `event_type`, `status`, `attempt_count`, `next_attempt_at`, `next_trigger`, `claimed_by`, `last_attempt_at`, `last_response_status`, `last_error`, `completed_at`, `app_id`, `endpoint_id`, `event_id`) SELECT `id`, `created_at`, `updated_at`, `event_type`, `status`, `attempt_count`, `next_attempt_at`, `next_trigger`, `claimed_by`, `last_attempt_at`, `last_response_status`, `last_error`, `completed_at`, `app_id`, `endpoint_id`, `event_id` FROM `deliveries`;
-- Drop "deliveries" table after copying rows
DROP TABLE `deliveries`;
-- Rename temporary table "new_deliveries" to "deliveries"
ALTER TABLE `new_deliveries` RENAME TO `deliveries`;
-- Create index "delivery_due" to table: "deliveries"
CREATE INDEX `delivery_due` ON `deliveries` (`endpoint_id`, `next_attempt_at`) WHERE next_attempt_at IS NOT NULL;
-- Create index "delivery_order" to table: "deliveries"
CREATE INDEX `delivery_order` ON `deliveries` (`endpoint_id`, `ordering_key`, `created_at`, `id`) WHERE ordering_key IS NOT NULL AND next_attempt_at IS NOT NULL;
-- Create index "delivery_app_id_created_at" to table: "deliveries"
CREATE INDEX `delivery_app_id_created_at` ON `deliveries` (`app_id`, `created_at`);
-- Create index "delivery_endpoint_id_created_at" to table: "deliveries"
CREATE INDEX `delivery_endpoint_id_created_at` ON `deliveries` (`endpoint_id`, `created_at`);
-- Create index "delivery_event_id" to table: "deliveries"
CREATE INDEX `delivery_event_id` ON `deliveries` (`event_id`);
-- Create "new_endpoints" table
CREATE TABLE `new_endpoints` (`id` text NOT NULL, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `deleted_at` datetime NULL, `name` text NOT NULL, `description` text NOT NULL DEFAULT (''), `url` text NOT NULL, `event_types` json NOT NULL, `auth` json NOT NULL, `headers` json NULL, `retry_policy` json NOT NULL, `timeout` integer NOT NULL DEFAULT (10000000000), `ordering` text NOT NULL DEFAULT ('NONE'), `rate_limit` json NULL, `filter` json NULL, `paused_until` datetime NULL, `flow_owner` text NULL, `flow_owner_until` datetime NULL, `is_active` bool NOT NULL DEFAULT (true), `disabled_reason` text NULL, `disabled_at` datetime NULL, `secret` text NOT NULL, `previous_secret` text NULL, `previous_secret_expires_at` datetime NULL, `consecutive_failures` integer NOT NULL DEFAULT (0), `failure_count` integer NOT NULL DEFAULT (0), `success_count` integer NOT NULL DEFAULT (0), `last_success_at` datetime NULL, `last_failure_at` datetime NULL, `app_id` text NOT NULL, PRIMARY KEY (`id`), CONSTRAINT `endpoints_apps_endpoints` FOREIGN KEY (`app_id`) REFERENCES `apps` (`id`) ON DELETE NO ACTION);
-- Copy rows from old table "endpoints" to new temporary table "new_endpoints"
INSERT INTO `new_endpoints` (`id`, `created_at`, `updated_at`, `deleted_at`, `name`, `description`, `url`, `event_types`, `auth`, `headers`, `retry_policy`, `timeout`, `is_active`, `disabled_reason`, `disabled_at`, `secret`, `previous_secret`, `previous_secret_expires_at`, `consecutive_failures`, `failure_count`, `success_count`, `last_success_at`, `last_failure_at`, `app_id`) SELECT `id`, `created_at`, `updated_at`, `deleted_at`, `name`, `description`, `url`, `event_types`, `auth`, `headers`, `retry_policy`, `timeout`, `is_active`, `disabled_reason`, `disabled_at`, `secret`, `previous_secret`, `previous_secret_expires_at`, `consecutive_failures`, `failure_count`, `success_count`, `last_success_at`, `last_failure_at`, `app_id` FROM `endpoints`;
-- Drop "endpoints" table after copying rows
DROP TABLE `endpoints`;
-- Rename temporary table "new_endpoints" to "endpoints"
ALTER TABLE `new_endpoints` RENAME TO `endpoints`;
-- Create index "endpoint_app_id_created_at" to table: "endpoints"
CREATE INDEX `endpoint_app_id_created_at` ON `endpoints` (`app_id`, `created_at`);
-- Add column "ordering_key" to table: "events"
ALTER TABLE `events` ADD COLUMN `ordering_key` text NULL;
-- Add column "deliver_at" to table: "events"
ALTER TABLE `events` ADD COLUMN `deliver_at` datetime NULL;
-- Add column "trace_parent" to table: "events"
ALTER TABLE `events` ADD COLUMN `trace_parent` text NULL;
-- Create "delivery_stats" table
CREATE TABLE `delivery_stats` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `app_id` text NOT NULL, `endpoint_id` text NOT NULL DEFAULT (''), `resolution` integer NOT NULL, `bucket` integer NOT NULL, `attempts_succeeded` integer NOT NULL DEFAULT (0), `attempts_retryable` integer NOT NULL DEFAULT (0), `attempts_permanent` integer NOT NULL DEFAULT (0), `deliveries_succeeded` integer NOT NULL DEFAULT (0), `deliveries_failed` integer NOT NULL DEFAULT (0), `duration_ms` integer NOT NULL DEFAULT (0), `latency_00` integer NOT NULL DEFAULT (0), `latency_01` integer NOT NULL DEFAULT (0), `latency_02` integer NOT NULL DEFAULT (0), `latency_03` integer NOT NULL DEFAULT (0), `latency_04` integer NOT NULL DEFAULT (0), `latency_05` integer NOT NULL DEFAULT (0), `latency_06` integer NOT NULL DEFAULT (0), `latency_07` integer NOT NULL DEFAULT (0), `latency_08` integer NOT NULL DEFAULT (0), `latency_09` integer NOT NULL DEFAULT (0), `latency_10` integer NOT NULL DEFAULT (0), `latency_11` integer NOT NULL DEFAULT (0), `latency_12` integer NOT NULL DEFAULT (0), `latency_13` integer NOT NULL DEFAULT (0), `latency_14` integer NOT NULL DEFAULT (0), `latency_15` integer NOT NULL DEFAULT (0), `latency_16` integer NOT NULL DEFAULT (0), `latency_17` integer NOT NULL DEFAULT (0), `latency_18` integer NOT NULL DEFAULT (0), `latency_19` integer NOT NULL DEFAULT (0), `latency_20` integer NOT NULL DEFAULT (0), `latency_21` integer NOT NULL DEFAULT (0), `latency_22` integer NOT NULL DEFAULT (0), `latency_23` integer NOT NULL DEFAULT (0), `latency_24` integer NOT NULL DEFAULT (0), `latency_25` integer NOT NULL DEFAULT (0), `latency_26` integer NOT NULL DEFAULT (0), `latency_27` integer NOT NULL DEFAULT (0), `latency_28` integer NOT NULL DEFAULT (0), `latency_29` integer NOT NULL DEFAULT (0), `latency_30` integer NOT NULL DEFAULT (0), `latency_31` integer NOT NULL DEFAULT (0));
-- Create index "deliverystat_app_id_endpoint_id_resolution_bucket" to table: "delivery_stats"
CREATE UNIQUE INDEX `deliverystat_app_id_endpoint_id_resolution_bucket` ON `delivery_stats` (`app_id`, `endpoint_id`, `resolution`, `bucket`);
-- Create index "deliverystat_resolution_bucket" to table: "delivery_stats"
CREATE INDEX `deliverystat_resolution_bucket` ON `delivery_stats` (`resolution`, `bucket`);
-- Create "herald_schema_versions" as herald 8a13244 did: the lowest schema version a herald must know to use this database (see db/version.go)
CREATE TABLE herald_schema_versions (version integer PRIMARY KEY, applied_at TIMESTAMP NOT NULL);
-- Record schema version 1
INSERT INTO `herald_schema_versions` (`version`, `applied_at`) VALUES (1, strftime('%Y-%m-%d %H:%M:%f+00:00', 'now'));
-- Enable back the enforcement of foreign-keys constraints
PRAGMA foreign_keys = on;
