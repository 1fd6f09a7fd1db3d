-- A metric has one value per (execution, name, step); a requeued attempt that re-reported steps left
-- duplicates, of which the last one written is kept.
DELETE FROM `metrics` WHERE `rowid` NOT IN (SELECT max(`rowid`) FROM `metrics` GROUP BY `execution_id`, `name`, `step`);--> statement-breakpoint
DROP INDEX `metrics_execution_idx`;--> statement-breakpoint
CREATE UNIQUE INDEX `metrics_execution_name_step_idx` ON `metrics` (`execution_id`,`name`,`step`);--> statement-breakpoint
ALTER TABLE `executions` ADD `worker_identity` text;
