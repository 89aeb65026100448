-- Written by hand from the plan make migration printed: the plan rebuilt
-- endpoints to add columns; plain constant defaults add them in place.
-- Existing secrets stay as they were (secrets_key '' marks a row not yet
-- encrypted): SQL cannot encrypt, so herald encrypts such rows with the
-- key ring when it starts (and herald keys rotate does too).
-- Add columns "signature_scheme", "public_key", "tls", "certificate_expires_at", "certificate_warned_at" and "secrets_key" to table: "endpoints"
ALTER TABLE `endpoints` ADD COLUMN `signature_scheme` text NOT NULL DEFAULT 'HMAC_SHA256';
ALTER TABLE `endpoints` ADD COLUMN `public_key` text NULL;
ALTER TABLE `endpoints` ADD COLUMN `tls` json NULL;
ALTER TABLE `endpoints` ADD COLUMN `certificate_expires_at` datetime NULL;
ALTER TABLE `endpoints` ADD COLUMN `certificate_warned_at` datetime NULL;
ALTER TABLE `endpoints` ADD COLUMN `secrets_key` text NOT NULL DEFAULT '';
-- Create index "endpoint_certificate_expires_at" to table: "endpoints"
CREATE INDEX `endpoint_certificate_expires_at` ON `endpoints` (`certificate_expires_at`);
-- Create "audit_records" table
CREATE TABLE `audit_records` (`id` text NOT NULL, `created_at` datetime NOT NULL, `actor_kind` text NOT NULL, `actor_id` text NOT NULL, `actor_name` text NOT NULL DEFAULT (''), `action` text NOT NULL, `target_type` text NOT NULL, `target_id` text NOT NULL, `changes` json NULL, `remote_addr` text NOT NULL DEFAULT (''), `request_id` text NOT NULL DEFAULT (''), `app_id` text NOT NULL, PRIMARY KEY (`id`), CONSTRAINT `audit_records_apps_audit_records` FOREIGN KEY (`app_id`) REFERENCES `apps` (`id`) ON DELETE NO ACTION);
-- Create index "auditrecord_app_id_created_at" to table: "audit_records"
CREATE INDEX `auditrecord_app_id_created_at` ON `audit_records` (`app_id`, `created_at`);
-- Create index "auditrecord_app_id_actor_id_created_at" to table: "audit_records"
CREATE INDEX `auditrecord_app_id_actor_id_created_at` ON `audit_records` (`app_id`, `actor_id`, `created_at`);
-- Create index "auditrecord_app_id_target_id_created_at" to table: "audit_records"
CREATE INDEX `auditrecord_app_id_target_id_created_at` ON `audit_records` (`app_id`, `target_id`, `created_at`);
