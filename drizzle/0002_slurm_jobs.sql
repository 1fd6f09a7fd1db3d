CREATE TABLE `slurm_jobs` (
	`execution_id` text NOT NULL,
	`job_id` text NOT NULL,
	`submission` integer NOT NULL,
	`script` text NOT NULL,
	`partition` text,
	`state` text NOT NULL,
	`reason` text,
	`node_list` text,
	`exit_code` integer,
	`signal` integer,
	`restarts` integer DEFAULT 0 NOT NULL,
	`submitted_at` integer NOT NULL,
	`started_at` integer,
	`ended_at` integer,
	PRIMARY KEY(`execution_id`, `job_id`),
	FOREIGN KEY (`execution_id`) REFERENCES `executions`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `slurm_jobs_job_idx` ON `slurm_jobs` (`job_id`);--> statement-breakpoint
CREATE INDEX `slurm_jobs_state_idx` ON `slurm_jobs` (`state`);