"""How documents (lists of token ids) become the fixed-length rows every task evaluates.

Two arrangements, named by `PACKING_MODES`:

- `document`: one document per row, truncated to `seq_len`, right-padded. What the row starts
  with is the caller's business (texts are tokenised with BOS; pre-tokenized ids are verbatim).
- `pack`: the peers' eval batches (SAELens's ActivationsStore and pretokenize runner, whose
  defaults SAEBench's core eval uses): the documents are read as one stream and cut into full rows
  of `seq_len` tokens; every row starts with BOS, and where one document ends and the next begins
  inside a row, one separator token (BOS, as SAELens's default `sequence_separator_token="bos"`)
  stands between them. A BOS or separator the document already starts with is not doubled. A
  document that runs past the end of a row continues in the next row, after that row's BOS. The
  last, partial row is dropped (full rows only, as the peers do).

Which positions count is decided afterwards by the same rule for both arrangements (see
`sae_bench.inputs.corpus`): BOS, EOS and pad are never kept, wherever they stand, so a separator inside
a packed row is seen by the model as context but never evaluated. Pure: lists of ints in, lists
of ints out; never tokenises, never reads files.
"""

from __future__ import annotations

DEFAULT_SEQ_LEN = 128  # tokens per row, BOS included, unless a run says otherwise
PACKING_MODES = ("document", "pack")


def packing_problem(value) -> str | None:
    """None for a known arrangement, else what is wrong (the check of every packing option)."""
    return None if value in PACKING_MODES else f"expected one of {', '.join(PACKING_MODES)}"


def document_rows(documents: list[list[int]], seq_len: int, *, bos: int | None = None) -> list[list[int]]:
    """One row per document, truncated to seq_len; with `bos`, put first where it is not already."""
    rows = []
    for ids in documents:
        if bos is not None and (not ids or ids[0] != bos):
            ids = [bos, *ids]
        rows.append(list(ids[:seq_len]))
    return rows


def pack_rows(documents: list[list[int]], seq_len: int, *, bos: int | None,
              separator: int | None) -> list[list[int]]:
    """Full rows of exactly seq_len tokens: BOS first, `separator` between documents (see module doc)."""
    if seq_len < 2:
        raise ValueError("seq_len must be at least 2")
    rows: list[list[int]] = []
    row: list[int] = []
    for ids in documents:
        pos = 0
        while pos < len(ids):
            if not row:  # a new row: BOS first, unless the document already puts it there
                row = [] if bos is None or ids[pos] == bos else [bos]
            elif pos == 0 and separator is not None and ids[0] != separator:
                row.append(separator)  # a document boundary inside a row
            take = seq_len - len(row)
            row.extend(ids[pos:pos + take])
            pos += take
            if len(row) == seq_len:
                rows.append(row)
                row = []
    return rows  # the partial last row is dropped
