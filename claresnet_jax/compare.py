"""Compares models over seeds on one config's scene and split (the paper's Tables III-IV).

  python -m claresnet_jax.compare --config configs/compare_salinas_a.py \
      --models rf,svm,xgboost,hybridsn,ssrn,spectralformer,claresnet --seeds 3 \
      --workdir runs/compare

Deep models train and are selected by `train.train_and_evaluate`; classical
ones fit the same split's centre-pixel spectra (svm_patches: whole patches).
Every run of a seed sees the same split and PCA. Writes DIR/comparison.md and
DIR/comparison.json, and each run's files under DIR/<model>/seed_<seed>/.
"""
from collections.abc import Mapping, Sequence
import json
import math
import pathlib
import time

from absl import app
from absl import flags
from absl import logging
import jax
import ml_collections
from ml_collections import config_flags
import numpy as np

from claresnet_jax import checkpoints, classical, cli, data, metrics, models, precision, train
from claresnet_jax import trained_runs, workdirs

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config with a `compare` field (configs/compare_*.py).",
    lock_config=True)
_MODELS = flags.DEFINE_list("models", None, "Models to compare, e.g. rf,svm,hybridsn,claresnet.")
_SEEDS = flags.DEFINE_integer("seeds", 3, "Runs per model, with seeds config.seed, seed + 1, ...")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for every run and the table.")
flags.mark_flags_as_required(["config", "models", "workdir"])


def available_models() -> list[str]:
  return sorted(set(models.MODELS) | set(classical.CLASSIFIERS))


def run_config(config: ml_collections.ConfigDict, name: str, seed: int
               ) -> ml_collections.ConfigDict:
  """Model `name`'s config for one seed: `config` with config.compare[name] applied.

  `model.kwargs` become the entry's `kwargs` (a classifier's hyperparameters
  for a classical model) and the entry's `train` settings are merged in.
  """
  settings = config.compare[name]
  run = config.copy_and_resolve_references()
  with run.unlocked():
    del run["compare"]
    run.model.name = name
    if "kwargs" in settings:
      run.model.kwargs = ml_collections.ConfigDict(settings.kwargs.to_dict())
    run.seed, run.num_runs = seed, 1
  run.lock()  # A misspelt setting in `train` raises instead of being ignored.
  run.update(settings.get("train", {}))
  return run


def check_models(config: ml_collections.ConfigDict, names: Sequence[str], num_classes: int,
                 scene_bands: int) -> None:
  """Raises ValueError, before anything trains, on a model that cannot run with `config`."""
  unknown = [n for n in names if n not in models.MODELS and n not in classical.CLASSIFIERS]
  if unknown:
    raise ValueError(f"--models: unknown model(s) {', '.join(unknown)}; available: "
                     f"{', '.join(available_models())}")
  missing = [n for n in names if n not in config.get("compare", {})]
  if missing:
    raise ValueError(
        f"--models {', '.join(missing)}: the config has no settings for them in config.compare; "
        "use a configs/compare_*.py config, or add them (configs/baselines.py has every model's)")
  dtype = config.model.kwargs.get("dtype", "float32")
  for name in names:
    run = run_config(config, name, config.seed)
    if name in classical.CLASSIFIERS:
      classical.create_classifier(name, run.seed, run.model.kwargs.to_dict())
      continue
    if dtype != "float32" and "dtype" not in run.model.kwargs:
      raise ValueError(f"--models {name} computes in float32 only: with "
                       f"config.model.kwargs.dtype={dtype!r} the table would compare CLAReSNet "
                       "at another precision; compare in float32")
    precision.check(run)
    model = models.create_model(name, num_classes, **run.model.kwargs)
    if hasattr(model, "check_input"):  # Models that take any patch have none.
      try:
        model.check_input(run.patch_size, run.pca.components or scene_bands)
      except ValueError as e:
        raise ValueError(f"--models {name} cannot take config.patch_size={run.patch_size} "
                         f"and config.pca.components={run.pca.components}: {e}") from e


