"""Prompt texts, one module per protocol and version; logic lives elsewhere.

A prompt module's `VERSION` goes into every cache key and every record, so editing a prompt's
wording must bump it (old cached answers then stop matching instead of being reused silently).
"""

from sae_bench.tasks.autointerp.prompts import delphi_v1, saebench_v1

EXPLAINERS = {"saebench_v1": saebench_v1}
SCORERS = {"saebench_v1": saebench_v1, "delphi_v1": delphi_v1}
