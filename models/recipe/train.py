"""Train VisemeNet on the corpus built by corpus.py and export it to ONNX.

Crops of real and synthetic speech are augmented on the fly (speed, gain, reverb, band
limits, noise), so the model sees a new version of each utterance at every visit.
Uses CUDA when torch sees a GPU; the schedule is time-budgeted (--minutes).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.signal import butter, fftconvolve, resample_poly, sosfilt
from torch.optim.swa_utils import AveragedModel

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))
from corpus import native_role, prompt_voice  # noqa: E402
from labels import CLOSURE_WINDOW, LabelledSet  # noqa: E402
from network import HOP, SAMPLE_RATE, VisemeNet  # noqa: E402
from onnx_init import freeze_batchnorm, state_from_onnx  # noqa: E402

from addon.core.visemes import PP  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
IGNORE = -100


def augment(x: np.ndarray, rng: np.random.Generator, min_snr_db: float = 3.0, narrowband: float = 0.0) -> np.ndarray:
    x = x.astype(np.float32)
    if rng.random() < narrowband:  # an 8 kHz recording: nothing above 4 kHz, so a narrowband voice is no shortcut
        x = resample_poly(resample_poly(x, 1, 2), 2, 1)[: len(x)].astype(np.float32)
    if rng.random() < 0.3:  # room reverb: exponentially decaying noise tail
        rt60 = rng.uniform(0.15, 0.7)
        n = int(rt60 * SAMPLE_RATE)
        ir = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / n)
        ir[0] = 1.0 / rng.uniform(0.3, 1.0)
        x = fftconvolve(x, ir.astype(np.float32) * 0.2)[: len(x)].astype(np.float32)
    if rng.random() < 0.25:  # telephone band or a dull microphone
        if rng.random() < 0.5:
            sos = butter(4, [rng.uniform(200, 400), rng.uniform(3000, 3600)], "bandpass", fs=SAMPLE_RATE, output="sos")
        else:
            sos = butter(4, rng.uniform(2500, 6000), "lowpass", fs=SAMPLE_RATE, output="sos")
        x = sosfilt(sos, x).astype(np.float32)
    peak = np.max(np.abs(x)) + 1e-6
    x = x / peak * 10 ** (rng.uniform(-30, -0.5) / 20)
    if rng.random() < 0.6:
        noise = rng.standard_normal(len(x)).astype(np.float32)
        if rng.random() < 0.5:  # pink-ish
            noise = np.cumsum(noise) * 0.02
            noise -= np.convolve(noise, np.ones(200) / 200, mode="same")
        rms_sig = np.sqrt(np.mean(x**2)) + 1e-8
        rms_noise = np.sqrt(np.mean(noise**2)) + 1e-8
        x = x + noise * (rms_sig / rms_noise) * 10 ** (-rng.uniform(min_snr_db, 40) / 20)
    return np.clip(x, -1.0, 1.0)


# (up, down) resampling: below 1 the voice gets faster and higher, down to child-like formants
SPEEDS = ((1, 1), (9, 10), (10, 9), (11, 12), (12, 11), (19, 20), (20, 19), (4, 5), (5, 6), (6, 5))


def sample_crop(ds: LabelledSet, frames: int, rng: np.random.Generator, aug: bool, min_snr_db: float = 3.0,
                narrowband: float = 0.0):
    i = int(rng.integers(len(ds)))
    up, down = SPEEDS[int(rng.integers(len(SPEEDS)))] if aug and rng.random() < 0.5 else (1, 1)
    src_frames = int(math.ceil(frames * down / up)) + 2
    a, v, p = ds.audio[i], ds.visemes[i], ds.phones[i]
    start = int(rng.integers(max(1, len(v) - src_frames + 1)))
    seg = a[start * HOP : (start + src_frames) * HOP].astype(np.float32) / 32768.0
    if (up, down) != (1, 1):
        seg = resample_poly(seg, up, down).astype(np.float32)
    src_idx = np.round(np.arange(frames) * down / up).astype(np.int64) + start
    valid = src_idx < len(v)
    vis = np.where(valid, v[np.minimum(src_idx, len(v) - 1)], IGNORE)
    ph = np.where(valid, p[np.minimum(src_idx, len(p) - 1)], IGNORE)
    audio = np.zeros((frames - 1) * HOP, np.float32)
    n = min(len(audio), len(seg))
    audio[:n] = seg[:n]
    vis[n // HOP + 1 :] = IGNORE
    ph[n // HOP + 1 :] = IGNORE
    if aug:
        audio[:n] = augment(audio[:n], rng, min_snr_db, narrowband)
    return audio, vis, ph


def make_batch(sets, weights, batch: int, frames: int, rng, aug=True, min_snr_db: float = 3.0, narrowband: float = 0.0,
               origin: list[int] | None = None):
    """A batch of crops; `origin`, when given, receives the index in `sets` each crop came from."""
    xs, vs, ps = [], [], []
    for _ in range(batch):
        k = int(rng.choice(len(sets), p=weights))
        if origin is not None:
            origin.append(k)
        ds = sets[k]
        a, v, p = sample_crop(ds, frames, rng, aug, min_snr_db, narrowband)
        xs.append(a)
        vs.append(v)
        ps.append(p)
    return torch.tensor(np.stack(xs)), torch.tensor(np.stack(vs)), torch.tensor(np.stack(ps))


def _max_per_run(values: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
    """Max of `values` [B, T] over each run of True in `inside` (runs never cross examples)."""
    starts = inside & ~torch.nn.functional.pad(inside[:, :-1], (1, 0), value=False)
    run = torch.cumsum(starts.flatten().long(), 0) - 1
    sel = inside.flatten()
    best = torch.full((int(starts.sum()),), float("-inf"), device=values.device)
    return best.scatter_reduce(0, run[sel], values.flatten()[sel], reduce="amax", include_self=True)


def closure_window_loss(vis_logits: torch.Tensor, vis: torch.Tensor,
                        reach: int = round(CLOSURE_WINDOW * 100)) -> torch.Tensor:
    """Asks for what the evaluation counts: one confident PP frame within each reference closure
    +- `reach` frames (-log max P(PP) there), and no PP between those windows (-log(1 - max P(PP))
    over each stretch between them). Forced alignments of real speech place closures only to
    within a few frames; frame cross-entropy punishes a closure one frame off, this does not."""
    labelled = vis != IGNORE
    is_pp = (vis == PP).float().unsqueeze(1)
    near = torch.nn.functional.max_pool1d(is_pp, 2 * reach + 1, stride=1, padding=reach)[:, 0] > 0
    p_pp = torch.softmax(vis_logits, dim=-1)[..., PP]
    terms = []
    if bool((near & labelled).any()):
        terms.append(-torch.log(_max_per_run(p_pp, near & labelled) + 1e-6))
    if bool((~near & labelled).any()):
        terms.append(-torch.log(1.0 - _max_per_run(p_pp, ~near & labelled) + 1e-6))
    return torch.cat(terms).mean() if terms else vis_logits.sum() * 0.0


def frame_accuracy(model: VisemeNet, ds: LabelledSet, device) -> float:
    model.eval()
    hit = total = 0
    with torch.no_grad():
        for a, v in zip(ds.audio, ds.visemes):
            logits, _ = model(torch.tensor(a.astype(np.float32)[None] / 32768.0, device=device))
            pred = logits[0].argmax(-1).cpu().numpy()[: len(v)]
            hit += int((pred == v[: len(pred)]).sum())
            total += len(pred)
    model.train()
    return hit / max(total, 1)


def dev_accuracy(model: VisemeNet, dev: LabelledSet, dev_native: LabelledSet | None, device) -> float:
    """What picks the checkpoint: frame accuracy on the development learners, averaged with that on the
    native development prompts when there are some (fluent speech and learners' speech count alike)."""
    acc = frame_accuracy(model, dev, device)
    if dev_native is None or len(dev_native) == 0:
        return acc
    acc_native = frame_accuracy(model, dev_native, device)
    print(f"  dev learners {acc:.4f}, dev native {acc_native:.4f}", flush=True)
    return (acc + acc_native) / 2


def speaker_of() -> dict[str, str]:
    text = (SHARED / "speechocean762-train" / "utt2spk").read_text()
    return dict(line.split() for line in text.splitlines() if line.strip())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=ROOT / "models" / ".cache" / "corpus")
    ap.add_argument("--out", type=Path, default=ROOT / "models" / ".cache" / "train")
    ap.add_argument("--minutes", type=float, default=95.0)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=4.0, help="crop length")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--real-share", type=float, default=0.5, help="share of crops taken from real learner speech")
    ap.add_argument("--native-share", type=float, default=0.2,
                    help="share of crops taken from the native prompt voices (native_train.npz); the rest is TTS")
    ap.add_argument("--leave-out-voice", action="append", default=[], metavar="VOICE",
                    help="train without this prompt voice (e.g. asterisk-allison-en-us, whose CC BY-SA 3.0 would carry over to the model)")
    ap.add_argument("--narrowband", type=float, default=0.15,
                    help="share of crops band-limited to 4 kHz, as an 8 kHz recording is")
    ap.add_argument("--closure-weight", type=float, default=2.0, help="loss weight of the closed-mouth viseme")
    ap.add_argument("--min-snr", type=float, default=3.0, help="lowest signal-to-noise ratio of added noise, dB")
    ap.add_argument("--closure-window-weight", type=float, default=0.0,
                    help="weight of the loss asking for one confident PP frame within each reference closure +- 40 ms, none between")
    ap.add_argument("--sliding-mean", type=float, default=0.0, metavar="SECONDS",
                    help="subtract the mean features of this many seconds around each frame (0: off)")
    ap.add_argument("--dropout", type=float, default=0.0, help="dropout after the GRU layers")
    ap.add_argument("--average-from", type=float, default=0.8,
                    help="average the weights from this share of the time budget on (1 = no averaging)")
    ap.add_argument("--init-from", type=Path, metavar="ONNX",
                    help="fine-tune: start from this exported model's weights (BatchNorm statistics kept frozen)")
    ap.add_argument("--foreign", type=Path, default=ROOT / "models" / ".cache" / "foreign",
                    help="the non-English training sets (models/recipe/foreign_corpus.py)")
    ap.add_argument("--foreign-share", type=float, default=0.0,
                    help="share of crops taken from the non-English sets, split evenly among them (the rest keep their ratios)")
    ap.add_argument("--eval-every", type=float, default=300.0, help="seconds between development evaluations (snapshots)")
    ap.add_argument("--distill-weight", type=float, default=0.0,
                    help="fine-tuning: weight of a loss keeping the English crops' viseme and phone posteriors those of the "
                         "--init-from model (KL divergence to its output on the unmasked crop), so that what other "
                         "languages teach does not move English")
    args = ap.parse_args(argv)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)

    # Dev speakers (for model selection and curve tuning) come from the training split;
    # the held-out evaluation speakers were removed by corpus.py already.
    spk = speaker_of()
    speakers = sorted({spk[n] for n in np.load(args.corpus / "real_train.npz")["names"]})
    dev_speakers = set(speakers[3::10])
    real = LabelledSet(args.corpus / "real_train.npz", keep=lambda n: spk[n] not in dev_speakers)
    dev = LabelledSet(args.corpus / "real_train.npz", keep=lambda n: spk[n] in dev_speakers)
    tts = LabelledSet(args.corpus / "tts_train.npz")
    sets, weights = [real, tts], [args.real_share, 1.0 - args.real_share]
    dev_native: LabelledSet | None = None
    if args.native_share > 0:
        left_out = set(args.leave_out_voice)
        voices = {prompt_voice(str(n)) for n in np.load(args.corpus / "native_train.npz")["names"]}
        if left_out - voices:
            ap.error(f"--leave-out-voice: {', '.join(sorted(left_out - voices))} is not a training voice "
                     f"(they are: {', '.join(sorted(voices))})")
        native = LabelledSet(args.corpus / "native_train.npz",
                             keep=lambda name: native_role(name, left_out) == "train")
        dev_native = LabelledSet(args.corpus / "native_train.npz",
                                 keep=lambda name: native_role(name, left_out) == "dev")
        sets, weights = [real, native, tts], [args.real_share, args.native_share, 1.0 - args.real_share - args.native_share]
        print(f"native: {len(native)} utterances; native dev: {len(dev_native)}", flush=True)
    foreign_speech: dict[str, dict[str, float]] = {}
    if args.foreign_share > 0:
        files = sorted(args.foreign.glob("*_train.npz"))
        if not files:
            ap.error(f"--foreign-share: no *_train.npz in {args.foreign}; run models/recipe/foreign_corpus.py")
        weights = [w * (1.0 - args.foreign_share) for w in weights]
        for path in files:
            ds = LabelledSet(path)
            sets.append(ds)
            weights.append(args.foreign_share / len(files))
            foreign_speech[path.stem.removesuffix("_train")] = {
                "utterances": len(ds), "hours": round(sum(len(a) for a in ds.audio) / SAMPLE_RATE / 3600, 2)}
        print(f"foreign: {foreign_speech}", flush=True)
    print(f"train: {len(real)} real + {len(tts)} tts utterances; dev: {len(dev)} ({device})", flush=True)
    (args.out / "dev_speakers.json").write_text(json.dumps(sorted(dev_speakers)))

    sliding_mean_frames = 2 * round(args.sliding_mean * 100 / 2) + 1 if args.sliding_mean > 0 else 0
    model = VisemeNet(dropout=args.dropout, sliding_mean_frames=sliding_mean_frames).to(device)
    teacher: VisemeNet | None = None
    if args.init_from:
        model.load_state_dict(state_from_onnx(args.init_from, model))
        freeze_batchnorm(model)
        print(f"initialised from {args.init_from}", flush=True)
        if args.distill_weight > 0:
            teacher = VisemeNet(dropout=args.dropout, sliding_mean_frames=sliding_mean_frames).to(device)
            teacher.load_state_dict(state_from_onnx(args.init_from, teacher))
            teacher.eval()
            for prm in teacher.parameters():
                prm.requires_grad_(False)
    elif args.distill_weight > 0:
        ap.error("--distill-weight needs --init-from")
    english_sets = len(sets) - len(foreign_speech)  # make_batch's set indices below this are English
    with torch.no_grad():  # input normalisation from the training audio itself
        sample, _, _ = make_batch([real, tts], [0.5, 0.5], 64, 400, rng, aug=True)
        model.features.eval()  # statistics of unmasked features
        feats = model.features(sample.to(device))
        model.features.train()
        if not args.init_from:  # a fine-tuned model keeps the normalisation it was trained with
            model.features.mean.copy_(feats.mean(dim=(0, 2))[:, None])
            model.features.std.copy_(feats.std(dim=(0, 2))[:, None] + 1e-3)
    print(f"parameters: {sum(p.numel() for p in model.parameters())}", flush=True)

    vis_weight = torch.ones(15, device=device)
    vis_weight[PP] = args.closure_weight  # closures are short and matter most to the eye
    vis_loss = torch.nn.CrossEntropyLoss(weight=vis_weight, ignore_index=IGNORE, label_smoothing=0.05)
    ph_loss = torch.nn.CrossEntropyLoss(ignore_index=IGNORE, label_smoothing=0.05)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-2)
    frames = int(args.seconds * 100) + 1
    budget = args.minutes * 60
    t0 = time.time()
    step, best = 0, -1.0
    averaged: AveragedModel | None = None
    next_eval = args.eval_every
    if args.init_from:
        initial = dev_accuracy(model, dev, dev_native, device)  # for reference: the best snapshot is a fine-tuned one
        print(f"  dev viseme frame accuracy of the initial weights {initial:.4f}", flush=True)
    while True:
        frac = (time.time() - t0) / budget
        if frac >= 1.0:
            break
        lr = args.lr * min(1.0, step / 200) * 0.5 * (1 + math.cos(math.pi * frac))
        for g in opt.param_groups:
            g["lr"] = lr
        origin: list[int] = []
        x, v, p = make_batch(sets, weights, args.batch, frames, rng, min_snr_db=args.min_snr, narrowband=args.narrowband,
                             origin=origin)
        x, v, p = x.to(device), v.to(device), p.to(device)
        vis_logits, ph_logits = model(x)
        loss = vis_loss(vis_logits.reshape(-1, 15), v.reshape(-1)) + 0.5 * ph_loss(ph_logits.reshape(-1, 40), p.reshape(-1))
        if teacher is not None:
            english = torch.tensor([k < english_sets for k in origin], device=device)
            keep = english[:, None] & (v != IGNORE)  # English crops' frames that hold audio
            if bool(keep.any()):
                with torch.no_grad():
                    t_vis, t_ph = teacher(x[english])
                kl = torch.nn.functional.kl_div
                s_vis = torch.log_softmax(vis_logits[english], -1)[keep[english]]
                s_ph = torch.log_softmax(ph_logits[english], -1)[keep[english]]
                loss = loss + args.distill_weight * (
                    kl(s_vis, torch.log_softmax(t_vis, -1)[keep[english]], log_target=True, reduction="batchmean")
                    + 0.5 * kl(s_ph, torch.log_softmax(t_ph, -1)[keep[english]], log_target=True, reduction="batchmean"))
        if args.closure_window_weight > 0:
            loss = loss + args.closure_window_weight * closure_window_loss(vis_logits, v)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        step += 1
        if frac >= args.average_from and step % 10 == 0:  # a running mean of the late weights generalises better
            if averaged is None:
                averaged = AveragedModel(model, use_buffers=True)
            else:
                averaged.update_parameters(model)
        if step % 50 == 0:
            print(f"step {step} t={time.time() - t0:.0f}s lr={lr:.2e} loss={loss.item():.3f}", flush=True)
        if time.time() - t0 > next_eval or (time.time() - t0) >= budget:
            next_eval += args.eval_every
            acc = dev_accuracy(model, dev, dev_native, device)
            print(f"  dev viseme frame accuracy {acc:.4f}", flush=True)
            if args.init_from:  # every snapshot of a fine-tuning run is kept
                torch.save(model.state_dict(), args.out / f"step{step}.pt")
            if acc > best:
                best = acc
                torch.save(model.state_dict(), args.out / "best.pt")
    acc = dev_accuracy(model, dev, dev_native, device)
    print(f"final dev viseme frame accuracy {acc:.4f} after {step} steps", flush=True)
    if acc >= best:
        best = acc
        torch.save(model.state_dict(), args.out / "best.pt")
    weights = "best snapshot"
    if averaged is not None:
        avg_acc = dev_accuracy(averaged.module, dev, dev_native, device)
        print(f"averaged weights ({averaged.n_averaged.item()} snapshots): dev viseme frame accuracy {avg_acc:.4f}", flush=True)
        if avg_acc >= best:
            acc = avg_acc
            torch.save(averaged.module.state_dict(), args.out / "best.pt")
            weights = "averaged"
    (args.out / "train_log.json").write_text(json.dumps({
        "steps": step, "dev_accuracy": max(acc, best), "minutes": args.minutes, "device": str(device),
        "batch": args.batch, "crop_seconds": args.seconds, "lr": args.lr, "seed": args.seed,
        "real_share": args.real_share, "native_share": args.native_share, "narrowband": args.narrowband, "voices_left_out": sorted(args.leave_out_voice),
        "closure_weight": args.closure_weight,
        "closure_window_weight": args.closure_window_weight, "min_snr_db": args.min_snr,
        "dropout": args.dropout, "sliding_mean_frames": sliding_mean_frames, "average_from": args.average_from, "weights": weights,
        **({"init_from": args.init_from.name} if args.init_from else {}),
        **({"foreign_share": args.foreign_share, "foreign_speech": foreign_speech} if foreign_speech else {}),
        **({"distill_weight": args.distill_weight} if teacher is not None else {})}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