def parameter_count(config: ml_collections.ConfigDict, num_classes: int,
                    scene_bands: int) -> int:
  """Parameters of the deep model of `run_config` output `config`, on its input shape."""
  model = models.create_model(config.model.name, num_classes, **config.model.kwargs)
  bands = config.pca.components or scene_bands
  x = jax.ShapeDtypeStruct((1, config.patch_size, config.patch_size, bands), np.float32)
  keys = {"params": jax.random.key(0), "dropout": jax.random.key(1)}
  variables = jax.eval_shape(lambda x: model.init(keys, x, train=False), x)
  return sum(p.size for p in jax.tree_util.tree_leaves(variables["params"]))


def run_deep(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> dict:
  """Trains (or resumes) one run and returns its test metrics and centroid distance."""
  train.train_and_evaluate(config, workdir)
  run = trained_runs.TrainedRun(workdir, with_dataset=True)
  dataset = run.dataset
  test = run.predict(dataset.cube, dataset.split.test, with_features=True)
  labels = dataset.labels["test"]
  return {
      **metrics.classification_metrics(labels, test["probabilities"].argmax(-1),
                                       dataset.scene.num_classes),
      "centroid_distance": metrics.centroid_distance(test["features"], labels),
  }


def run_classical(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> dict:
  """Fits the classifier of `run_config` output `config`; returns its test metrics."""
  workdirs.claim_workdir(config, workdir)
  dataset = workdirs.prepare_dataset(config, workdir)  # The deep runs' split and PCA.
  classifier = classical.create_classifier(config.model.name, config.seed,
                                           config.model.kwargs.to_dict())
  train_x, test_x = (classical.features(config.model.name, dataset.cube, pixels, config.patch_size)
                     for pixels in (dataset.split.train, dataset.split.test))
  predictions = classical.fit_predict(classifier, train_x, dataset.labels["train"], test_x)
  return metrics.classification_metrics(dataset.labels["test"], predictions,
                                        dataset.scene.num_classes)


def caption(config: ml_collections.ConfigDict, names: Sequence[str], seeds: Sequence[int],
            scene: data.Scene) -> str:
  """What the table measured: scene, split, input, seeds, and each deep model's training."""
  on_centre = [n for n in names if n in classical.CLASSIFIERS and n not in classical.ON_PATCHES]
  on_patch = [n for n in names if n in classical.ON_PATCHES]
  inputs = "".join(f"{', '.join(n)} on the {what}. " for n, what in (
      (on_centre, "centre pixel's spectrum"), (on_patch, "patch")) if n)
  own = {}  # the models whose input differs from the experiment config's
  for name in names:
    run = run_config(config, name, seeds[0])
    if (run.patch_size, run.pca.to_dict()) != (config.patch_size, config.pca.to_dict()):
      own.setdefault(_input(run, patches=name not in on_centre), []).append(name)
  inputs += "".join(f"{', '.join(n)} on {what}. " for what, n in own.items())
  training = []
  for name in names:
    if name in models.MODELS:
      run = run_config(config, name, seeds[0])
      epochs = f"{run.num_epochs} epoch{'s' * (run.num_epochs != 1)}"
      last = checkpoints.test_checkpoint(run) == "last"
      if not last and run.patience < run.num_epochs:
        epochs = (f"at most {epochs} (stopping after {run.patience} without a better "
                  "validation accuracy)")
      training.append(f"{name} {epochs} of batch {run.batch_size}"
                      + (", the last tested" if last else ""))
  return (f"{scene.name}, {config.split.protocol} split, {_input(config)}; mean ± std over "
          f"{len(seeds)} seeds "
          f"({', '.join(map(str, seeds))}). {inputs}"
          f"Training: {'; '.join(training) or 'none'}. "
          "Accuracies, kappa, MCC and ARI in percent; centroid distance in each model's "
          "feature space (n/a: no embedding).")


def _input(config: ml_collections.ConfigDict, patches: bool = True) -> str:
  """A run's input in words: its patches (where `patches`) of PCA components or bands."""
  p = config.pca
  what = ((f"{p.components} PCA components" if p.components else "the bands")
          + (", standardised" if p.standardize else ""))
  where = f"{config.patch_size}x{config.patch_size} patches of " if patches else ""
  return f"{where}{what} (fitted on {p.fit_on} pixels)"


def compare(config: ml_collections.ConfigDict, names: Sequence[str], num_seeds: int,
            workdir: str | pathlib.Path) -> dict:
  """Runs every model with every seed and writes comparison.md and comparison.json.

  Returns:
    The contents of comparison.json: the caption, and per model its
    {metric: {mean, std}}, parameter count (deep models), seconds and each
    seed's test metrics.
  """
  if num_seeds < 1:
    raise ValueError(f"--seeds={num_seeds}: need at least one seed")
  workdir = pathlib.Path(workdir).absolute()
  scene = workdirs.load_scene(config)  # The deep runs' scene, excluded classes left out.
  check_models(config, names, scene.num_classes, scene.cube.shape[-1])
  seeds = [config.seed + i for i in range(num_seeds)]
  parameters = {name: parameter_count(run_config(config, name, config.seed), scene.num_classes,
                                      scene.cube.shape[-1])
                for name in names if name in models.MODELS}
  logging.info("Parameters: %s", parameters)

  runs = {name: [] for name in names}
  seconds = dict.fromkeys(names, 0.0)
  start = time.perf_counter()
  for seed in seeds:
    for name in names:
      run, run_dir = run_config(config, name, seed), workdir / name / f"seed_{seed}"
      logging.info("%s, seed %d -> %s", name, seed, run_dir)
      tick = time.perf_counter()
      result = (run_classical if name in classical.CLASSIFIERS else run_deep)(run, run_dir)
      seconds[name] += time.perf_counter() - tick
      if jax.process_index() == 0:
        (run_dir / "test_metrics.json").write_text(json.dumps(result, indent=2) + "\n")
      runs[name].append(result)
  elapsed = time.perf_counter() - start

  summaries = {name: {"centroid_distance": (math.nan, math.nan),  # No embedding: n/a.
                      **metrics.summarize(runs[name])} for name in names}
  results = {
      "caption": caption(config, names, seeds, scene),
      "scene": scene.name,
      "split": config.split.protocol,
      "seeds": seeds,
      "elapsed_seconds": elapsed,
      "class_names": list(scene.class_names),
      "models": {name: {
          "metrics": {k: {"mean": _json_number(m), "std": _json_number(s)}
                      for k, (m, s) in summaries[name].items()},
          "parameters": parameters.get(name),
          "seconds": seconds[name],
          "runs": runs[name],
      } for name in names},
  }
  if jax.process_index() == 0:
    (workdir / "comparison.json").write_text(json.dumps(results, indent=2) + "\n")
    (workdir / "comparison.md").write_text(markdown(results, summaries))
  return results


def markdown(results: Mapping, summaries: Mapping[str, Mapping]) -> str:
  """comparison.md: the caption, the paper's table, parameter counts and times."""
  entries = results["models"]
  sizes = ", ".join(f"{name} {m['parameters']:,}" for name, m in entries.items()
                    if m["parameters"] is not None)
  timing = ", ".join(f"{name} {m['seconds']:.0f} s" for name, m in entries.items())
  return (f"{results['caption']}\n\n"
          f"{metrics.summary_table(summaries, results['class_names'])}\n"
          f"Parameters: {sizes or 'none (classical models only)'}.\n\n"
          f"Wall time {results['elapsed_seconds'] / 60:.1f} min ({timing}).\n")


def _json_number(x: float) -> float | None:
  return None if math.isnan(x) else x


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  compare(_CONFIG.value, _MODELS.value, _SEEDS.value, _WORKDIR.value)


if __name__ == "__main__":
  cli.run(main)
