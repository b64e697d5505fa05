"""Built-in task plugins, shipped inside the package as `sae_bench.tasks`.

One home per task: a module (`reconstruction.py`) or, when a task has helpers or data, a folder
holding all of them (`probing/`, `downstream_lm_eval/`, `maxact_repro/`), its data found beside
its code. Each registers its tasks with `@sae_bench.register_task`. The registry imports every
module here; a module that fails to import is an error, never a silently missing task.
"""
