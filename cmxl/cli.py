"""`cmxl` command line: train, configs, evaluate, ablate, table, figures.

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

    a = sub.add_parser("ablate", help="run 01_train.ipynb with papermill for every (configuration, seed)")
    a.add_argument("--profile", default="paper", choices=["paper", "quick"],
                   help="paper: the 7 presets as the paper ran them; quick: CPU minutes on synthetic data")
    a.add_argument("--configs", type=_names, help="comma-separated presets (default: all 7)")
    a.add_argument("--seeds", type=_seeds, help="comma-separated seeds (default: 1024)")
    _add_data_args(a)
    a.add_argument("--out", default="results", help="results folder (default results/)")

    for name, what in (("table", "write Table 1 (csv, md, tex) from saved runs"),
                       ("figures", "render Figures 3-6 (PNG, PDF) from saved runs")):
        r = sub.add_parser(name, help=what)
        r.add_argument("--profile", default="paper", choices=["paper", "quick"])
        r.add_argument("--results", default="results", help="results folder (default results/)")
        if name == "figures":
            r.add_argument("--out", default="figures", help="figures folder (default figures/)")
    return parser


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    for n in names:
        preset(n)  # fails with a suggestion on a typo
    return names


def _seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--seeds {text!r} is not a comma-separated list of integers, e.g. --seeds 1024,1025") from None


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


def cmd_ablate(args) -> int:
    from cmxl.ablation import ablate

    runs = ablate(args.profile, args.configs, args.seeds, args.out, data=args.data, data_dir=args.data_dir)
    return 1 if any(r.status == "failed" for r in runs) else 0


def cmd_table(args) -> None:
    from cmxl.report import write_table1

    table = write_table1(args.results, args.profile)
    print(table.markdown())
    print(f"wrote {args.results}/table1.csv, table1.md, table1.tex")


def cmd_figures(args) -> None:
    from cmxl.report import write_figures

    for png in write_figures(args.results, args.profile, args.out):
        print(f"wrote {png} and {png.with_suffix('.pdf')}")


COMMANDS = {"train": cmd_train, "configs": cmd_configs, "evaluate": cmd_evaluate, "ablate": cmd_ablate,
            "table": cmd_table, "figures": cmd_figures}


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        status = COMMANDS[args.command](args)
    except UserError as exc:
        print(f"cmxl: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cmxl: interrupted; continue with --resume", file=sys.stderr)
        return 130
    return status or 0
