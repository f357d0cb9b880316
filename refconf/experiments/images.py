"""Image experiments: 2-D CONF (and flattened-vector baselines) in bits per dimension.

``refconf images --datasets digits [mnist cifar10] --models conf_image conf gaussian``
(or :func:`run_images`) trains every model on every image set for several trials through
the experiments runner (:func:`refconf.experiments.runner.run_trials`: one result file
per finished trial, serial, joblib or Dask executors) and reports the test bits per
dimension on the pixel scale, mean ± 2 std (ddof = 1) over trials, next to a sample grid
(PNG) of each model's first trial.

Datasets: ``digits`` (scikit-learn's 8 x 8 images, 17 grey levels, on every machine),
``mnist`` (IDX files under ``--data-dir``, :func:`refconf.data.load_mnist`) and
``cifar10`` (the python batches, ``--allow-pickle``). Pixels are dequantised and
logit-transformed (:func:`refconf.data.dequantize_logit`); the preprocessing's
log-determinant is the correction, so a trial's ``test_nll`` is in nats on the
dequantised pixel scale and ``bits/dim = test_nll / (D ln 2)``
(``docs/theory/image-flows.md``).
"""

import functools
import json
import math
import os

import autograd.numpy as anp
import numpy as onp
from scipy.special import expit

from ..baselines import model_from_spec
from ..data import dequantize_logit, load_cifar10, load_mnist
from ..engines import nll_and_grad
from ..image_flows import ImageFlowModel, conf_image
from ..params import save_model
from ..storage import atomic_write
from ..train import fit
from ..version import __version__
from .data import Dataset
from .runner import RunnerOptions, Task, TrialStore, run_trials, trial_line
from .trials import MODELS, ModelEntry, TrialSpec

__all__ = ["IMAGE_DATASETS", "IMAGE_MODELS", "image_flow_trial", "load_image_dataset",
           "register", "run_images", "sample_grid"]

#: Name -> (image shape, grey levels, the logit's lambda).
IMAGE_DATASETS = {"digits": ((1, 8, 8), 17, 0.05), "mnist": ((1, 28, 28), 256, 1e-6),
                  "cifar10": ((3, 32, 32), 256, 0.05)}


def _split_digits(seed, lam):
    from sklearn.datasets import load_digits

    pixels = load_digits().data.astype(onp.int64)
    rng = onp.random.default_rng(seed)
    order = rng.permutation(len(pixels))
    n_test, n_val = round(0.2 * len(pixels)), round(0.1 * len(pixels))
    test, val, train = onp.split(pixels[order], [n_test, n_test + n_val])
    return tuple(dequantize_logit(p, lam, rng, levels=17) for p in (train, val, test))


def load_image_dataset(name, seed=0, data_dir=None, subsample=None, allow_pickle=False):
    """A :class:`~refconf.experiments.data.Dataset` of flattened, dequantised,
    logit-transformed images; ``correction`` is minus the test rows' preprocessing
    log-determinant. ``subsample`` keeps the first N rows of every split."""
    if name not in IMAGE_DATASETS:
        raise ValueError(f"unknown image dataset {name!r}; expected one of {tuple(IMAGE_DATASETS)}")
    shape, levels, lam = IMAGE_DATASETS[name]
    if name == "digits":
        splits = _split_digits(seed, lam)
    elif data_dir is None:
        raise ValueError(f"{name} needs --data-dir (the folder of its files)")
    elif name == "mnist":
        splits = load_mnist(data_dir, lam=lam, random_state=seed)
    else:
        splits = load_cifar10(data_dir, lam=lam, random_state=seed, allow_pickle=allow_pickle)
    if subsample is not None:
        splits = tuple((z[:subsample], ld[:subsample]) for z, ld in splits)
    (train, _), (val, _), (test, ld_test) = splits
    return Dataset((train, val, test), -ld_test, {
        "name": name, "shape": list(shape), "levels": levels, "logit_lambda": lam,
        "sizes": [len(train), len(val), len(test)], "subsample": subsample,
        "source": "scikit-learn 8x8 digits" if name == "digits" else os.fspath(data_dir)})


