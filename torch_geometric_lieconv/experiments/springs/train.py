r"""``lieconv train springs`` and ``lieconv evaluate springs``: one dynamics model, trained on rollout
windows and evaluated on long rollouts from the start of every test trajectory."""
from __future__ import annotations

import argparse
import os
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from ...datasets.springs import system_from_name
from ...runs import default_run_folder, refuse_early, run_folder, write_json
from ...training import RUNTIME_KEYS, Trainer, load_checkpoint, seed_everything
from ..common import add_threads_option, apply_threads, build_model, text_table, trained_model
from ..config import Settings, add_setting_flags, flag_values, trainer_arguments
from .plots import plot_trajectories
from .rollouts import RolloutObjective, long_rollouts, summarise
from .settings import SETTINGS, load_split, model_arguments


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """``--root``, ``--device`` and ``--threads`` of the evaluate and study commands.

    Args:
        parser (argparse.ArgumentParser): the command's parser.
    """
    parser.add_argument("--root", default="data/springs", help="data cache folder (generated on first use)")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if available)")
    add_threads_option(parser)


def default_run_name(settings: Settings) -> str:
    """``springs-MODEL[-GROUP][-quick]``, the run folder's name under ``runs/``.

    Args:
        settings (Settings): the run's settings.
    """
    model = settings.model
    group = f"-{model.group}" if model.model == "HLieConv" else ""
    return f"springs-{model.model}{group}" + ("-quick" if settings.preset == "quick" else "")


# ----------------------------------------------------------------------------------------------- train
def configure_train(parser: argparse.ArgumentParser) -> None:
    parser.description = "Train a dynamics model on spring systems (the paper's §6 protocol)."
    add_setting_flags(parser, SETTINGS)


def train_run(settings: Settings, out: str, *, validate: bool = True) -> Trainer:
    """Train one run of ``settings`` into ``out`` (config.json, checkpoints, metrics.csv,
    learning_curve.png); the data come from ``settings.runtime.root``.

    Args:
        settings (Settings): the run's settings.
        out (str): the run folder.
        validate (bool, optional): evaluate the validation MSE after every epoch. (default: :obj:`True`)
    """
    runtime = settings.runtime
    root = runtime.root = os.path.abspath(runtime.root)
    saved = settings.saved()
    with run_folder(out):  # refused while another run writes to it
        refuse_early(out, runtime.resume, saved, RUNTIME_KEYS)
        write_json(os.path.join(out, "config.json"), saved)
        train = load_split(settings, root, "train", chunked=True)
        val = load_split(settings, root, "val", chunked=True) if validate else None
        system = system_from_name(settings.data.system)
        objective = RolloutObjective(system.param_keys, settings.data.integrator)
        seed_everything(settings.trainer.seed)
        model = build_model(*model_arguments(settings))
        dtype = settings.trainer.dtype
        arguments = trainer_arguments(settings.trainer)
        arguments["batch_size"] = batch_size = min(arguments["batch_size"], len(train))

        def evaluate(m: nn.Module) -> Dict[str, float]:
            return {"val_mse": objective.mse(m, val, 2 * batch_size, trainer.device, dtype)}

        trainer = Trainer(model, train, **arguments, loss_fn=objective.loss, out_dir=out,
                          evaluate_fn=evaluate if validate else None, monitor="val_mse" if validate else "train_loss",
                          device=runtime.device, config=saved, num_workers=runtime.num_workers,
                          progress=runtime.progress)
        trainer.fit(resume=runtime.resume, max_epochs=runtime.max_epochs)
    return trainer


