"""The Gemma Scope 2 entries of `sae_bench/inputs/releases.json`, generated from SAELens's `pretrained_saes.yaml`.

SAELens lists every Gemma Scope 2 release (270m, 1b, 4b, 12b, 27b; pt and it; residual, MLP,
attention, transcoders; the 4-depth releases and the `-all` every-layer ones) with the hub folder
of every SAE. This script reads that yaml from the sae-lens wheel (downloaded with
`pip download --no-deps`, never installed: its `sae_lens` would not clash, but we need only the
data) and rewrites the `gemma-scope-2-*` entries of our registry: one release per SAELens release
(same name), its hub repository, model, layers, every folder per layer, and a default folder
(16k latents, l0 `medium` where published, else the commonest) that `--release NAME` evaluates.
The registry stays our own JSON: this script only writes it, and `tests/test_releases_peer.py`
(opt-in, `-m peer`) checks it against the yaml independently of this code.

Use:
    python benchmarks/saelens_releases.py --write            # regenerate the entries
    python benchmarks/saelens_releases.py --yaml FILE --write # from a yaml already at hand
Never imports `sae_bench` (the data it writes is what the package reads).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REGISTRY = REPO / "sae_bench" / "inputs" / "releases.json"
CACHE = Path(os.environ.get("SAE_BENCH_PEERS_CACHE") or Path.home() / ".cache" / "sae-bench-peers") / "saelens_wheel"
YAML_IN_WHEEL = "sae_lens/pretrained_saes.yaml"
FOLDER = re.compile(r"^(?P<site>resid_post|mlp_out|attn_out|transcoder)(?P<all>_all)?/layer_(?P<layer>\d+)"
                    r"_width_(?P<width>\d+[km])_l0_(?P<l0>small|medium|big)(?P<rest>(?:_[a-z0-9]+)*)$")
HOOKPOINTS = {"resid_post": ("layers.{layer}", None), "mlp_out": ("layers.{layer}.mlp_out", None),
              "attn_out": ("layers.{layer}.attn_out", None),
              "transcoder": ("layers.{layer}.mlp_in", "layers.{layer}.mlp_out")}
SITE_WORDS = {"resid_post": "residual stream (resid_post)", "mlp_out": "MLP output", "attn_out": "attention output",
              "transcoder": "transcoders (MLP input -> MLP output)"}
D_IN = {"270m": 640, "1b": 1152, "4b": 2560, "12b": 3840, "27b": 5376}  # Gemma 3 hidden sizes
WIDTH_ORDER = {"16k": 0, "65k": 1, "262k": 2, "1m": 3}
L0_ORDER = {"medium": 0, "small": 1, "big": 2}
# Names this registry used before the entries were generated, kept so that old commands still work.
ALIASES = {"gemma-scope-2-1b-pt": "gemma-scope-2-1b-pt-res", "gemma-scope-2-1b-it": "gemma-scope-2-1b-it-res",
           "gemma-scope-2-4b-pt": "gemma-scope-2-4b-pt-res"}


def wheel_yaml(cache: Path = CACHE) -> tuple[str, str]:
    """(yaml text, wheel file name): the newest sae-lens wheel, downloaded once into `cache`."""
    wheels = sorted(cache.glob("sae_lens-*.whl"))
    if not wheels:
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "sae-lens", "-d", str(cache)],
                       check=True)
        wheels = sorted(cache.glob("sae_lens-*.whl"))
    with zipfile.ZipFile(wheels[-1]) as wheel:
        return wheel.read(YAML_IN_WHEEL).decode("utf-8"), wheels[-1].name


def _preference(folder: str) -> tuple:
    m = FOLDER.match(folder)
    return (WIDTH_ORDER.get(m["width"], 9), L0_ORDER[m["l0"]], m["rest"] != "", m["rest"], folder)


def entries(data: dict, source: str) -> dict[str, dict]:
    """Our registry entries for every `gemma-scope-2-*` release of the parsed yaml."""
    out = {}
    for name, release in sorted(data.items()):
        if not name.startswith("gemma-scope-2-"):
            continue
        size, kind = re.match(r"gemma-scope-2-(\d+[mb])-(pt|it)-", name).groups()
        folders: dict[int, list[str]] = {}
        sites = set()
        for sae in release["saes"]:
            m = FOLDER.match(sae["path"])
            if m is None:
                raise SystemExit(f"saelens_releases: {name}: unexpected folder {sae['path']!r}")
            sites.add(m["site"])
            folders.setdefault(int(m["layer"]), []).append(sae["path"])
        (site,) = sites
        layers = sorted(folders)
        for layer in layers:
            folders[layer].sort(key=_preference)
        # the default: the most preferred variant that the most layers publish
        variants = {}
        for layer in layers:
            for folder in folders[layer]:
                variant = folder.split(f"layer_{layer}_", 1)[1]
                variants.setdefault(variant, []).append(layer)
        default = min(variants, key=lambda v: (-len(variants[v]), _preference(f"{site}/layer_0_{v}")))
        prefix = folders[layers[0]][0].split("/")[0]
        hookpoint, output = HOOKPOINTS[site]
        span = "every layer" if len(layers) > 6 else f"{len(layers)} depths"
        entry = {"description": f"Gemma Scope 2 JumpReLU {SITE_WORDS[site]}, {span}, Gemma 3 {size.upper()} "
                                f"{'IT' if kind == 'it' else 'PT'}",
                 "hub": release["repo_id"], "model": release["model"], "format": "gemma_scope",
                 "subfolder": f"{prefix}/layer_{{layer}}_{default}", "hookpoint": hookpoint}
        if output:
            entry["output_hookpoint"] = output
        entry.update({"layers": layers, "d_in": D_IN[size],
                      "folders": {str(layer): folders[layer] for layer in layers},
                      "source": source,
                      "notes": "the default folder per layer is 'subfolder' where published, else the layer's first "
                               "folder; other widths and l0 buckets: REPO@FOLDER (sae-bench releases --folders NAME)"})
        out[name] = entry
    return out


def dump(registry: dict) -> str:
    """The registry as JSON, one line per list (layer lists, a layer's folders)."""
    text = json.dumps(registry, indent=2, ensure_ascii=False)
    return re.sub(r"\[\s+([^\[\]{}]*?)\s+\]", lambda m: "[" + re.sub(r",\s+", ", ", m.group(1)) + "]", text) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--yaml", type=Path, help="pretrained_saes.yaml (default: from the sae-lens wheel)")
    parser.add_argument("--write", action="store_true", help="rewrite the gemma-scope-2 entries of releases.json")
    args = parser.parse_args(argv)
    import yaml

    if args.yaml:
        text, source = args.yaml.read_text(encoding="utf-8"), args.yaml.name
    else:
        text, wheel = wheel_yaml()
        source = f"{wheel} {YAML_IN_WHEEL}"
    generated = entries(yaml.safe_load(text), f"SAELens {source}")
    registry = json.loads(REGISTRY.read_text(encoding="utf-8"))
    kept = {k: v for k, v in registry["releases"].items() if not k.startswith("gemma-scope-2-")}
    registry["releases"] = {**kept, **generated}
    registry["aliases"] = ALIASES
    print(f"{len(generated)} Gemma Scope 2 releases, "
          f"{sum(len(f) for e in generated.values() for f in e['folders'].values())} folders", file=sys.stderr)
    if args.write:
        REGISTRY.write_text(dump(registry), encoding="utf-8")
        print(f"wrote {REGISTRY.relative_to(REPO)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