def image_flow_trial(spec, dataset, progress=False):
    """Train :func:`refconf.conf_image` (``spec.model_kwargs``, ``random_state=spec.seed``)
    with :func:`refconf.train.fit` and the explicit gradient pass
    (:func:`refconf.engines.nll_and_grad`); score the test split."""
    train, val, test = dataset.splits
    model = conf_image(**spec.model_kwargs, random_state=spec.seed)
    rng = onp.random.default_rng(spec.seed)
    rows = onp.sort(rng.choice(len(train), size=min(len(train), 512), replace=False))
    params = model.init_params(train[rows], random_state=spec.seed)

    def loss(p, batch):
        return -anp.mean(model.build(p).log_prob(batch))

    fitted = fit(loss, params, train, val, random_state=spec.seed, progress=progress,
                 gradient=lambda p, batch: nll_and_grad(model, p, batch), **spec.training)
    log_p = model.build(fitted.params).log_prob(test)
    nll = float(-onp.mean(log_p - dataset.correction))
    return {"test_nll": nll if math.isfinite(nll) else None,
            "epochs": len(fitted.history), "best_epoch": fitted.best_epoch,
            "best_val_nll": fitted.best_val_loss, "stopped_reason": fitted.stopped_reason,
            "engine": "numpy", "params": fitted.params, "spec": model.spec}


def _check_image(kwargs, dim):
    if "shape" not in kwargs:
        raise ValueError("conf_image needs the image shape (C, H, W) in its arguments; "
                         "it runs on the image datasets (refconf images)")
    if int(onp.prod(kwargs["shape"])) != dim:
        raise ValueError(f"image shape {kwargs['shape']} does not hold {dim} values")
    conf_image(**kwargs)


#: The models of the image experiments: 2-D CONF, and tabular models on flattened images.
IMAGE_MODELS = {
    "conf_image": ModelEntry("2-D CONF", image_flow_trial, _check_image),
    "glow_image": ModelEntry("Glow-style multi-scale", image_flow_trial, _check_image),
    "realnvp_image": ModelEntry("Real NVP-style multi-scale", image_flow_trial, _check_image),
    **{name: MODELS[name] for name in ("conf", "realnvp", "glow", "gaussian")}}
#: The multi-scale image models and their fixed builder arguments.
_IMAGE_FLOWS = {"conf_image": {"coupling": "conf"},
                "glow_image": {"coupling": "affine", "mixing": "1x1"},
                "realnvp_image": {"coupling": "affine", "mixing": "reverse"}}


