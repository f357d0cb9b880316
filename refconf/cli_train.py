"""``refconf train``: settings from the flags or, with ``--resume``, from the checkpoint;
paths checked before the data are read; Ctrl-C tells how to resume.

A checkpoint written by :meth:`refconf.ConfDensity.fit` records the estimator's settings
(``metadata["estimator"]``). Resuming takes all of them from there: a flag that changes the
model (architecture, precision, seed) is refused, a training flag that differs (epochs,
batch size, learning rate, decay, patience, engine) overrides the checkpoint's value and is
named in a message.
"""

import os
import shlex
import sys

from .cli_support import CommandError, Interrupted, OutputPath, check_outputs, is_interrupt

__all__ = ["estimator_settings", "resume_command", "resumed_settings", "train"]

#: Option -> ConfDensity parameter; the model options cannot change on a resume.
MODEL_FLAGS = {"--steps": "steps", "--m": "m", "--hidden": "hidden", "--kind": "kind",
               "--mixing": "mixing", "--spectrum": "spectrum", "--activation": "activation",
               "--no-actnorm": "actnorm", "--dtype": "dtype", "--seed": "random_state",
               "--alpha-init": "alpha_init", "--no-whiten": "whiten",
               "--shrinkage": "shrinkage", "--defensive": "defensive"}
TRAINING_FLAGS = {"--epochs": "epochs", "--batch-size": "batch_size", "--lr": "learning_rate",
                  "--lr-decay": "lr_decay", "--patience": "patience", "--engine": "engine",
                  "--min-delta": "min_delta", "--validation-fraction": "validation_fraction"}


def estimator_settings(args):
    """The :class:`refconf.ConfDensity` parameters that the flags of ``args`` give."""
    return {"steps": args.steps, "m": args.m, "hidden": tuple(args.hidden), "kind": args.kind,
            "mixing": args.mixing, "spectrum": args.spectrum, "activation": args.activation,
            "actnorm": not args.no_actnorm, "dtype": args.dtype, "random_state": args.seed,
            "epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": args.lr,
            "lr_decay": args.lr_decay, "patience": args.patience, "engine": args.engine,
            "alpha_init": args.alpha_init, "whiten": not args.no_whiten,
            "shrinkage": args.shrinkage, "defensive": args.defensive,
            "min_delta": args.min_delta, "validation_fraction": args.validation_fraction}


def _given(argv, flag):
    return any(token == flag or token.startswith(flag + "=") for token in argv)


def _show(param, value):
    if param == "hidden":
        return ",".join(map(str, value))
    return value


def _saved_run(path):
    """``(settings, epoch, finished)`` of the run in the checkpoint ``path``."""
    from .params import load_checkpoint

    if not os.path.isfile(path):
        raise CommandError(f"--resume: no checkpoint {path} to resume from (drop --resume to "
                           "start a new run)")
    state = load_checkpoint(path)
    settings = (state.get("metadata") or {}).get("estimator")
    if not isinstance(settings, dict):
        raise CommandError(f"--resume: {path} does not record the settings of its run (it "
                           "was not written by refconf train or ConfDensity.fit)")
    finished = bool(state.get("events")) and state["events"][-1].get("event") == "early_stopping"
    return dict(settings, hidden=tuple(settings["hidden"])), state.get("epoch", 0), finished


def resumed_settings(args, saved):
    """The settings of a resumed run: ``saved`` with the training flags given in
    ``args.argv`` applied; returns ``(settings, overridden)`` where ``overridden`` names
    each changed flag. Raises CommandError for a model flag that contradicts ``saved``."""
    wanted = estimator_settings(args)
    for flag, param in MODEL_FLAGS.items():
        if _given(args.argv, flag) and wanted[param] != saved.get(param):
            raise CommandError(
                f"{flag} {_show(param, wanted[param])} contradicts the checkpoint "
                f"{args.checkpoint} ({param} = {_show(param, saved.get(param))}); the model "
                "is fixed by the checkpoint: drop the flag, or start a new run without "
                "--resume")
    settings, overridden = dict(saved), []
    for flag, param in TRAINING_FLAGS.items():
        if _given(args.argv, flag) and wanted[param] != saved.get(param):
            overridden.append(f"{flag} {wanted[param]} (was {saved.get(param)})")
            settings[param] = wanted[param]
    return settings, overridden


def resume_command(argv):
    """The command line that resumes the run of ``argv`` (``--resume`` added)."""
    return shlex.join(["refconf", *argv, *([] if "--resume" in argv else ["--resume"])])


def _interrupted_message(args):
    from .params import load_checkpoint

    if args.checkpoint is None:
        return "nothing was saved (give --checkpoint FILE.npz to be able to resume a run)"
    if not os.path.isfile(args.checkpoint):
        return ("no checkpoint was written yet (stopped in the first epoch); run the "
                "same command again to start over")
    try:
        epoch = load_checkpoint(args.checkpoint)["epoch"]
    except (ValueError, OSError, KeyError):
        epoch = "?"
    return (f"the checkpoint {args.checkpoint} holds epoch {epoch}; resume with: "
            f"{resume_command(args.argv)}")


def train(args):
    """Run ``refconf train`` for the parsed ``args`` (``args.argv`` are its words)."""
    from .estimator import ConfDensity

    if args.resume and not args.checkpoint:
        raise CommandError("--resume needs --checkpoint FILE.npz (the run to continue)")
    check_outputs([OutputPath("--out", args.out, (".npz",)),
                   OutputPath("--checkpoint", args.checkpoint, (".npz",)),
                   OutputPath("--metrics", args.metrics, (".jsonl",))],
                  inputs=[("DATA", args.data), ("--val", args.val)])
    if not args.resume and args.checkpoint and os.path.exists(args.checkpoint):
        raise CommandError(f"--checkpoint {args.checkpoint} exists; add --resume to continue "
                           "its run, or give another file (or remove it) to start a new one")
    settings, note = estimator_settings(args), ""
    if args.resume:
        saved, epoch, finished = _saved_run(args.checkpoint)
        settings, overridden = resumed_settings(args, saved)
        changed = f"; overridden: {', '.join(overridden)}" if overridden else ""
        print(f"refconf train: resuming {args.checkpoint} after epoch {epoch} of "
              f"{settings['epochs']} with its settings{changed}", file=sys.stderr)
        if finished or epoch >= settings["epochs"]:
            note = (f"; the checkpoint's run had already finished at epoch {epoch}: give "
                    "--epochs (and --patience) to train longer")
    from .cli_data import read_data

    X = read_data(args.data, settings["random_state"])
    X_val = read_data(args.val, settings["random_state"]) if args.val else None
    est = ConfDensity(**dict(settings, verbose=not args.quiet))
    try:
        est.fit(X, X_val=X_val, metrics_path=args.metrics, checkpoint_path=args.checkpoint,
                resume=args.resume)
    except BaseException as err:
        if is_interrupt(err):
            raise Interrupted(_interrupted_message(args)) from err
        raise
    est.save(args.out)
    new = len(est.history_) - (epoch if args.resume else 0)
    print(f"saved {args.out} ({est.stopped_reason_}, {len(est.history_)} epochs, {new} new, "
          f"engine {est.engine_}){note}")
