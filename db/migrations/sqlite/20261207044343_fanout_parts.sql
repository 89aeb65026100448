-- Create "fanouts" table
CREATE TABLE `fanouts` (`id` text NOT NULL, `app_id` text NOT NULL, `deliveries` blob NOT NULL, `created_at` datetime NOT NULL, PRIMARY KEY (`id`));
