-- Create "catalogs" table
CREATE TABLE "catalogs" ("id" character varying NOT NULL, "created_at" timestamptz NOT NULL, "updated_at" timestamptz NOT NULL, "name" character varying NOT NULL, "description" text NOT NULL DEFAULT '', "is_default" boolean NOT NULL DEFAULT false, PRIMARY KEY ("id"));
-- Create index "catalogs_name_key" to table: "catalogs"
CREATE UNIQUE INDEX "catalogs_name_key" ON "catalogs" ("name");
-- Modify "apps" table
ALTER TABLE "apps" ADD COLUMN "catalog_id" character varying NULL, ADD CONSTRAINT "apps_catalogs_apps" FOREIGN KEY ("catalog_id") REFERENCES "catalogs" ("id") ON UPDATE NO ACTION ON DELETE SET NULL;
-- Modify "event_types" table
ALTER TABLE "event_types" DROP CONSTRAINT "event_types_apps_event_types", ALTER COLUMN "app_id" DROP NOT NULL, ADD COLUMN "catalog_id" character varying NULL, ADD CONSTRAINT "event_types_apps_event_types" FOREIGN KEY ("app_id") REFERENCES "apps" ("id") ON UPDATE NO ACTION ON DELETE SET NULL, ADD CONSTRAINT "event_types_catalogs_event_types" FOREIGN KEY ("catalog_id") REFERENCES "catalogs" ("id") ON UPDATE NO ACTION ON DELETE CASCADE;
-- Create index "eventtype_catalog_id_name" to table: "event_types"
CREATE UNIQUE INDEX "eventtype_catalog_id_name" ON "event_types" ("catalog_id", "name");
