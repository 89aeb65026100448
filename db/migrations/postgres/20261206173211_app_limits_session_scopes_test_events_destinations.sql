-- Modify "api_keys" table
ALTER TABLE "api_keys" ADD COLUMN "session_scopes" jsonb NULL;
-- Modify "apps" table
ALTER TABLE "apps" ADD COLUMN "limits" jsonb NULL;
-- Modify "endpoints" table
ALTER TABLE "endpoints" ADD COLUMN "type" character varying NOT NULL DEFAULT 'HTTP', ADD COLUMN "destination" jsonb NULL, ADD COLUMN "transformation" text NULL;
-- Modify "events" table
ALTER TABLE "events" ADD COLUMN "test" boolean NOT NULL DEFAULT false;
