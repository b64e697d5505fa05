"""SAEBench 0.6.0's sparse-probing datasets: which texts of each class are drawn, reproduced.

Each dataset is read by its hub id: from a local copy `<data_dir>/<hub id>/` in the hub's own schema
(`train` and `test` files, `.parquet` or `.jsonl`; Europarl one folder per language-pair config,
GitHub code one `train` file), else through `datasets.load_dataset` when the hub is reachable.
Selection per dataset (n = train or test size; classes as SAEBench's `chosen_classes_per_dataset`):
- bias-in-bios class sets (`hard_text`, `profession`, `gender`) and Amazon categories (`text`,
  `category`, `rating`): per class, n/4 texts of each value of the second column, drawn with
  `DataFrame.sample(n/4, random_state=seed)` (both groups needed, each with n/4 rows);
- Amazon sentiment: n/2 per rating (1.0, 5.0); AG News (`text`, `label`): n/2 per label;
- Europarl (`translation`): the first n_train/2 + n_test/2 + 1 texts of each language from its
  pair config, shuffled with `random.seed(seed)`, split train/test;
- GitHub code (`code`, `language`): code longer than 534 characters, its first 150 characters
  dropped, until every language has more than n_train/2 + n_test/2, shuffled and split alike.
Too few rows for a class is a one-line `DataError` naming the dataset; a missing column too.
This module never tokenises and never runs a model.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path

from sae_bench.core.errors import DataError, InputError

DATASETS = (
    "LabHC/bias_in_bios_class_set1", "LabHC/bias_in_bios_class_set2", "LabHC/bias_in_bios_class_set3",
    "canrager/amazon_reviews_mcauley_1and5", "canrager/amazon_reviews_mcauley_1and5_sentiment",
    "codeparrot/github-code", "fancyzhx/ag_news", "Helsinki-NLP/europarl",
)
CLASSES = {
    "LabHC/bias_in_bios_class_set1": ["0", "1", "2", "6", "9"],
    "LabHC/bias_in_bios_class_set2": ["11", "13", "14", "18", "19"],
    "LabHC/bias_in_bios_class_set3": ["20", "21", "22", "25", "26"],
    "canrager/amazon_reviews_mcauley_1and5": ["1", "2", "3", "5", "6"],
    "canrager/amazon_reviews_mcauley_1and5_sentiment": ["1.0", "5.0"],
    "codeparrot/github-code": ["C", "Python", "HTML", "Java", "PHP"],
    "fancyzhx/ag_news": ["0", "1", "2", "3"],
    "Helsinki-NLP/europarl": ["en", "fr", "de", "es", "nl"],
}
EUROPARL_PAIRS = {"en": "en-fr", "fr": "fr-it", "de": "de-en", "es": "es-fr", "nl": "nl-pt"}
TWO_COLUMN = {"LabHC/bias_in_bios": ("hard_text", "profession", "gender"),
              "canrager/amazon_reviews_mcauley_1and5": ("text", "category", "rating")}
GITHUB_SKIP_CHARS, GITHUB_MIN_CHARS = 50 * 3, 128 * 3 + 50 * 3


def short_name(dataset: str) -> str:
    """The part name of a dataset in metric names: its hub id without the owner."""
    return dataset.split("/", 1)[1]


def _read_file(folder: Path, split: str):
    import pandas as pd

    for suffix in (".parquet", ".jsonl"):
        path = folder / f"{split}{suffix}"
        if path.is_file():
            try:
                return pd.read_parquet(path) if suffix == ".parquet" else pd.read_json(path, lines=True, dtype=False)
            except (OSError, ValueError) as exc:
                raise DataError(path, f"cannot read ({type(exc).__name__}: {str(exc).splitlines()[0][:80]})") from None
    return None


def load_split(data_dir: str | None, hub_id: str, split: str, config: str | None = None, from_hub: bool = True):
    """One split as a DataFrame: the local copy, else the hub (when allowed and reachable)."""
    if data_dir:
        folder = Path(data_dir) / hub_id / (config or "")
        frame = _read_file(folder, split)
        if frame is not None:
            return frame
    from sae_bench.models.loading import hub_offline

    if hub_offline() or not from_hub:
        raise InputError(hub_id, f"no local copy ({Path(data_dir or '.') / hub_id / (config or '')}/{split}.parquet "
                         "or .jsonl) and the hub is offline")
    try:
        import datasets

        return datasets.load_dataset(hub_id, config, split=split).to_pandas()
    except Exception as exc:  # no network, no such dataset, an old `datasets`: one line, not a traceback
        raise InputError(hub_id, f"cannot load {split} from the hub ({type(exc).__name__}: "
                                 f"{str(exc).splitlines()[0][:120] if str(exc) else ''}); give a local copy in data_dir") from None


def _need_columns(frame, columns, where: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(where, f"missing column(s) {', '.join(missing)} (have {', '.join(map(str, frame.columns))})")


def _sample(frame, n: int, seed: int, where: str, what: str) -> list[str]:
    if len(frame) < n:
        raise DataError(where, f"{what}: {len(frame)} rows, {n} needed")
    return frame.sample(n=n, random_state=seed)


def _two_column(frame, base: str, classes: list[str], n: int, seed: int, where: str) -> dict[str, list[str]]:
    text, column1, column2 = TWO_COLUMN[base]
    _need_columns(frame, (text, column1, column2), where)
    quadrant = n // 4
    out = {}
    for cls in classes:
        rows = frame[frame[column1].astype(str) == cls]
        groups = list(rows.groupby(column2))
        if len(groups) < 2:
            raise DataError(where, f"class {cls}: needs both values of {column2!r}, found {len(groups)}")
        texts = []
        for value, group in groups:
            texts.extend(_sample(group, quadrant, seed, where, f"class {cls}, {column2}={value}")[text].tolist())
        out[cls] = texts
    return out


def _per_label(frame, text: str, label: str, classes: list[str], n: int, seed: int, where: str,
               as_label=str) -> dict[str, list[str]]:
    _need_columns(frame, (text, label), where)
    out = {}
    for cls in classes:
        rows = frame[frame[label].map(as_label) == cls]
        out[cls] = _sample(rows, n, seed, where, f"class {cls}")[text].tolist()
    return out


def _shuffle_split(samples: dict[str, list[str]], classes, n_train: int, n_test: int, seed: int,
                   where: str) -> tuple[dict, dict]:
    rng = random.Random(seed)  # SAEBench: random.seed(seed) then the global generator; same draws
    train, test = {}, {}
    for cls in classes:
        texts = list(samples.get(cls, []))
        if len(texts) < n_train + n_test:
            raise DataError(where, f"class {cls}: {len(texts)} texts, {n_train + n_test} needed")
        rng.shuffle(texts)
        train[cls], test[cls] = texts[:n_train], texts[n_train:n_train + n_test]
    return train, test


def load_dataset_classes(dataset: str, data_dir: str | None, n_train: int, n_test: int, seed: int,
                         from_hub: bool = False) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(train, test): class -> texts, as SAEBench's `get_multi_label_train_test_data` + `filter_dataset`."""
    if dataset not in CLASSES:
        raise InputError("--task-option sparse_probing.datasets", f"unknown dataset {dataset!r} "
                         f"(SAEBench's: {', '.join(DATASETS)})")
    classes = CLASSES[dataset]
    where = f"{dataset} ({data_dir or 'hub'})"
    if "bias_in_bios" in dataset or dataset == "canrager/amazon_reviews_mcauley_1and5":
        base = dataset.split("_class_set")[0]
        return tuple(_two_column(load_split(data_dir, base, split, from_hub=from_hub), base, classes, n, seed, where)  # type: ignore
                     for split, n in (("train", n_train), ("test", n_test)))
    if dataset == "canrager/amazon_reviews_mcauley_1and5_sentiment":
        base = dataset.split("_sentiment")[0]
        return tuple(_per_label(load_split(data_dir, base, split, from_hub=from_hub), "text", "rating", classes, n // 2, seed, where,
                                as_label=lambda v: str(float(v)))  # type: ignore
                     for split, n in (("train", n_train), ("test", n_test)))
    if dataset == "fancyzhx/ag_news":
        return tuple(_per_label(load_split(data_dir, dataset, split, from_hub=from_hub), "text", "label", classes, n // 2, seed, where,
                                as_label=lambda v: str(int(v)))  # type: ignore
                     for split, n in (("train", n_train), ("test", n_test)))
    half_train, half_test = n_train // 2, n_test // 2
    samples: dict[str, list[str]] = defaultdict(list)
    if dataset == "Helsinki-NLP/europarl":
        wanted = half_train + half_test
        for language in classes:
            frame = load_split(data_dir, dataset, "train", EUROPARL_PAIRS[language], from_hub)
            _need_columns(frame, ("translation",), where)
            for translation in frame["translation"]:
                pair = json.loads(translation) if isinstance(translation, str) else translation
                samples[language].append(pair[language])
                if len(samples[language]) > wanted:
                    break
    else:  # codeparrot/github-code
        frame = load_split(data_dir, dataset, "train", from_hub=from_hub)
        _need_columns(frame, ("code", "language"), where)
        total = half_train + half_test
        for code, language in zip(frame["code"], frame["language"]):
            if language in classes and len(code) > GITHUB_MIN_CHARS:
                samples[language].append(code[GITHUB_SKIP_CHARS:])
            if all(len(samples[lang]) > total for lang in classes):
                break
    return _shuffle_split(samples, classes, half_train, half_test, seed, where)
