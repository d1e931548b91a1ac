"""The PyTorch baseline for BENCHMARKS.md: CLAReSNet in PyTorch, timed like our bench.

Written here from our Flax model (no code of the authors'), with the authors' module
names so that their state_dict loads; before timing it checks itself against the
authors' tensors in ../shared/reference (logits within 1e-4), so the timed network is
numerically theirs. Needs torch (pip install torch):

  python benchmarks/torch_reference.py [--threads 2] [--repeats 10] [--dtype bfloat16]

--dtype bfloat16 runs the timed steps under torch.autocast("cpu", torch.bfloat16), PyTorch's
mixed precision (float32 parameters and optimizer), as our bench's bfloat16 model runs.
"""
import argparse
import json
import math
import os
import pathlib
import statistics
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

REFERENCE = pathlib.Path(__file__).resolve().parents[2] / "shared/reference/claresnet_reference_small.npz"


class SE(nn.Module):
  def __init__(self, c):
    super().__init__()
    h = max(c // 16, 8)
    self.fc = nn.Sequential(nn.Linear(2 * c, h, bias=False), nn.GELU(), nn.Dropout(0.1),
                            nn.Linear(h, c, bias=False), nn.Sigmoid())

  def forward(self, x):
    w = self.fc(torch.cat([x.mean((2, 3)), x.amax((2, 3))], 1))
    return x * w[:, :, None, None]


def conv_bn(cin, cout, k):
  return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout),
                       nn.GELU())


class Stem(nn.Module):
  def __init__(self, c):
    super().__init__()
    self.branch1, self.branch3, self.branch5, self.branch7 = (conv_bn(1, c // 4, k)
                                                              for k in (1, 3, 5, 7))
    self.attention = SE(c)

  def forward(self, x):
    return self.attention(torch.cat([self.branch1(x), self.branch3(x), self.branch5(x),
                                     self.branch7(x)], 1))


class Residual(nn.Module):
  def __init__(self, c, d):
    super().__init__()
    self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
    self.conv2 = nn.Conv2d(c, c, 3, padding=d, dilation=d, bias=False)
    self.bn2, self.se, self.drop = nn.BatchNorm2d(c), SE(c), nn.Dropout2d(0.1)

  def forward(self, x):
    h = self.drop(F.gelu(self.bn1(self.conv1(x))))
    return F.gelu(x + self.se(self.bn2(self.conv2(h))))


class CBAM(nn.Module):
  def __init__(self, c):
    super().__init__()
    self.channel_attention = SE(c)
    self.spatial_conv = nn.Sequential(nn.Conv2d(4, 2, 7, padding=3, bias=False),
                                      nn.BatchNorm2d(2), nn.GELU(),
                                      nn.Conv2d(2, 1, 7, padding=3, bias=False), nn.Sigmoid())

  def forward(self, x):
    x = self.channel_attention(x)
    s = torch.cat([x.mean(1, True), x.amax(1, True), x.std(1, keepdim=True), x.amin(1, True)], 1)
    return x * self.spatial_conv(s)


class Spatial(nn.Module):
  def __init__(self, emb, c):
    super().__init__()
    self.stem = Stem(c)
    self.stages = nn.ModuleList(Residual(c, i + 1) for i in range(4))
    self.attention = CBAM(c)
    self.frame_proj = nn.Sequential(nn.Linear(2 * c, emb), nn.LayerNorm(emb))

  def forward(self, x):
    b, t, h, w = x.shape
    y = self.stem(x.reshape(b * t, 1, h, w))
    for stage in self.stages:
      y = stage(y)
    y = self.attention(y)
    return self.frame_proj(torch.cat([y.mean((2, 3)), y.amax((2, 3))], 1)).reshape(b, t, -1)


class PositionalEncoding(nn.Module):
  def __init__(self, d, rows=5000):
    super().__init__()
    half = d // 2
    pe = torch.zeros(rows, half)
    pos = torch.arange(rows, dtype=torch.float)[:, None]
    div = torch.exp(torch.arange(0, half, 2).float() * (-math.log(10000.0) / half))
    pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * div), torch.cos(pos * div)
    self.register_buffer("sinusoidal_pe", pe[None])
    self.learnable_pe = nn.Parameter(torch.randn(rows, half) * 0.02)

  def forward(self, x):
    t = x.shape[1]
    return x + torch.cat([self.sinusoidal_pe[:, :t].expand(x.shape[0], -1, -1),
                          self.learnable_pe[:t].expand(x.shape[0], -1, -1)], -1)


def num_latents(t):
  return min(max(int(16 * math.log2(max(t, 16) / 16)), 8), 64)


