"""Built-in task plugins, shipped inside the package as `sae_bench.tasks`.

Each module registers its tasks with `@sae_bench.registry.register_task`. The registry imports
every module here; a module that fails to import is an error, never a silently missing task.
"""
