"""Build the Oris Blender extension: one zip per platform, built and validated by Blender's own builder.

    python build.py [--out dist] [--platform linux-x64 ...] [--offline]

Stages addon/ + blender_manifest.toml + the model into build/stage/oris, downloads unmodified
onnxruntime wheels from PyPI for each platform and for Blender's Pythons (3.11 for 4.5 LTS to 5.0,
3.13 for 5.1+), espeakng-loader's wheel (libespeak-ng 1.52 and its language data, GPL-3.0-or-later: the
transcripts in other languages) for each platform and Janome's (Japanese kanji to kana, Apache-2.0), lists them in the staged manifest, then runs
`blender_ext.py build --split-platforms` and `blender_ext.py validate` from the installed bpy
package (no Blender binary needed). --offline reuses build/wheels.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
STAGE = ROOT / "build" / "stage" / "oris"
WHEELS = ROOT / "build" / "wheels"
ONNXRUNTIME = "onnxruntime==1.32.0"
ESPEAK = "espeakng-loader==0.2.4"  # one py3-none wheel per platform
JANOME = "janome==0.5.0"  # pure Python, its dictionary inside: Japanese kanji to kana
PLATFORMS = {  # Blender platform -> pip platform tags
    "linux-x64": ["manylinux_2_27_x86_64", "manylinux_2_28_x86_64", "manylinux2014_x86_64", "manylinux_2_17_x86_64"],
    "windows-x64": ["win_amd64"],
    "macos-arm64": ["macosx_13_0_arm64", "macosx_14_0_arm64", "macosx_11_0_arm64"],
}
PYTHONS = ("3.11", "3.13")


def blender_ext() -> Path:
    spec = importlib.util.find_spec("bpy")
    if spec is None or spec.origin is None:
        sys.exit("error: the bpy package is needed for Blender's extension builder: pip install -e '.[test]'")
    found = sorted(Path(spec.origin).parent.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if not found:
        sys.exit("error: blender_ext.py not found inside the bpy package")
    return found[-1]


def download_wheels(platforms: list[str]) -> list[Path]:
    WHEELS.mkdir(parents=True, exist_ok=True)
    for platform in platforms:
        for python in PYTHONS:
            cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d", str(WHEELS),
                   "--python-version", python, "--implementation", "cp"]
            for tag in PLATFORMS[platform]:
                cmd += ["--platform", tag]
            subprocess.run(cmd + [ONNXRUNTIME], check=True)
            subprocess.run(cmd + [ESPEAK], check=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d", str(WHEELS),
                    JANOME], check=True)
    return bundled()


def bundled() -> list[Path]:
    return [p for pattern in ("onnxruntime-*.whl", "espeakng_loader-*.whl", "[Jj]anome-*.whl")
            for p in sorted(WHEELS.glob(pattern))]


def stage(wheels: list[Path]) -> None:
    if STAGE.exists():
        shutil.rmtree(STAGE)
    shutil.copytree(ROOT / "addon", STAGE, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    models = STAGE / "models"
    models.mkdir()
    for name in ("oris_visemes.onnx", "oris_visemes.json", "oris_visemes_multilingual.onnx", "oris_visemes_multilingual.json",
                 "MODEL_CARD.md", "oris_whisper.json",
                 "oris_whisper_encoder.onnx", "oris_whisper_decoder.onnx", "oris_whisper_vocab.txt.gz", "WHISPER-LICENSE.txt"):
        shutil.copy2(ROOT / "models" / name, models / name)
    shutil.copytree(ROOT / "models" / "licenses", models / "licenses")  # the prompt voices the model was trained on
    (STAGE / "wheels").mkdir()
    for wheel in wheels:
        shutil.copy2(wheel, STAGE / "wheels" / wheel.name)
    manifest = (ROOT / "blender_manifest.toml").read_text(encoding="utf-8")
    listed = ",\n".join(f'  "./wheels/{w.name}"' for w in wheels)
    manifest = re.sub(r"\n\[permissions\]", f"\nwheels = [\n{listed},\n]\n\n[permissions]", manifest, count=1)
    (STAGE / "blender_manifest.toml").write_text(manifest, encoding="utf-8")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "dist")
    ap.add_argument("--platform", action="append", choices=sorted(PLATFORMS), help="default: all three")
    ap.add_argument("--offline", action="store_true", help="use the wheels already in build/wheels")
    args = ap.parse_args()
    platforms = args.platform or sorted(PLATFORMS)
    wheels = bundled() if args.offline else download_wheels(platforms)
    if not wheels:
        sys.exit("error: no onnxruntime wheels (run without --offline once)")
    stage(wheels)
    args.out.mkdir(parents=True, exist_ok=True)
    tool = blender_ext()
    cmd = [sys.executable, str(tool), "build", "--source-dir", str(STAGE), "--output-dir", str(args.out), "--split-platforms"]
    subprocess.run(cmd, check=True)
    built = sorted(args.out.glob("oris-*.zip"))
    for zip_path in built:
        subprocess.run([sys.executable, str(tool), "validate", str(zip_path)], check=True)
        print(f"built and validated {zip_path} ({zip_path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
