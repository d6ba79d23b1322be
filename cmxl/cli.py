"""`cmxl` command line: train, configs, evaluate.

Mistakes a user can make end as one line on stderr and exit status 2, never a traceback.
"""
import argparse
import sys
from dataclasses import fields

from cmxl.config import PRESETS, RunConfig, parse_assignments, preset
from cmxl.errors import UserError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not argparse's usage block
        raise UserError(f"{message} (see `{self.prog} --help`)")


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", help="cifar10 (default), cifar100, imagefolder:PATH or synthetic")
    p.add_argument("--data-dir", help="where CIFAR is read from and downloaded to (default ./data)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cmxl", description="Reproduce the ConvMixer / ConvMixer-XL ablation on CIFAR-10.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train one configuration")
    t.add_argument("--config", required=True, help="a preset name (see `cmxl configs`)")
    t.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="override config keys, e.g. --set epochs=5 dim=64")
    _add_data_args(t)
    t.add_argument("--out", default="results", help="parent folder of the run folder (default results/)")
    t.add_argument("--name", help="run folder name (default: the preset's name)")
    t.add_argument("--resume", action="store_true", help="continue the run in the folder from its last epoch")

    sub.add_parser("configs", help="list the presets, their settings and the paper's numbers")

    e = sub.add_parser("evaluate", help="test top-1 of a saved checkpoint")
    e.add_argument("checkpoint")
    _add_data_args(e)
    return parser


def cmd_train(args) -> None:
    from cmxl.train import train

    cfg = preset(args.config, **parse_assignments(args.set))
    train(cfg, data=args.data, data_dir=args.data_dir, out_dir=args.out, name=args.name, resume=args.resume)


def cmd_configs(args) -> None:
    default = RunConfig()
    print(f"{'preset':<18} {'paper #params':>13} {'paper top-1':>11}  settings (differences from the defaults)")
    for name, p in PRESETS.items():
        diff = ", ".join(f"{k}={v}" for k, v in p.overrides.items()) or "-"
        print(f"{name:<18} {p.paper_params_m:>12}M {p.paper_top1:>10.2f}%  {diff}")
    print("\ndefaults (the paper's recipe), each settable with --set KEY=VALUE:")
    for f in fields(RunConfig):
        print(f"  {f.name:<17} {getattr(default, f.name)!r}")


def cmd_evaluate(args) -> None:
    from cmxl.train import evaluate

    print(f"test top-1: {evaluate(args.checkpoint, data=args.data, data_dir=args.data_dir):.2f}%")


COMMANDS = {"train": cmd_train, "configs": cmd_configs, "evaluate": cmd_evaluate}


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        COMMANDS[args.command](args)
    except UserError as exc:
        print(f"cmxl: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cmxl: interrupted; continue with --resume", file=sys.stderr)
        return 130
    return 0
