-- Create "api_keys" table
CREATE TABLE `api_keys` (`id` text NOT NULL, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL, `admin` bool NOT NULL DEFAULT (false), `prefix` text NOT NULL, `token_hash` blob NOT NULL, `last_used_at` datetime NULL, `revoked_at` datetime NULL, `app_id` text NOT NULL, PRIMARY KEY (`id`), CONSTRAINT `api_keys_apps_api_keys` FOREIGN KEY (`app_id`) REFERENCES `apps` (`id`) ON DELETE NO ACTION);
-- Create index "api_keys_token_hash_key" to table: "api_keys"
CREATE UNIQUE INDEX `api_keys_token_hash_key` ON `api_keys` (`token_hash`);
-- Create index "apikey_app_id_created_at" to table: "api_keys"
CREATE INDEX `apikey_app_id_created_at` ON `api_keys` (`app_id`, `created_at`);
-- Create "apps" table
CREATE TABLE `apps` (`id` text NOT NULL, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL, `accept_unknown_event_types` bool NOT NULL DEFAULT (false), PRIMARY KEY (`id`));
-- Create "attempts" table
CREATE TABLE `attempts` (`id` text NOT NULL, `attempt_number` integer NOT NULL, `trigger` text NOT NULL, `succeeded` bool NOT NULL, `request_url` text NOT NULL, `request_headers` json NOT NULL, `response_status` integer NULL, `response_headers` json NULL, `response_body` text NOT NULL DEFAULT (''), `response_body_truncated` bool NOT NULL DEFAULT (false), `duration_ms` integer NOT NULL, `error_message` text NULL, `started_at` datetime NOT NULL, `completed_at` datetime NOT NULL, `app_id` text NOT NULL, `delivery_id` text NOT NULL, `endpoint_id` text NOT NULL, PRIMARY KEY (`id`), CONSTRAINT `attempts_apps_attempts` FOREIGN KEY (`app_id`) REFERENCES `apps` (`id`) ON DELETE NO ACTION, CONSTRAINT `attempts_deliveries_attempts` FOREIGN KEY (`delivery_id`) REFERENCES `deliveries` (`id`) ON DELETE NO ACTION, CONSTRAINT `attempts_endpoints_attempts` FOREIGN KEY (`endpoint_id`) REFERENCES `endpoints` (`id`) ON DELETE NO ACTION);
-- Create index "attempt_delivery_id_attempt_number" to table: "attempts"
CREATE INDEX `attempt_delivery_id_attempt_number` ON `attempts` (`delivery_id`, `attempt_number`);
-- Create "deliveries" table
CREATE TABLE `deliveries` (`id` text NOT NULL, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `event_type` text NOT NULL, `status` text NOT NULL DEFAULT ('PENDING'), `attempt_count` integer NOT NULL DEFAULT (0), `next_attempt_at` datetime NULL, `next_trigger` text NOT NULL DEFAULT ('SCHEDULED'), `claimed_by` text NULL, `last_attempt_at` datetime NULL, `last_response_status` integer NULL, `last_error` text NULL, `completed_at` datetime NULL, `app_id` text NOT NULL, `endpoint_id` text NOT NULL, `event_id` text NOT NULL, PRIMARY KEY (`id`), CONSTRAINT `deliveries_apps_deliveries` FOREIGN KEY (`app_id`) REFERENCES `apps` (`id`) ON DELETE NO ACTION, CONSTRAINT `deliveries_endpoints_deliveries` FOREIGN KEY (`endpoint_id`) REFERENCES `endpoints` (`id`) ON DELETE NO ACTION, CONSTRAINT `deliveries_events_deliveries` FOREIGN KEY (`event_id`) REFERENCES `events` (`id`) ON DELETE NO ACTION);
-- Create index "delivery_due" to table: "deliveries"
CREATE INDEX `delivery_due` ON `deliveries` (`endpoint_id`, `next_attempt_at`) WHERE next_attempt_at IS NOT NULL;
-- Create index "delivery_app_id_created_at" to table: "deliveries"
CREATE INDEX `delivery_app_id_created_at` ON `deliveries` (`app_id`, `created_at`);
-- Create index "delivery_endpoint_id_created_at" to table: "deliveries"
CREATE INDEX `delivery_endpoint_id_created_at` ON `deliveries` (`endpoint_id`, `created_at`);
-- Create index "delivery_event_id" to table: "deliveries"
CREATE INDEX `delivery_event_id` ON `deliveries` (`event_id`);
-- Create "endpoints" table
CREATE TABLE `endpoints` (`id` text NOT NULL, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `deleted_at` datetime NULL, `name` text NOT NULL, `description` text NOT NULL DEFAULT (''), `url` text NOT NULL, `event_types` json NOT NULL, `auth` json NOT NULL, `headers` json NULL, `retry_policy` json NOT NULL, `timeout` integer NOT NULL DEFAULT (10000000000), `is_active` bool NOT NULL DEFAULT (true), `disabled_reason` text NULL, `disabled_at` datetime NULL, `secret` text NOT NULL, `previous_secret` text NULL, `previous_secret_expires_at` datetime NULL, `consecutive_failures` integer NOT NULL DEFAULT (0), `failure_count` integer NOT NULL DEFAULT (0), `success_count` integer NOT NULL DEFAULT (0), `last_success_at` datetime NULL, `last_failure_at` datetime NULL, `app_id` text NOT NULL, PRIMARY KEY (`id`), CONSTRAINT `endpoints_apps_endpoints` FOREIGN KEY (`app_id`) REFERENCES `apps` (`id`) ON DELETE NO ACTION);
-- Create index "endpoint_app_id_created_at" to table: "endpoints"
CREATE INDEX `endpoint_app_id_created_at` ON `endpoints` (`app_id`, `created_at`);
-- Create "events" table
CREATE TABLE `events` (`id` text NOT NULL, `event_type` text NOT NULL, `payload` json NOT NULL, `idempotency_key` text NULL, `delivery_count` integer NOT NULL DEFAULT (0), `created_at` datetime NOT NULL, `app_id` text NOT NULL, PRIMARY KEY (`id`), CONSTRAINT `events_apps_events` FOREIGN KEY (`app_id`) REFERENCES `apps` (`id`) ON DELETE NO ACTION);
-- Create index "event_app_id_idempotency_key" to table: "events"
CREATE UNIQUE INDEX `event_app_id_idempotency_key` ON `events` (`app_id`, `idempotency_key`);
-- Create index "event_app_id_created_at" to table: "events"
CREATE INDEX `event_app_id_created_at` ON `events` (`app_id`, `created_at`);
-- Create index "event_app_id_event_type_created_at" to table: "events"
CREATE INDEX `event_app_id_event_type_created_at` ON `events` (`app_id`, `event_type`, `created_at`);
-- Create "event_types" table
CREATE TABLE `event_types` (`id` text NOT NULL, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL, `description` text NOT NULL DEFAULT (''), `example` json NULL, `json_schema` json NULL, `built_in` bool NOT NULL DEFAULT (false), `archived_at` datetime NULL, `app_id` text NOT NULL, PRIMARY KEY (`id`), CONSTRAINT `event_types_apps_event_types` FOREIGN KEY (`app_id`) REFERENCES `apps` (`id`) ON DELETE NO ACTION);
-- Create index "eventtype_app_id_name" to table: "event_types"
CREATE UNIQUE INDEX `eventtype_app_id_name` ON `event_types` (`app_id`, `name`);
