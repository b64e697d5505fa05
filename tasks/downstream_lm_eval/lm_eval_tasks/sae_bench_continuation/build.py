"""Rebuild continuation.jsonl from the fixture evaluation corpus (deterministic: seed 0).

    python tasks/downstream_lm_eval/lm_eval_tasks/sae_bench_continuation/build.py

For every text of fixtures/corpus/eval.jsonl (100 texts, 10 categories): the context is its first
half (by whitespace words), the correct choice its second half, and three distractors are the
second halves of texts of *other* categories. Choices are shuffled; `label` is the correct index.
Not imported by sae_bench; it only writes the jsonl beside it.
"""

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parents[3] / "fixtures" / "corpus" / "eval.jsonl"
N_DISTRACTORS = 3


def halves(text: str) -> tuple[str, str]:
    words = text.split()
    cut = len(words) // 2
    return " ".join(words[:cut]), " ".join(words[cut:])


def build(corpus: Path = CORPUS, seed: int = 0) -> list[dict]:
    rows = [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    rng = random.Random(seed)
    out = []
    for row in rows:
        context, truth = halves(row["text"])
        others = [o for o in rows if o["category"] != row["category"]]
        choices = [truth] + [halves(o["text"])[1] for o in rng.sample(others, N_DISTRACTORS)]
        order = list(range(len(choices)))
        rng.shuffle(order)
        out.append({"context": context, "choices": [choices[k] for k in order], "label": order.index(0),
                    "category": row["category"]})
    return out


if __name__ == "__main__":
    lines = [json.dumps(doc, ensure_ascii=False) for doc in build()]
    (HERE / "continuation.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
