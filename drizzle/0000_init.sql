CREATE TABLE `artifacts` (
	`id` text PRIMARY KEY NOT NULL,
	`execution_id` text NOT NULL,
	`name` text NOT NULL,
	`path` text NOT NULL,
	`kind` text NOT NULL,
	`hash` text NOT NULL,
	`size` integer NOT NULL,
	`created_at` integer NOT NULL,
	`collected_at` integer,
	FOREIGN KEY (`execution_id`) REFERENCES `executions`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `artifacts_execution_name_idx` ON `artifacts` (`execution_id`,`name`);--> statement-breakpoint
CREATE INDEX `artifacts_hash_idx` ON `artifacts` (`hash`);--> statement-breakpoint
CREATE INDEX `artifacts_path_idx` ON `artifacts` (`path`);--> statement-breakpoint
CREATE TABLE `environments` (
	`id` text PRIMARY KEY NOT NULL,
	`git_commit` text,
	`git_dirty` integer,
	`node_version` text NOT NULL,
	`platform` text NOT NULL,
	`host` text NOT NULL,
	`compilers` text NOT NULL,
	`gpus` text NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `execution_inputs` (
	`execution_id` text NOT NULL,
	`name` text NOT NULL,
	`artifact_id` text NOT NULL,
	PRIMARY KEY(`execution_id`, `name`),
	FOREIGN KEY (`execution_id`) REFERENCES `executions`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`artifact_id`) REFERENCES `artifacts`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `execution_inputs_artifact_idx` ON `execution_inputs` (`artifact_id`);--> statement-breakpoint
CREATE TABLE `executions` (
	`id` text PRIMARY KEY NOT NULL,
	`run_id` text NOT NULL,
	`stage_id` text NOT NULL,
	`fingerprint` text NOT NULL,
	`version` text NOT NULL,
	`params` text NOT NULL,
	`input_hashes` text NOT NULL,
	`worker_hash` text,
	`status` text NOT NULL,
	`started_at` integer NOT NULL,
	`ended_at` integer,
	`duration_ms` integer,
	`exit_code` integer,
	`host` text NOT NULL,
	`executor` text NOT NULL,
	`worker_pid` integer,
	`log_path` text NOT NULL,
	`output_dir` text NOT NULL,
	`result` text,
	`error` text,
	`environment_id` text,
	`resumed_from` text,
	FOREIGN KEY (`run_id`) REFERENCES `runs`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`environment_id`) REFERENCES `environments`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `executions_fingerprint_idx` ON `executions` (`fingerprint`,`status`);--> statement-breakpoint
CREATE INDEX `executions_stage_idx` ON `executions` (`stage_id`,`started_at`);--> statement-breakpoint
CREATE INDEX `executions_run_idx` ON `executions` (`run_id`);--> statement-breakpoint
CREATE TABLE `file_stats` (
	`path` text PRIMARY KEY NOT NULL,
	`dev` text NOT NULL,
	`ino` text NOT NULL,
	`size` integer NOT NULL,
	`mtime_ns` text NOT NULL,
	`hash` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `metrics` (
	`execution_id` text NOT NULL,
	`name` text NOT NULL,
	`step` integer NOT NULL,
	`value` real,
	FOREIGN KEY (`execution_id`) REFERENCES `executions`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `metrics_execution_idx` ON `metrics` (`execution_id`,`name`,`step`);--> statement-breakpoint
CREATE TABLE `runs` (
	`id` text PRIMARY KEY NOT NULL,
	`pipeline` text NOT NULL,
	`preset` text,
	`overrides` text NOT NULL,
	`argv` text NOT NULL,
	`executor` text NOT NULL,
	`host` text NOT NULL,
	`pid` integer NOT NULL,
	`status` text NOT NULL,
	`started_at` integer NOT NULL,
	`ended_at` integer,
	`summary` text
);
--> statement-breakpoint
CREATE INDEX `runs_pipeline_idx` ON `runs` (`pipeline`,`started_at`);