"""Loading is memory-mapped: peak memory grows by about the file's size, never twice it.

Each measurement runs in a fresh interpreter and reads VmHWM (peak resident set) from /proc.
The fast case is a 128 MB ErnOS-layout file; the slow one is the real ErnOS size
(131072 x 2816 fp32 encoder + decoder, 2.95 GB).
"""

import json
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")

WRITE = textwrap.dedent("""
    import json, struct, sys
    F, D, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    names = [("encoder.weight", [F, D]), ("encoder.bias", [F]), ("decoder.weight", [D, F])]
    header, offset = {}, 0
    for name, shape in names:
        n = 4
        for s in shape:
            n *= s
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    block = bytes(1 << 22)  # zeros are finite float32 values
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        left = offset
        while left:
            f.write(block[:min(left, len(block))])
            left -= min(left, len(block))
""")

MEASURE = textwrap.dedent("""
    import json, os, sys
    def status():
        out = {}
        for line in open("/proc/self/status"):
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
                out[key] = int(value.split()[0]) * 1024
        return out
    import torch
    from sae_bench import load_checkpoint
    before = status()
    sae = load_checkpoint(sys.argv[1], normalise="none", standardise="none")
    after = status()
    print(json.dumps({"before": before, "after": after, "size": os.path.getsize(sys.argv[1]),
                      "dec_view": not sae.W_dec.is_contiguous()}))
""")


def measure(tmp_path, F, D):
    path = tmp_path / "big.safetensors"
    subprocess.run([sys.executable, "-c", WRITE, str(F), str(D), str(path)], check=True)
    env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", MEASURE, str(path)], check=True, capture_output=True, text=True,
                         env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def check(result, slack):
    size = result["size"]
    peak_growth = result["after"]["VmHWM"] - result["before"]["VmRSS"]
    anon_growth = result["after"]["RssAnon"] - result["before"]["RssAnon"]
    assert result["dec_view"], "the [D, F] decoder must be used as a transposed view"
    assert peak_growth <= slack * size, f"peak grew by {peak_growth / size:.2f}x the file size"
    # the weights live in file-backed mmap pages, not in private copies
    assert anon_growth <= 0.25 * size, f"anonymous memory grew by {anon_growth / size:.2f}x the file size"
    return peak_growth / size


def test_load_is_memory_mapped_small(tmp_path):
    ratio = check(measure(tmp_path, 32768, 512), slack=1.3)
    assert ratio > 0.5  # finiteness checking touched every page once (the file was really read)


@pytest.mark.slow
def test_load_real_ernos_size(tmp_path):
    ratio = check(measure(tmp_path, 131072, 2816), slack=1.15)
    print(f"peak growth {ratio:.3f}x of a 2.95 GB file")
