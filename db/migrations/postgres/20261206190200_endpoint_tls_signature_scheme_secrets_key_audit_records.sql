-- Modify "endpoints" table
ALTER TABLE "endpoints" ADD COLUMN "signature_scheme" character varying NOT NULL DEFAULT 'HMAC_SHA256', ADD COLUMN "public_key" character varying NULL, ADD COLUMN "tls" jsonb NULL, ADD COLUMN "certificate_expires_at" timestamptz NULL, ADD COLUMN "certificate_warned_at" timestamptz NULL, ADD COLUMN "secrets_key" character varying NOT NULL DEFAULT '';
-- Create index "endpoint_certificate_expires_at" to table: "endpoints"
CREATE INDEX "endpoint_certificate_expires_at" ON "endpoints" ("certificate_expires_at");
-- Create "audit_records" table
CREATE TABLE "audit_records" ("id" character varying NOT NULL, "created_at" timestamptz NOT NULL, "actor_kind" character varying NOT NULL, "actor_id" character varying NOT NULL, "actor_name" character varying NOT NULL DEFAULT '', "action" character varying NOT NULL, "target_type" character varying NOT NULL, "target_id" character varying NOT NULL, "changes" jsonb NULL, "remote_addr" character varying NOT NULL DEFAULT '', "request_id" character varying NOT NULL DEFAULT '', "app_id" character varying NOT NULL, PRIMARY KEY ("id"), CONSTRAINT "audit_records_apps_audit_records" FOREIGN KEY ("app_id") REFERENCES "apps" ("id") ON UPDATE NO ACTION ON DELETE NO ACTION);
-- Create index "auditrecord_app_id_actor_id_created_at" to table: "audit_records"
CREATE INDEX "auditrecord_app_id_actor_id_created_at" ON "audit_records" ("app_id", "actor_id", "created_at");
-- Create index "auditrecord_app_id_created_at" to table: "audit_records"
CREATE INDEX "auditrecord_app_id_created_at" ON "audit_records" ("app_id", "created_at");
-- Create index "auditrecord_app_id_target_id_created_at" to table: "audit_records"
CREATE INDEX "auditrecord_app_id_target_id_created_at" ON "audit_records" ("app_id", "target_id", "created_at");
