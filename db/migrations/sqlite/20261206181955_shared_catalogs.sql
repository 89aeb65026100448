-- Disable the enforcement of foreign-keys constraints
PRAGMA foreign_keys = off;
-- Create "new_event_types" table
CREATE TABLE `new_event_types` (`id` text NOT NULL, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL, `description` text NOT NULL DEFAULT (''), `example` json NULL, `json_schema` json NULL, `built_in` bool NOT NULL DEFAULT (false), `archived_at` datetime NULL, `app_id` text NULL, `catalog_id` text NULL, PRIMARY KEY (`id`), CONSTRAINT `event_types_apps_event_types` FOREIGN KEY (`app_id`) REFERENCES `apps` (`id`) ON DELETE SET NULL, CONSTRAINT `event_types_catalogs_event_types` FOREIGN KEY (`catalog_id`) REFERENCES `catalogs` (`id`) ON DELETE CASCADE);
-- Copy rows from old table "event_types" to new temporary table "new_event_types"
INSERT INTO `new_event_types` (`id`, `created_at`, `updated_at`, `name`, `description`, `example`, `json_schema`, `built_in`, `archived_at`, `app_id`) SELECT `id`, `created_at`, `updated_at`, `name`, `description`, `example`, `json_schema`, `built_in`, `archived_at`, `app_id` FROM `event_types`;
-- Drop "event_types" table after copying rows
DROP TABLE `event_types`;
-- Rename temporary table "new_event_types" to "event_types"
ALTER TABLE `new_event_types` RENAME TO `event_types`;
-- Create index "eventtype_app_id_name" to table: "event_types"
CREATE UNIQUE INDEX `eventtype_app_id_name` ON `event_types` (`app_id`, `name`);
-- Create index "eventtype_catalog_id_name" to table: "event_types"
CREATE UNIQUE INDEX `eventtype_catalog_id_name` ON `event_types` (`catalog_id`, `name`);
-- Add column "catalog_id" to table: "apps"
ALTER TABLE `apps` ADD COLUMN `catalog_id` text NULL CONSTRAINT `apps_catalogs_apps` REFERENCES `catalogs` (`id`) ON DELETE SET NULL;
-- Create "catalogs" table
CREATE TABLE `catalogs` (`id` text NOT NULL, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `name` text NOT NULL, `description` text NOT NULL DEFAULT (''), `is_default` bool NOT NULL DEFAULT (false), PRIMARY KEY (`id`));
-- Create index "catalogs_name_key" to table: "catalogs"
CREATE UNIQUE INDEX `catalogs_name_key` ON `catalogs` (`name`);
-- Enable back the enforcement of foreign-keys constraints
PRAGMA foreign_keys = on;
