"""The benchmark command: its figures are consistent with what they measure."""
import json
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
TINY = ["--config.model.kwargs.emb_dim=16", "--config.model.kwargs.base_channels=8",
        "--config.model.kwargs.num_layers=1"]


def _bench(*args: str) -> list[dict]:
  result = subprocess.run(
      [sys.executable, "-m", "claresnet_jax.bench", "--config", "configs/ip.py", "--json",
       "--repeats", "2", "--warmup", "1", *args],
      cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def test_model_figures():
  rows = _bench("--batch_size", "4,8", "--eval_batch_size", "8,8", "--bands", "6",
                "--patch_size", "5", *TINY)
  assert [r["batch_size"] for r in rows] == [4, 8]
  for row in rows:
    assert row["train_samples_per_s"] > 0 and row["infer_samples_per_s"] > 0
    assert row["compile_s"] > 0 and row["peak_memory_bytes"] > 0
    assert "cpu" in row["device"] and "jax" in row["device"]
    # A training step runs the forward pass and a backward pass of about twice its cost.
    assert 2 < row["flops_per_sample"] / row["infer_flops_per_sample"] < 5
    assert row["train_gflops"] == pytest.approx(
        row["train_samples_per_s"] * row["flops_per_sample"] / 1e9)


def test_latent_attention_cost_grows_slower_than_full_attention():
  small, large = _bench("--mode", "scaling", "--lengths", "128,1024")
  assert (small["num_latents"], large["num_latents"]) == (48, 64)
  full = large["full_flops_per_sequence"] / small["full_flops_per_sequence"]
  latent = large["msla_flops_per_sequence"] / small["msla_flops_per_sequence"]
  # 8 times the bands: full attention's T x T scores make its cost grow well beyond
  # 8-fold; the latent attention's T x L scores (L: 48 -> 64) and per-token layers
  # keep it close to linear.
  assert full > 15
  assert latent < 8
