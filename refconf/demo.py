"""The main job: CONF against a Gaussian baseline on data that needs no download.

Trains on three 2-D toy densities and on scikit-learn's 8x8 digits (64-dim, 3 seeds;
fit after the logit transform of image flows, NLL reported on the (0, 1) pixel scale),
then writes a report folder:

* ``metrics.json``: test NLL in nats per example (digits: mean and 2 std over seeds),
  integrals of the learned 2-D densities over [-10, 10]^2 (should be 1), wall time,
  settings;
* ``learning_curves.png``: train/validation NLL per epoch, on the scale of the reported
  numbers (data space for the toys; the (0, 1) pixel scale for the digits, the logit's
  log-det added as in the table);
* ``density_<name>.png``: true vs learned log-density (nats, one colour scale) of each toy
  density, with test samples overlaid;
* ``digits_samples.png``: a grid of samples from the digits model;
* ``digits_image_samples.png``: samples of the multi-scale 2-D CONF image model
  (:func:`refconf.conf_image`) fitted to the digits as 1 x 8 x 8 images (seed 0), whose
  test bits per dimension (17 grey levels) are reported beside those of the tabular CONF
  and the Gaussian (``docs/theory/image-flows.md``).
"""

import json
import os
import time
import warnings

import numpy as onp
from sklearn.mixture import GaussianMixture

from .bijectors import Logit
from .data import (
    DIGITS_LOG_DET_SCALING,
    bits_per_dim,
    load_digits_logit,
    sample_toy,
    toy_log_density,
)
from .engines import nll_and_grad
from .estimator import ConfDensity
from .image_flows import conf_image
from .params import atomic_write

__all__ = ["TOY_NAMES", "report_files", "run_demo"]

TOY_NAMES = ("two_moons", "checkerboard", "rings")
DIGITS_LOGIT_LAMBDA = 0.05
GRID_LIMIT = 4.0
MASS_LIMIT = 10.0
LOG_DENSITY_RANGE = 12.0  # nats below the peak shown by the density images
NO_OFFSET = {"train": 0.0, "val": 0.0}


def _settings(quick):
    if quick:
        return {"toy_n": 2000, "toy_epochs": 2, "digits_epochs": 2, "seeds": (0, 1),
                "toy_model": {"steps": 2, "m": 1, "hidden": (16,)},
                "digits_model": {"steps": 2, "m": 1, "hidden": (32,)},
                "image_epochs": 1, "image_model": {"steps_per_level": 1, "hidden": (4,)}}
    return {"toy_n": 6000, "toy_epochs": 25, "digits_epochs": 40, "seeds": (0, 1, 2),
            "toy_model": {"steps": 4, "m": 2, "hidden": (64, 64)},
            "digits_model": {"steps": 4, "m": 1, "hidden": (64, 64)},
            "image_epochs": 6, "image_model": {"steps_per_level": 2, "hidden": (8,)}}


def _gaussian(train):
    return GaussianMixture(1, covariance_type="full", random_state=0).fit(train)


def _grid(n=200, limit=GRID_LIMIT):
    axis = onp.linspace(-limit, limit, n)
    xx, yy = onp.meshgrid(axis, axis)
    return onp.column_stack([xx.ravel(), yy.ravel()]), axis


