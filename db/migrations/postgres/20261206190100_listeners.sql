-- Modify "endpoints" table
ALTER TABLE "endpoints" ADD COLUMN "listener_ttl" bigint NULL, ADD COLUMN "listener_session" character varying NULL, ADD COLUMN "listener_seen_at" timestamptz NULL, ADD COLUMN "listener_expires_at" timestamptz NULL;
-- Create index "endpoint_listener_expires_at" to table: "endpoints"
CREATE INDEX "endpoint_listener_expires_at" ON "endpoints" ("listener_expires_at");
