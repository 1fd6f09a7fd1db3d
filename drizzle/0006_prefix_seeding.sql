CREATE TABLE `checkpoint_prefixes` (
	`artifact_id` text PRIMARY KEY NOT NULL,
	`family` text NOT NULL,
	`step` integer NOT NULL,
	`prefix` text NOT NULL,
	FOREIGN KEY (`artifact_id`) REFERENCES `artifacts`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `checkpoint_prefixes_family_idx` ON `checkpoint_prefixes` (`family`,`step`);--> statement-breakpoint
ALTER TABLE `executions` ADD `seeded_from` text;--> statement-breakpoint
ALTER TABLE `executions` ADD `seeded_step` integer;