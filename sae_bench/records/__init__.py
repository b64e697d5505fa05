"""The result record: its format and validation (`results`), how it names local files
(`provenance`), and the tidy table of a results folder (`results_table`)."""