def _toy(name, settings, seed, verbose):
    n = settings["toy_n"]
    train = sample_toy(name, n, random_state=seed)
    val = sample_toy(name, n // 10, random_state=seed + 1)
    test = sample_toy(name, n // 4, random_state=seed + 2)
    est = ConfDensity(**settings["toy_model"], epochs=settings["toy_epochs"], batch_size=256,
                      learning_rate=2e-3, lr_decay=0.97, patience=8, random_state=seed,
                      verbose=verbose)
    est.fit(train, X_val=val)
    gauss = _gaussian(train)
    grid, axis = _grid()
    log_p = est.score_samples(grid)
    # the normalisation check integrates far beyond the plotted square, where mass leaks
    wide, wide_axis = _grid(500, MASS_LIMIT)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # far tails overflow to -inf
        mass = onp.exp(est.score_samples(wide)).sum() * (wide_axis[1] - wide_axis[0]) ** 2
    return est, test, {
        "conf_test_nll": float(-est.score_samples(test).mean()),
        "gaussian_test_nll": float(-gauss.score_samples(test).mean()),
        "true_test_nll": float(-toy_log_density(name, test).mean()),
        "learned_mass_on_grid": float(mass),
        "epochs": len(est.history_),
    }, (grid, axis, log_p)


def report_files():
    """Names of the files :func:`run_demo` writes into its folder."""
    return ["metrics.json", "learning_curves.png", "digits_samples.png",
            "digits_image_samples.png",
            *(f"density_{name}.png" for name in TOY_NAMES)]


def _save(fig, path):
    """Write ``fig`` as PNG atomically, and free it."""
    import matplotlib.pyplot as plt

    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)


def _plot_density(path, name, axis, true_log_p, learned_log_p, data):
    """True and learned log-density images on one colour scale in nats (the lowest
    ``LOG_DENSITY_RANGE`` nats below the peak are shown), with ``data`` overlaid."""
    import matplotlib.pyplot as plt

    n = axis.size
    top = float(max(true_log_p.max(), learned_log_p.max()))
    fig, axes = plt.subplots(1, 2, figsize=(9.6, 4.2), sharey=True, layout="constrained")
    for ax, log_p, title in [(axes[0], true_log_p, "true"), (axes[1], learned_log_p, "CONF")]:
        image = ax.imshow(log_p.reshape(n, n), origin="lower", cmap="magma",
                          vmin=top - LOG_DENSITY_RANGE, vmax=top,
                          extent=[axis[0], axis[-1], axis[0], axis[-1]])
        ax.scatter(data[:, 0], data[:, 1], s=1.5, c="cyan", alpha=0.5, linewidths=0,
                   label=f"{len(data)} test samples")
        ax.set_xlim(axis[0], axis[-1])
        ax.set_ylim(axis[0], axis[-1])
        ax.set_title(f"{name}: {title} log-density")
        ax.set_xlabel("$x_1$ (data units)")
    axes[0].set_ylabel("$x_2$ (data units)")
    axes[1].legend(loc="upper right", fontsize="small", markerscale=6)
    fig.colorbar(image, ax=axes, shrink=0.9, label=r"$\log p(x)$ (nats)")
    _save(fig, path)


def _plot_curves(path, curves):
    """``curves``: label -> (history, offset, test NLL); ``offset`` is added to every loss so
    that the curve is on the scale of the reported test NLL (e.g. the digits' logit log-det),
    which is drawn as a dashed line."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, len(curves), figsize=(4 * len(curves), 3.4),
                             layout="constrained")
    for ax, (label, (history, offset, test_nll)) in zip(onp.atleast_1d(axes), curves.items()):
        epochs = [h["epoch"] for h in history]
        ax.plot(epochs, [h["train_loss"] + offset["train"] for h in history], label="train")
        if history and history[0].get("val_loss") is not None:
            ax.plot(epochs, [h["val_loss"] + offset["val"] for h in history],
                    label="validation")
        ax.axhline(test_nll, color="gray", linestyle="--", label="test (metrics.json)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(label, fontsize="medium")
        ax.set_xlabel("epoch")
        ax.set_ylabel("NLL (nats per example)")
        ax.legend()
    fig.suptitle("Learning curves, on the scale of the test NLL in metrics.json")
    _save(fig, path)


def _plot_digits(path, samples, title="CONF samples, 8x8 digits"):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(4, 8, figsize=(8, 4.2))
    for ax, image in zip(axes.ravel(), samples):
        ax.imshow(onp.clip(image.reshape(8, 8), 0, 1), cmap="gray_r", vmin=0, vmax=1)
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)


def _digits_images(out, settings, seed):
    """The multi-scale 2-D CONF on the digits as 1 x 8 x 8 images (one seed): test bits
    per dimension on the 17 grey levels and a sample grid."""
    from .train import fit

    (train, _), (val, _), (test, log_det_test) = load_digits_logit(
        random_state=seed, lam=DIGITS_LOGIT_LAMBDA)
    model = conf_image((1, 8, 8), levels=2, **settings["image_model"], random_state=seed)
    params = model.init_params(train, random_state=seed)

    def loss(p, batch):
        return -onp.mean(model.build(p).log_prob(batch))

    fitted = fit(loss, params, train, val, epochs=settings["image_epochs"], batch_size=64,
                 learning_rate=2e-3, random_state=seed, progress=False,
                 gradient=lambda p, batch: nll_and_grad(model, p, batch))
    flow = model.build(fitted.params)
    nll = float(-onp.mean(flow.log_prob(test)))
    samples = Logit(DIGITS_LOGIT_LAMBDA).inverse(flow.sample(32, random_state=seed))[0]
    _plot_digits(os.path.join(out, "digits_image_samples.png"), samples,
                 "2-D CONF (multi-scale) samples, 8x8 digits as images")
    return float(bits_per_dim(nll, 64, onp.mean(log_det_test) + DIGITS_LOG_DET_SCALING))


def run_demo(out, quick=False, seed=0, verbose=True, log=print):
    """Run the main job and write the report into the folder ``out``.

    Returns the metrics dict that is also written to ``out/metrics.json``.
    """
    import matplotlib

    matplotlib.use("Agg")
    os.makedirs(out, exist_ok=True)
    settings = _settings(quick)
    start = time.perf_counter()
    metrics = {"toy": {}, "digits": {}, "settings": dict(settings)}
    curves = {}
    for name in TOY_NAMES:
        log(f"[toy] {name}: fitting CONF ...")
        est, test, result, (grid, axis, log_p) = _toy(name, settings, seed, verbose)
        metrics["toy"][name] = result
        curves[f"toy {name} (data space)"] = (est.history_, NO_OFFSET,
                                              result["conf_test_nll"])
        _plot_density(os.path.join(out, f"density_{name}.png"), name, axis,
                      toy_log_density(name, grid), log_p, test)

    conf_nll, gauss_nll = [], []
    logit = Logit(DIGITS_LOGIT_LAMBDA)
    for s in settings["seeds"]:
        log(f"[digits] seed {seed + s}: fitting CONF (64-dim) ...")
        # fit in logit space; adding the logit's log-det gives NLL on the (0, 1) pixel scale
        (train, log_det_train), (val, log_det_val), (test, log_det_test) = load_digits_logit(
            random_state=seed + s, lam=DIGITS_LOGIT_LAMBDA)
        est = ConfDensity(**settings["digits_model"], epochs=settings["digits_epochs"],
                          batch_size=128, learning_rate=1e-3, patience=5,
                          random_state=seed + s, verbose=verbose).fit(train, X_val=val)
        conf_nll.append(float(-(est.score_samples(test) + log_det_test).mean()))
        gauss_nll.append(float(-(_gaussian(train).score_samples(test) + log_det_test).mean()))
        if s == settings["seeds"][0]:
            # the logit's log-det moves the logit-space losses to the pixel scale
            curves["digits CONF (pixels in (0, 1))"] = (est.history_, {
                "train": -float(log_det_train.mean()), "val": -float(log_det_val.mean())},
                conf_nll[-1])
            _plot_digits(os.path.join(out, "digits_samples.png"),
                         logit.inverse(est.sample(32, random_state=seed))[0])
    for label, values in [("conf", conf_nll), ("gaussian", gauss_nll)]:
        metrics["digits"][label] = {
            "test_nll_per_seed": values, "mean": float(onp.mean(values)),
            "two_std": float(2 * onp.std(values, ddof=1)) if len(values) > 1 else 0.0}
    log(f"[digits] seed {seed}: fitting the multi-scale 2-D CONF (1 x 8 x 8 images) ...")
    bits = {label: float(bits_per_dim(metrics["digits"][label]["test_nll_per_seed"][0], 64,
                                      DIGITS_LOG_DET_SCALING)) for label in ("conf", "gaussian")}
    metrics["digits_bits_per_dim"] = {
        "conf_image": _digits_images(out, settings, seed), **bits,
        "units": "test bits per dimension on the 17 grey levels (0..16) of the dequantised "
                 f"digits, seed {seed}"}
    metrics["digits"]["units"] = (
        "nats per example on dequantised pixels scaled to (0, 1); models fit after a logit "
        f"transform with lambda = {DIGITS_LOGIT_LAMBDA}, whose log-det is included")
    _plot_curves(os.path.join(out, "learning_curves.png"), curves)
    metrics["wall_seconds"] = time.perf_counter() - start
    with atomic_write(os.path.join(out, "metrics.json")) as f:
        f.write(json.dumps(metrics, indent=2).encode())
    log(summary_table(metrics))
    return metrics


def summary_table(metrics):
    """The short text summary printed at the end of the demo."""
    lines = [f"{'data':<14}{'CONF NLL':>12}{'Gaussian NLL':>14}{'true NLL':>10}{'grid mass':>11}"]
    for name, r in metrics["toy"].items():
        lines.append(f"{name:<14}{r['conf_test_nll']:>12.3f}{r['gaussian_test_nll']:>14.3f}"
                     f"{r['true_test_nll']:>10.3f}{r['learned_mass_on_grid']:>11.4f}")
    d = metrics["digits"]
    lines.append(f"{'digits (64-d)':<14}{d['conf']['mean']:>7.2f}±{d['conf']['two_std']:<4.2f}"
                 f"{d['gaussian']['mean']:>9.2f}±{d['gaussian']['two_std']:<4.2f}")
    b = metrics["digits_bits_per_dim"]
    lines.append(f"digits bits/dim (first seed): 2-D CONF {b['conf_image']:.3f}, CONF "
                 f"{b['conf']:.3f}, Gaussian {b['gaussian']:.3f}")
    lines.append(f"test NLL in nats per example; digits: mean ± 2 std over "
                 f"{len(d['conf']['test_nll_per_seed'])} seeds; wall time "
                 f"{metrics['wall_seconds']:.0f} s")
    return "\n".join(lines)
