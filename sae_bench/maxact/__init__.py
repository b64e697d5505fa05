"""Max-activation examples in gemma-loupe's parquet schema: read/validate, build, reproduce.

`schema` reads and writes the parquet files, `tokens` maps stored token strings back to ids,
`build` produces such a file from a corpus, `repro` re-encodes the stored contexts and scores
them with `sae_bench.metrics.maxact`. Nothing here writes result records (the runner does).
"""

from sae_bench.maxact.schema import MaxActExample, MaxActTable, read_maxact, read_maxact_metadata, write_maxact

__all__ = ["MaxActExample", "MaxActTable", "read_maxact", "read_maxact_metadata", "write_maxact"]
