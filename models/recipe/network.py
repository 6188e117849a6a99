"""The Oris viseme network: raw 16 kHz audio in, 100 Hz viseme and phone logits out.

The log-mel front-end is part of the module (a fixed-weight strided convolution holding
a windowed DFT basis), so training and the exported ONNX graph share one implementation.
Frame t is centred on sample t*160 (t*10 ms); N samples give N//160 + 1 frames.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

SAMPLE_RATE = 16000
HOP = 160
WIN = 400
N_MELS = 80
N_VISEMES = 15
N_PHONES = 40


def mel_filterbank(n_mels: int = N_MELS, n_fft: int = WIN, sr: int = SAMPLE_RATE,
                   fmin: float = 40.0, fmax: float = 7600.0) -> np.ndarray:
    """HTK-style triangular mel filters, shape [n_mels, n_fft//2 + 1]."""
    def hz_to_mel(f: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def mel_to_hz(m: np.ndarray) -> np.ndarray:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    bins = np.linspace(0, sr / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(np.array(fmin)), hz_to_mel(np.array(fmax)), n_mels + 2))
    fb = np.zeros((n_mels, len(bins)), np.float32)
    for i in range(n_mels):
        lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
        up = (bins - lo) / (mid - lo)
        down = (hi - bins) / (hi - mid)
        fb[i] = np.maximum(0.0, np.minimum(up, down))
    return fb


class LogMel(nn.Module):
    """Log-mel features, normalised by the training audio's statistics.

    With sliding_mean_frames, each frame also has the mean of the frames around it subtracted
    (sliding cepstral mean normalisation): a voice's or microphone's fixed spectral tilt cancels,
    so a voice never heard in training sounds less foreign.
    """

    def __init__(self, sliding_mean_frames: int = 0) -> None:
        super().__init__()
        if sliding_mean_frames and sliding_mean_frames % 2 == 0:
            raise ValueError("sliding_mean_frames must be odd, so the window is centred on its frame")
        self.sliding_mean_frames = sliding_mean_frames
        n_bins = WIN // 2 + 1
        t = np.arange(WIN)
        window = 0.5 - 0.5 * np.cos(2 * np.pi * t / WIN)
        k = np.arange(n_bins)[:, None]
        basis = np.concatenate([np.cos(2 * np.pi * k * t / WIN), -np.sin(2 * np.pi * k * t / WIN)]) * window
        self.register_buffer("dft", torch.tensor(basis[:, None, :], dtype=torch.float32))
        self.register_buffer("mel", torch.tensor(mel_filterbank(), dtype=torch.float32))
        self.register_buffer("mean", torch.zeros(N_MELS, 1))
        self.register_buffer("std", torch.ones(N_MELS, 1))
        self.n_bins = n_bins
        self.spec_augment = True  # training only; never part of the exported graph

    def forward(self, audio: torch.Tensor) -> torch.Tensor:  # [B, N] -> [B, 80, N//160 + 1]
        x = nn.functional.pad(audio.unsqueeze(1), (WIN // 2, WIN // 2))
        spec = nn.functional.conv1d(x, self.dft, stride=HOP)
        power = spec[:, : self.n_bins] ** 2 + spec[:, self.n_bins :] ** 2
        logmel = torch.log(torch.matmul(self.mel, power) + 1e-6)
        feats = (logmel - self.mean) / self.std
        if self.sliding_mean_frames:
            feats = feats - sliding_mean(feats, self.sliding_mean_frames)
        if self.training and self.spec_augment:
            feats = spec_augment(feats)
        return feats


def sliding_mean(x: torch.Tensor, frames: int) -> torch.Tensor:
    """The mean of x over the `frames` (odd) frames centred on each frame, fewer at the ends: [B, C, T] -> same.

    From running sums, so the cost does not grow with the window (an average pool of 301 frames doubled
    the network's CPU time)."""
    half = frames // 2

    def window_sums(v: torch.Tensor) -> torch.Tensor:
        # running sum from 0, held flat beyond either end; the window of frame t spans [t - half, t + half]
        sums = nn.functional.pad(nn.functional.pad(torch.cumsum(v, dim=2), (1, 0)), (half, half), mode="replicate")
        return sums[:, :, 2 * half + 1 :] - sums[:, :, : -(2 * half + 1)]

    return window_sums(x) / window_sums(torch.ones_like(x[:, :1]))


def spec_augment(feats: torch.Tensor, freq_width: int = 12, time_width: int = 8, time_masks: int = 3) -> torch.Tensor:
    """Zero a random band of mel bins and a few short stretches of frames in each example."""
    batch, bins, frames = feats.shape
    out = feats.clone()
    for b in range(batch):
        f = int(torch.randint(0, freq_width + 1, ()))
        f0 = int(torch.randint(0, bins - f + 1, ()))
        out[b, f0 : f0 + f, :] = 0.0
        for _ in range(time_masks):
            t = int(torch.randint(0, time_width + 1, ()))
            t0 = int(torch.randint(0, max(1, frames - t), ()))
            out[b, :, t0 : t0 + t] = 0.0
    return out


def _conv(cin: int, cout: int, k: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(cin, cout, k, stride=stride, padding=k // 2), nn.BatchNorm1d(cout), nn.ReLU())


class VisemeNet(nn.Module):
    """Conv front (to 50 Hz) -> BiGRU -> transposed conv back to 100 Hz -> two heads."""

    def __init__(self, width: int = 192, hidden: int = 128, dropout: float = 0.0, sliding_mean_frames: int = 0) -> None:
        super().__init__()
        self.features = LogMel(sliding_mean_frames)
        self.encoder = nn.Sequential(_conv(N_MELS, width, 5), _conv(width, width, 5, stride=2), _conv(width, width, 3))
        self.gru = nn.GRU(width, hidden, num_layers=2, batch_first=True, bidirectional=True, dropout=dropout)
        self.drop = nn.Dropout(dropout)  # no parameters: a trained state loads into VisemeNet() for export
        self.up = nn.Sequential(nn.ConvTranspose1d(2 * hidden, width, 4, stride=2, padding=1), nn.BatchNorm1d(width),
                                nn.ReLU(), _conv(width, width, 3))
        self.viseme_head = nn.Conv1d(width, N_VISEMES, 1)
        self.phone_head = nn.Conv1d(width, N_PHONES, 1)

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.features(audio)
        n_frames = feats.shape[2]
        x = self.encoder(feats)
        x, _ = self.gru(x.transpose(1, 2))
        x = self.drop(self.up(self.drop(x).transpose(1, 2))[:, :, :n_frames])
        return self.viseme_head(x).transpose(1, 2), self.phone_head(x).transpose(1, 2)