def run_train(args: argparse.Namespace) -> int:
    settings = SETTINGS.resolve(config_file=args.config, flags=flag_values(args, SETTINGS))
    runtime = settings.runtime
    apply_threads(runtime.threads)
    out = runtime.out or default_run_folder(os.path.join("runs", default_run_name(settings)), runtime.resume)
    model = settings.model
    print(f"springs: {model.model}" + (f" ({model.group}, center={model.center})" if model.model == "HLieConv" else "")
          + f", {settings.data.n_train} training systems, {settings.trainer.epochs} epochs; out {out}", flush=True)
    start = time.perf_counter()
    trainer = train_run(settings, out)
    if trainer.history:
        print(f"trained {len(trainer.history)} epochs in {time.perf_counter() - start:.1f} s; best val MSE "
              f"{trainer.best['value']:.4g} at epoch {trainer.best['epoch']}", flush=True)
    if trainer.epoch >= trainer.epochs:
        row = evaluate_run(out, root=runtime.root, device=trainer.device, progress=runtime.progress)
        print(format_results([row]))
    return 0


# ----------------------------------------------------------------------------------------------- evaluate
def configure_evaluate(parser: argparse.ArgumentParser) -> None:
    parser.description = "Rollout MSE, energy error and momentum drift of trained spring-dynamics runs."
    add_common_options(parser)
    parser.set_defaults(root=None)
    parser.add_argument("--run", dest="runs", nargs="+", required=True,
                        help="run folder(s) written by 'lieconv train springs'")
    parser.add_argument("--checkpoint", default="best", choices=["best", "last"])
    parser.add_argument("--n-test", type=int, default=None, help="evaluate on the first N test systems")
    parser.add_argument("--horizons", type=int, nargs="+", default=None,
                        help="rollout lengths for the MSE (default: the training window, 100, 500)")
    parser.add_argument("--precision", default="float64", choices=["float32", "float64"],
                        help="precision of the evaluation rollouts (float64 shows exact conservation)")
    parser.add_argument("--substeps", type=int, default=1,
                        help="RK4 steps per sample in the rollouts (training uses 1; more shrink the integrator's "
                             "angular momentum and energy error as h^4)")
    parser.add_argument("--plot", action="store_true", help="also write RUN/trajectories.png (Figure 6)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    parser.add_argument("--seed", type=int, default=None,
                        help="data seed of the test systems (default: the run's; another draws new systems)")


def load_run(run: str, checkpoint: str = "best", device=None, dtype: torch.dtype = torch.float64
             ) -> Tuple[nn.Module, Settings, Dict[str, Any]]:
    """The trained model (eval mode, on ``device`` in ``dtype``), its settings and the checkpoint.

    Args:
        run (str): the run folder.
        checkpoint (str, optional): ``"best"`` or ``"last"``. (default: :obj:`"best"`)
        device (torch.device, optional): where to put the model. (default: the CPU)
        dtype (torch.dtype, optional): the model's dtype. (default: :obj:`torch.float64`)
    """
    path = os.path.join(run, f"checkpoint_{checkpoint}.pt")
    state = load_checkpoint(path)
    task = state.get("config", {}).get("task")
    if task != "springs":
        raise ValueError(f"{path} is not a springs checkpoint (task {task!r})")
    model = trained_model(state, path, SETTINGS, model_arguments).to(device or "cpu", dtype)
    return model, SETTINGS.from_saved(state["config"]), state


