CREATE TABLE `audits` (
	`id` text PRIMARY KEY NOT NULL,
	`target` text NOT NULL,
	`pipeline` text,
	`status` text NOT NULL,
	`started_at` integer NOT NULL,
	`duration_ms` integer NOT NULL,
	`report` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `audits_pipeline_idx` ON `audits` (`pipeline`,`started_at`);--> statement-breakpoint
CREATE TABLE `pins` (
	`id` text PRIMARY KEY NOT NULL,
	`execution_id` text,
	`artifact_id` text,
	`target` text NOT NULL,
	`note` text,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`execution_id`) REFERENCES `executions`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`artifact_id`) REFERENCES `artifacts`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `pins_execution_idx` ON `pins` (`execution_id`);--> statement-breakpoint
CREATE INDEX `pins_artifact_idx` ON `pins` (`artifact_id`);