def sample_grid(path, samples, shape, levels, lam, columns=8, zoom=4):
    """Write ``samples`` (rows in logit space) as a PNG grid of images, atomically:
    ``x = (sigmoid(z) - lam) / (1 - 2 lam) levels`` floored to the grey levels, each
    pixel drawn as ``zoom x zoom`` screen pixels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    C, H, W = shape
    y = (expit(samples) - lam) / (1 - 2 * lam)
    pixels = onp.clip(onp.floor(y * levels), 0, levels - 1) / (levels - 1)
    images = pixels.reshape(-1, C, H, W).transpose(0, 2, 3, 1)
    rows = -(-len(images) // columns)
    grid = onp.ones((rows * (H + 1) + 1, columns * (W + 1) + 1, C))
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        grid[1 + r * (H + 1): 1 + r * (H + 1) + H, 1 + c * (W + 1): 1 + c * (W + 1) + W] = image
    grid = onp.repeat(onp.repeat(grid, zoom, axis=0), zoom, axis=1)
    with atomic_write(path) as f:
        plt.imsave(f, grid[..., 0] if C == 1 else grid, cmap="gray", vmin=0, vmax=1,
                   format="png")


def _saver(out, datasets):
    def save(spec, model, record):
        os.makedirs(os.path.join(out, "models"), exist_ok=True)
        stem = f"{spec.dataset}-{spec.model}-seed{spec.seed}"
        save_model(os.path.join(out, "models", stem + ".npz"), model["params"], model["spec"])
        builder = ImageFlowModel if model["spec"]["model"] == "conf_image" else model_from_spec
        info = datasets[spec.dataset].info
        samples = builder(model["spec"]).build(model["params"]).sample(64, random_state=spec.seed)
        sample_grid(os.path.join(out, stem + ".png"), onp.asarray(samples), info["shape"],
                    info["levels"], info["logit_lambda"])
    return save


def _model_kwargs(name, shape, architecture):
    if name in _IMAGE_FLOWS:
        return {"shape": list(shape), **architecture["image"], **_IMAGE_FLOWS[name],
                **architecture.get(name, {})}
    return dict(architecture.get(name, {}))


def _summary(records, dim):
    bits = [r["test_nll"] / (dim * math.log(2)) for r in records if r["test_nll"] is not None]
    return {"bits_per_dim": float(onp.mean(bits)) if bits else None,
            "two_std": 2 * float(onp.std(bits, ddof=1)) if len(bits) > 1 else None,
            "finite_trials": len(bits), "trials": len(records),
            "seconds": float(sum(r["seconds"] for r in records))}


def run_images(datasets=("digits",), models=("conf_image", "gaussian"), trials=3, seed=0,
               out="reports/images", data_dir=None, subsample=None, allow_pickle=False,
               training=None, architecture=None, options=None, log=print):
    """Run the image experiments; returns ``{"cells": [...], "markdown": str}`` and
    writes ``OUT/images.json``, ``OUT/images.md``, ``OUT/trials/`` (one file per trial),
    ``OUT/models/`` and a sample grid ``OUT/<dataset>-<model>-seed<seed>.png`` per trial.

    ``training``: :func:`refconf.train.fit` settings (default 20 epochs, batch 64, Adam
    1e-3, patience 5); ``architecture``: per model name, the builder's arguments, and
    under ``"image"`` those of every multi-scale model (default: 2 levels x 2 steps, 16
    hidden channels; ``conf_image``: m = 2; ``conf``: 4 steps, hidden (64,)). ``log`` receives one line per finished trial.
    """
    unknown = sorted(set(models) - set(IMAGE_MODELS))
    if unknown:
        raise ValueError(f"unknown image model(s) {unknown}; expected some of {tuple(IMAGE_MODELS)}")
    training = {"epochs": 20, "batch_size": 64, "learning_rate": 1e-3, "patience": 5,
                **(training or {})}
    architecture = {"image": {"levels": 2, "steps_per_level": 2, "hidden": [16]},
                    "conf_image": {"m": 2}, "conf": {"steps": 4, "hidden": [64]},
                    **(architecture or {})}
    loaded = {name: load_image_dataset(name, seed, data_dir, subsample, allow_pickle)
              for name in datasets}
    tasks = []
    for name, dataset in loaded.items():
        shape = dataset.info["shape"]
        for model in models:
            kwargs = _model_kwargs(model, shape, architecture)
            IMAGE_MODELS[model].check(kwargs, int(onp.prod(shape)))
            for trial in range(int(trials)):
                spec = TrialSpec(name, model, trial, seed + trial, kwargs,
                                 {} if not IMAGE_MODELS[model].architecture else training,
                                 {**dataset.info, "data_seed": seed})
                tasks.append(Task(spec, IMAGE_MODELS[model].run, dataset))
    records = run_trials(tasks, options or RunnerOptions(progress=False),
                         TrialStore(os.path.join(out, "trials")), _saver(out, loaded), log=log,
                         describe=functools.partial(trial_line, models=IMAGE_MODELS))
    cells = []
    for name, dataset in loaded.items():
        dim = int(onp.prod(dataset.info["shape"]))
        for model in models:
            mine = [r for t, r in zip(tasks, records) if t.spec.dataset == name
                    and t.spec.model == model]
            cells.append({"dataset": name, "model": model, **_summary(mine, dim)})
    markdown = _markdown(cells, loaded)
    os.makedirs(out, exist_ok=True)
    with atomic_write(os.path.join(out, "images.json")) as f:
        f.write(json.dumps({"refconf_version": __version__, "cells": cells,
                            "training": training, "architecture": architecture,
                            "datasets": {k: d.info for k, d in loaded.items()}},
                           indent=1).encode("utf-8"))
    with atomic_write(os.path.join(out, "images.md")) as f:
        f.write(markdown.encode("utf-8"))
    return {"cells": cells, "markdown": markdown}


def _markdown(cells, loaded):
    lines = ["| dataset | model | bits/dim (mean ± 2 std) | trials | seconds |",
             "|---|---|---|---|---|"]
    for c in cells:
        value = "—" if c["bits_per_dim"] is None else f"{c['bits_per_dim']:.3f}"
        if c["two_std"] is not None:
            value += f" ± {c['two_std']:.3f}"
        lines.append(f"| {c['dataset']} | {IMAGE_MODELS[c['model']].display} | {value} | "
                     f"{c['finite_trials']}/{c['trials']} | {c['seconds']:.0f} |")
    notes = [f"{k}: {d.info['sizes']} train/val/test images of {d.info['shape']}, "
             f"{d.info['levels']} grey levels, logit lambda {d.info['logit_lambda']}"
             for k, d in loaded.items()]
    return "\n".join(lines + [""] + notes) + "\n"


def _command(args):
    result = run_images(
        args.datasets, args.models, trials=args.trials, seed=args.seed, out=args.out,
        data_dir=args.data_dir, subsample=args.subsample, allow_pickle=args.allow_pickle,
        training={k: v for k, v in (("epochs", args.epochs), ("batch_size", args.batch_size),
                                    ("learning_rate", args.lr)) if v is not None},
        architecture={"image": {"levels": args.levels, "steps_per_level": args.steps,
                                "hidden": list(args.hidden)},
                      "conf_image": {"m": args.m, "kind": args.kind}},
        options=RunnerOptions(executor=args.executor, jobs=args.jobs, progress=False))
    print(result["markdown"])
    return 0


def register(subparsers):
    """Add ``refconf images`` to an argparse subparsers object (``handler`` set)."""
    parser = subparsers.add_parser(
        "images", help="image experiments: 2-D CONF in bits/dim with sample grids",
        description="Train the multi-scale 2-D CONF (and tabular baselines on flattened "
                    "images) on digits, MNIST or CIFAR-10; report test bits/dim (mean ± 2 "
                    "std over trials) and write OUT/images.md, OUT/images.json, "
                    "OUT/trials/, OUT/models/ and a PNG sample grid per trial.")
    parser.add_argument("--datasets", nargs="+", default=["digits"],
                        choices=list(IMAGE_DATASETS), metavar="NAME",
                        help=f"some of {' '.join(IMAGE_DATASETS)}")
    parser.add_argument("--models", nargs="+", default=["conf_image", "gaussian"],
                        choices=list(IMAGE_MODELS), metavar="NAME",
                        help=f"some of {' '.join(IMAGE_MODELS)}")
    parser.add_argument("--data-dir", metavar="DIR", help="folder of the MNIST IDX files or "
                        "the CIFAR-10 python batches")
    parser.add_argument("--allow-pickle", action="store_true",
                        help="allow reading the CIFAR-10 python batches (pickles)")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--subsample", type=int, metavar="N",
                        help="keep the first N images of every split")
    parser.add_argument("--epochs", type=int, help="maximum epochs (default 20)")
    parser.add_argument("--batch-size", type=int, help="minibatch size (default 64)")
    parser.add_argument("--lr", type=float, help="Adam learning rate (default 1e-3)")
    parser.add_argument("--levels", type=int, default=2, help="scales of 2-D CONF")
    parser.add_argument("--steps", type=int, default=2, help="steps per level")
    parser.add_argument("--m", type=int, default=2, help="combined layers per step")
    parser.add_argument("--hidden", type=int, nargs="+", default=[16],
                        help="hidden channels of the conditioner")
    parser.add_argument("--kind", choices=["symmetric", "circular"], default="symmetric")
    parser.add_argument("--executor", choices=["serial", "joblib", "dask"], default="serial")
    parser.add_argument("--jobs", type=int, metavar="N")
    parser.add_argument("--out", default="reports/images", help="output folder")
    parser.set_defaults(handler=_command)
