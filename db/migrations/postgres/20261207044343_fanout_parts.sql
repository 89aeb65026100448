-- Create "fanouts" table
CREATE TABLE "fanouts" ("id" character varying NOT NULL, "app_id" character varying NOT NULL, "deliveries" bytea NOT NULL, "created_at" timestamptz NOT NULL, PRIMARY KEY ("id"));
