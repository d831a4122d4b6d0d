"""``seqlab forecast``: predict a numeric series from its past (d2l seed 001, "序列模型").

    seqlab forecast train CONFIG.yaml [--set ...]                 # = seqlab train (configs/forecast_*.yaml)
    seqlab forecast train (--csv F [--column C] | --source sine|sunspots) --model mlp|rnn --tau 4 --model-dir DIR
    seqlab forecast predict DIR (--csv F [--column C] | --source ...) --steps K --out OUT.csv [--plot OUT.png]
    seqlab forecast evaluate DIR                                  # = seqlab evaluate: held-out 1-step MSE

The second form builds the run config from flags (the d2l recipe's knobs).  The task itself is
``seqlab.tasks.forecasting``.
"""

from __future__ import annotations

import argparse
import json

from seqlab.commands.task_verbs import run_task_action
from seqlab.errors import SeqlabError

HELP = "forecast a numeric series (CSV, noisy sine, sunspots) with a tau-lag MLP or a latent RNN"
TASK = "forecasting"
ACTIONS = ("train", "predict", "evaluate")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=ACTIONS)
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="the action's arguments (ACTION --help)")


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--csv", help="a CSV file with a header line")
    parser.add_argument("--column", help="the CSV column to read (default: the last one)")
    parser.add_argument("--source", choices=("sine", "sunspots"), help="a built-in series instead of --csv")


def add_flag_train_arguments(parser: argparse.ArgumentParser) -> None:
    add_source_arguments(parser)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--model", choices=("mlp", "rnn"), default="mlp")
    for name, default in (("tau", 4), ("hidden-size", 10), ("window", 16), ("epochs", 10), ("batch-size", 16),
                          ("seed", 1)):
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--cell", default="gru", help="rnn cell: rnn | gru | lstm")
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--train-fraction", type=float, default=0.6)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--overwrite", action="store_true")


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir")
    add_source_arguments(parser)
    parser.add_argument("--steps", type=int, default=4, help="K: how many steps ahead (default 4)")
    parser.add_argument("--out", required=True, help="output CSV")
    parser.add_argument("--plot", help="also draw the columns into this PNG")


def run(args: argparse.Namespace) -> int:
    from seqlab.commands import evaluate, train

    flags = args.action == "train" and (not args.rest or args.rest[0].startswith("-"))
    adders = {"train": add_flag_train_arguments if flags else train.add_arguments,
              "evaluate": evaluate.add_arguments, "predict": add_predict_arguments}
    parser = argparse.ArgumentParser(prog=f"seqlab forecast {args.action}")
    adders[args.action](parser)
    action_args = parser.parse_args(args.rest)
    action_args.action = args.action
    if flags:
        return train_from_flags(action_args)
    return run_task_action(action_args, TASK, predict)


def data_section(args: argparse.Namespace) -> dict:
    if (args.csv is None) == (args.source is None):
        raise SeqlabError("forecast: give exactly one of --csv FILE and --source sine|sunspots")
    if args.csv:
        return {"source": "csv", "csv_file": args.csv, "column": args.column or ""}
    return {"source": args.source}


def train_from_flags(args: argparse.Namespace) -> int:
    from seqlab.tasks import build_config, train

    model = ({"architecture": "mlp", "tau": args.tau, "hidden_size": args.hidden_size} if args.model == "mlp" else
             {"architecture": "rnn", "cell": args.cell, "hidden_size": args.hidden_size})
    config = build_config({"task": TASK, "model_dir": args.model_dir, "model": model,
                           "data": {**data_section(args), "train_fraction": args.train_fraction,
                                    "window": args.window, "batch_size": args.batch_size},
                           "train": {"max_epochs": args.epochs, "lr": args.lr, "seed": args.seed}})
    print(json.dumps(train(config, resume=args.resume, overwrite=args.overwrite)))
    return 0


def predict(args: argparse.Namespace) -> int:
    from seqlab.config import from_dict
    from seqlab.errors import ConfigError
    from seqlab.tasks import load_model_dir
    from seqlab.tasks.forecasting import DataConfig, forecast_table, load_series, plot_table, write_table

    if args.steps <= 0:
        raise ConfigError(f"--steps: must be > 0, got {args.steps}")
    series = load_series(from_dict(DataConfig, data_section(args), "data."))
    loaded = load_model_dir(args.model_dir, task=TASK)
    table = forecast_table(loaded, series, args.steps)
    write_table(args.out, table)
    if args.plot:
        plot_table(args.plot, table, f"{loaded.config.model.architecture}, context "
                                     f"{loaded.preprocessing.context_length}")
    return 0
