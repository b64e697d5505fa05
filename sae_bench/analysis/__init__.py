"""Readers of result records: side-by-side comparison (`compare`, `compare_report`), the regression
gate (`gate`), the pairing both use (`pairing`) and the terminal table (`summary`)."""
