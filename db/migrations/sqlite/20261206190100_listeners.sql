-- Listeners (endpoints of type LISTENER held by a herald listen session):
-- their TTL, the session that holds them, and when they expire.
-- Add column "listener_ttl" to table: "endpoints"
ALTER TABLE `endpoints` ADD COLUMN `listener_ttl` integer NULL;
-- Add column "listener_session" to table: "endpoints"
ALTER TABLE `endpoints` ADD COLUMN `listener_session` text NULL;
-- Add column "listener_seen_at" to table: "endpoints"
ALTER TABLE `endpoints` ADD COLUMN `listener_seen_at` datetime NULL;
-- Add column "listener_expires_at" to table: "endpoints"
ALTER TABLE `endpoints` ADD COLUMN `listener_expires_at` datetime NULL;
-- Create index "endpoint_listener_expires_at" to table: "endpoints"
CREATE INDEX `endpoint_listener_expires_at` ON `endpoints` (`listener_expires_at`);
