-- How a run was started: the pipeline as named, its --config settings, --gpus ids and executor settings, so that
-- audit need not re-parse its argv. Nullable: runs recorded before keep their argv, which audit reads instead.
ALTER TABLE `runs` ADD `pipeline_source` text;--> statement-breakpoint
ALTER TABLE `runs` ADD `config` text;--> statement-breakpoint
ALTER TABLE `runs` ADD `gpus` text;--> statement-breakpoint
ALTER TABLE `runs` ADD `executor_settings` text;