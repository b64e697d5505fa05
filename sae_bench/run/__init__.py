"""One evaluation run: its data types and suite files (`config`), the orchestration (`runner`), the
per-site loop (`site_run`), what it writes (`run_records`), the plan of a sweep (`sweep_plan`), the
first-batch checks (`first_batch`) and data parallelism under torchrun (`distributed`)."""
