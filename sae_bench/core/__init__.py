"""What every part shares: what a task is (`task_api`), how tasks are found (`registry`) and listed
without importing them (`task_index`), the context a task receives (`context`), documented options
(`options`), metric rules and docs (`metric_directions`, `metric_docs`), errors, name checks and
progress output."""