def evaluate_run(run: str, *, root: Optional[str] = None, checkpoint: str = "best", device=None,
                 n_test: Optional[int] = None, horizons: Optional[Sequence[int]] = None,
                 precision: str = "float64", substeps: int = 1, plot: bool = False,
                 seed: Optional[int] = None, progress: bool = False) -> Dict[str, Any]:
    """Evaluate a run on its test systems; the row is also written to ``RUN/results_test.json``.

    ``seed`` draws other test systems (the data seed; default: the run's); the row records it.

    Args:
        run (str): the run folder.
        root (str, optional): the data cache folder. (default: the run's)
        checkpoint (str, optional): ``"best"`` or ``"last"``. (default: :obj:`"best"`)
        device (torch.device, optional): where to evaluate. (default: :obj:`None`)
        n_test (int, optional): evaluate the first ``n_test`` test systems. (default: :obj:`None`)
        horizons (Sequence[int], optional): rollout lengths of the MSEs. (default: the window, 100, 500)
        precision (str, optional): ``"float32"`` or ``"float64"`` rollouts. (default: :obj:`"float64"`)
        substeps (int, optional): RK4 steps per sample interval. (default: :obj:`1`)
        plot (bool, optional): write ``RUN/trajectories.png``. (default: :obj:`False`)
        seed (int, optional): data seed of other test systems. (default: the run's)
        progress (bool, optional): show a progress bar. (default: :obj:`False`)
    """
    device = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.float64 if precision == "float64" else torch.float32
    model, settings, state = load_run(run, checkpoint, device, dtype)
    if seed is not None:
        settings = settings.replace(data_seed=int(seed))
    root = root or settings.runtime.root
    if root is None:
        raise ValueError(f"pass --root: {run} does not record its data folder")
    test = load_split(settings, root, "test", chunked=False)
    if n_test is not None:
        test = test[: int(n_test)]
    horizons = list(horizons or (settings.data.chunk_len, 100, 500))
    system = system_from_name(settings.data.system)
    objective = RolloutObjective(system.param_keys, settings.data.integrator, substeps=substeps)
    batch_size = 2 * settings.trainer.batch_size
    start = time.perf_counter()
    chunked = load_split(settings, root, "test", chunked=True)
    if n_test is not None:
        chunked = chunked[: int(n_test)]
    test_mse = objective.mse(model, chunked, batch_size, device, dtype)
    print(f"rolling out {len(test)} test systems over {max(horizons)} steps ({substeps} RK4 step(s) per sample)",
          flush=True)
    curves = long_rollouts(model, test, objective, batch_size, device, dtype, max(horizons), progress)
    m = settings.model
    row: Dict[str, Any] = {"run": run, "model": m.model, "group": m.group if m.model == "HLieConv" else "-",
                           "center": m.center, "n_train": settings.data.n_train, "n_test": len(test),
                           "epoch": state["epoch"], "checkpoint": checkpoint, "substeps": substeps, "test_mse": test_mse,
                           **summarise(curves, horizons), "eval_seconds": time.perf_counter() - start,
                           "data_seed": settings.data.data_seed}
    write_json(os.path.join(run, "results_test.json"), row)
    if plot:
        plot_trajectories({row["model"]: curves}, os.path.join(run, "trajectories.png"))
    return row


def format_results(rows: List[Dict[str, Any]]) -> str:
    """A table of the evaluation rows (rollout MSE by horizon, energy error, momentum drifts).

    Args:
        rows (List[Dict[str, Any]]): rows of :func:`evaluate_run`.
    """
    mse_keys = sorted({k for r in rows for k in r if k.startswith("mse_")}, key=lambda k: int(k[4:]))
    header = ["model", "group", "n_train", "test MSE (window)"] + [f"MSE@{k[4:]}" for k in mse_keys] + [
        "energy err", "lin. mom. drift", "ang. mom. drift"]
    lines = [header]
    for r in rows:
        lines.append([r["model"], str(r["group"]), str(r["n_train"]), f"{r['test_mse']:.3g}"]
                     + [f"{r[k]:.3g}" for k in mse_keys]
                     + [f"{r['energy_drift']:.2g}", f"{r['linear_momentum_drift']:.2g}",
                        f"{r['angular_momentum_drift']:.2g}"])
    if rows:
        r = rows[0]
        lines.append(["(data)", "-", "-", "-"] + ["-"] * len(mse_keys) + [
            f"{r['data_energy_drift']:.2g}", f"{r['data_linear_momentum_drift']:.2g}",
            f"{r['data_angular_momentum_drift']:.2g}"])
    return text_table(lines)


def run_evaluate(args: argparse.Namespace) -> int:
    apply_threads(args.threads)
    device = torch.device(args.device) if args.device else None
    rows = [evaluate_run(run, root=args.root, checkpoint=args.checkpoint, device=device, n_test=args.n_test,
                         horizons=args.horizons, precision=args.precision, substeps=args.substeps, plot=args.plot,
                         seed=args.seed, progress=args.progress)
            for run in args.runs]
    print(format_results(rows))
    return 0
