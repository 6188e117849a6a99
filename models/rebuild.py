"""Rebuild the Oris viseme model from scratch: corpus -> train -> export -> tune decoding -> evaluate.

    python models/rebuild.py [--minutes 45]

Needs: apt-get install flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts
       python3 -m venv .venv-train && .venv-train/bin/pip install -e '.[train]'
       (torch, onnx, pocketsphinx, scipy, soundfile; a venv of its own, since onnx needs
       numpy 2 and the bpy 4.5 of the test venv pins numpy 1)
and ../shared/data beside the checkout. On 2 CPU cores the whole run takes about two hours (95 minutes training);
with a CUDA GPU, training uses it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(script: str, *args: str) -> None:
    t = time.time()
    print(f"== {script} {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, str(HERE / script), *args], check=True)
    print(f"== {script} done in {time.time() - t:.0f} s", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", default="95", help="training time budget")
    ap.add_argument("--skip-corpus", action="store_true", help="reuse models/.cache/corpus")
    args = ap.parse_args()
    t0 = time.time()
    if not args.skip_corpus:
        run("recipe/corpus.py")
    run("recipe/train.py", "--minutes", args.minutes)
    run("recipe/export.py")
    run("recipe/tune.py")
    run("evaluate.py", "--write-card")
    print(f"rebuilt the model in {(time.time() - t0) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
