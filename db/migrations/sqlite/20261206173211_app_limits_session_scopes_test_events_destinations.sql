-- Written by hand from the plan make migration printed: SQLite cannot add
-- a column whose default is in parentheses, so the plan rebuilt events and
-- endpoints (a copy of every event); a plain constant default adds the
-- columns in place.
-- Add column "test" to table: "events"
ALTER TABLE `events` ADD COLUMN `test` bool NOT NULL DEFAULT false;
-- Add column "session_scopes" to table: "api_keys"
ALTER TABLE `api_keys` ADD COLUMN `session_scopes` json NULL;
-- Add column "limits" to table: "apps"
ALTER TABLE `apps` ADD COLUMN `limits` json NULL;
-- Add columns "type", "destination" and "transformation" to table: "endpoints"
ALTER TABLE `endpoints` ADD COLUMN `type` text NOT NULL DEFAULT 'HTTP';
ALTER TABLE `endpoints` ADD COLUMN `destination` json NULL;
ALTER TABLE `endpoints` ADD COLUMN `transformation` text NULL;