class LatentAttention(nn.Module):
  def __init__(self, d, scales=(1, 2, 4)):
    super().__init__()
    self.scales = scales
    mha = lambda: nn.ModuleList(nn.MultiheadAttention(d, 8, dropout=0.1, batch_first=True)
                                for _ in scales)
    norms = lambda: nn.ModuleList(nn.LayerNorm(d) for _ in scales)
    self.pos_encoding = PositionalEncoding(d)
    self.latent_token_pool = nn.Parameter(torch.randn(64, d) * 0.02)
    self.input_to_latent, self.latent_self_attn, self.latent_to_output = mha(), mha(), mha()
    self.input_norms, self.latent_norms, self.output_norms = norms(), norms(), norms()
    self.latent_ffns = nn.ModuleList(nn.Sequential(
        nn.Linear(d, 2 * d), nn.GELU(), nn.Dropout(0.1), nn.Linear(2 * d, d), nn.Dropout(0.1))
        for _ in scales)
    self.scale_weights = nn.Parameter(torch.ones(len(scales)) / len(scales))
    self.scale_fusion = nn.Sequential(nn.Linear(3 * d, 2 * d), nn.GELU(), nn.Dropout(0.1),
                                      nn.Linear(2 * d, d))
    self.final_norm, self.dropout = nn.LayerNorm(d), nn.Dropout(0.1)

  def forward(self, x):
    b, t, _ = x.shape
    xp = self.pos_encoding(x)
    outs = []
    for i, s in enumerate(self.scales):
      strided = s > 1 and t >= s
      seq = xp[:, ::s] if strided else xp
      lat = self.latent_token_pool[:num_latents(t)].expand(b, -1, -1)
      lat = self.input_norms[i](lat + self.input_to_latent[i](lat, seq, seq, need_weights=False)[0])
      lat = self.latent_norms[i](lat + self.latent_self_attn[i](lat, lat, lat,
                                                                need_weights=False)[0])
      lat = lat + self.latent_ffns[i](lat)
      out = self.output_norms[i](seq + self.latent_to_output[i](seq, lat, lat,
                                                                need_weights=False)[0])
      if strided:
        out = F.interpolate(out.transpose(1, 2), size=t, mode="linear",
                            align_corners=False).transpose(1, 2)
      outs.append(out)
    return self.final_norm(self.dropout(self.scale_fusion(torch.cat(outs, -1))) + xp)


class EncoderLayer(nn.Module):
  def __init__(self, d):
    super().__init__()
    self.spectral_layers = nn.ModuleList([nn.LSTM(d, d // 2, batch_first=True, bidirectional=True),
                                          nn.GRU(d, d // 2, batch_first=True, bidirectional=True)])
    self.spectral_attention = LatentAttention(d)
    self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
    self.ffn = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Dropout(0.1), nn.Linear(4 * d, d))

  def forward(self, x):
    h = x
    for rnn in self.spectral_layers:
      h = h + rnn(h)[0]
    x = self.norm1(x + self.spectral_attention(h))
    return self.norm2(x + self.ffn(x))


class CLAReSNet(nn.Module):
  def __init__(self, classes, emb=256, c=64, layers=3, dropout=0.5):
    super().__init__()
    self.spatial_extractor = Spatial(emb, c)
    self.encoder_layers = nn.ModuleList(EncoderLayer(emb) for _ in range(layers))
    self.cross_attn = nn.MultiheadAttention(emb, 8, dropout=0.1, batch_first=True)
    self.cross_norm = nn.LayerNorm(emb)
    self.head = nn.Sequential(nn.LayerNorm(emb), nn.Dropout(dropout), nn.Linear(emb, emb // 2),
                              nn.GELU(), nn.Dropout(dropout / 2), nn.Linear(emb // 2, classes))

  def features(self, x):
    r = self.spatial_extractor(x)
    means = []
    for layer in self.encoder_layers:
      r = layer(r) + r
      means.append(r.mean(1))
    stack = torch.stack(means, 1)
    fused = self.cross_attn(stack[:, -1:], stack, stack, need_weights=False)[0][:, 0]
    return self.cross_norm(fused + means[-1])

  def forward(self, x):
    return self.head(self.features(x))


def check_parity() -> float:
  with np.load(REFERENCE) as z:
    state = {k[3:]: torch.from_numpy(z[k]) for k in z.files if k.startswith("sd/")}
    model = CLAReSNet(7, emb=64, c=16, layers=2)
    model.load_state_dict(state)
    model.eval()
    with torch.no_grad():
      return max(float((model(torch.from_numpy(z[f"x_T{t}"])) -
                        torch.from_numpy(z[f"logits_T{t}"])).abs().max()) for t in (30, 64, 7))


def median_seconds(fn, repeats, warmup=2):
  for _ in range(warmup):
    fn()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--threads", type=int, default=None)
  parser.add_argument("--repeats", type=int, default=10)
  parser.add_argument("--batch_size", type=int, default=16)
  parser.add_argument("--eval_batch_size", type=int, default=32)
  parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
  args = parser.parse_args()
  if args.threads:
    torch.set_num_threads(args.threads)
  error = check_parity()
  assert error < 1e-4, f"this PyTorch model is not the authors' (logit error {error})"
  model = CLAReSNet(16)
  optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-2)
  x = torch.randn(args.batch_size, 30, 11, 11)
  y = torch.randint(0, 16, (args.batch_size,))
  autocast = lambda: torch.autocast("cpu", torch.bfloat16, enabled=args.dtype == "bfloat16")

  def train_step():
    model.train()
    optimizer.zero_grad()
    with autocast():
      loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()

  train_s = median_seconds(train_step, args.repeats)
  model.eval()
  xe = torch.randn(args.eval_batch_size, 30, 11, 11)
  with torch.no_grad(), autocast():
    infer_s = median_seconds(lambda: model(xe), args.repeats)
  print(json.dumps({
      "measurement": "torch_reference", "parity_max_logit_error": error, "dtype": args.dtype,
      "batch_size": args.batch_size, "eval_batch_size": args.eval_batch_size,
      "train_samples_per_s": args.batch_size / train_s,
      "infer_samples_per_s": args.eval_batch_size / infer_s,
      "device": f"cpu x {torch.get_num_threads()} threads, torch {torch.__version__}",
      "aten_cpu_capability": torch.backends.cpu.get_cpu_capability(),
      "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL")}))


if __name__ == "__main__":
  main()
