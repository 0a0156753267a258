"""``python -m loadtest SCENARIO ...`` / ``hudong-loadtest SCENARIO ...``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from loadtest import (
    chatvotes,
    cockpit,
    connect,
    crossnode,
    draw,
    fanout,
    idle,
    many,
    mixed,
    reconnect,
    rooms,
    slow,
    votes,
)
from loadtest.harness import Scenario, run
from loadtest.results import Fatal

# Every scenario module, in the order of `--help`; each declares what it provides.
MODULES = (
    fanout,
    crossnode,
    votes,
    chatvotes,
    connect,
    reconnect,
    slow,
    draw,
    mixed,
    idle,
    rooms,
    many,
    cockpit,
)
SCENARIOS: tuple[Scenario, ...] = tuple(Scenario.of(m) for m in MODULES)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="hudong-loadtest", description="hudong load generator")
    sub = ap.add_subparsers(dest="scenario", required=True)
    for module, sc in zip(MODULES, SCENARIOS, strict=True):
        p = sub.add_parser(
            sc.name,
            help=sc.help,
            description=(module.__doc__ or sc.help).split("\n\n")[0],
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        )
        sc.arguments(p)
        p.set_defaults(scenario_spec=sc)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """Exit status: 0; 1 a check failed or an SLO was missed; 2 the run could not be
    done (a FATAL line on stderr)."""
    args = build_parser().parse_args(argv)
    try:
        return run(args, args.scenario_spec)
    except Fatal as exc:
        print(f"FATAL: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
