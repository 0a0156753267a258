"""``python -m loadtest SCENARIO ...`` / ``hudong-loadtest SCENARIO ...``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    from loadtest import fanout

    ap = argparse.ArgumentParser(prog="hudong-loadtest", description="hudong load generator")
    sub = ap.add_subparsers(dest="scenario", required=True)
    fan = sub.add_parser(
        "fanout",
        help="N viewers in one room, one publisher: server CPU per frame and message, latency",
        description=(fanout.__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    fanout.add_arguments(fan)
    fan.set_defaults(func=fanout.run_fanout)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
