"""``python -m loadtest SCENARIO ...`` / ``hudong-loadtest SCENARIO ...``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    from loadtest import crossnode, fanout, votes

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
    cross = sub.add_parser(
        "crossnode",
        help="one room on N nodes sharing Redis: cross-node latency, Redis commands per danmaku",
        description=(crossnode.__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    crossnode.add_arguments(cross)
    cross.set_defaults(func=crossnode.run_crossnode)
    vote = sub.add_parser(
        "votes",
        help="N viewers vote at once: votes/s, ack latency, exact tallies",
        description=(votes.__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    votes.add_arguments(vote)
    vote.set_defaults(func=votes.run_votes)
    from loadtest import scenarios

    for name, text, add, run in (
        (
            "reconnect",
            "reconnect storm: N viewers dropped at once rejoin with jittered backoff",
            scenarios.add_reconnect,
            scenarios.run_reconnect,
        ),
        (
            "slow",
            "slow consumers: a share of viewers stops reading; the rest's latency, drops",
            scenarios.add_slow,
            scenarios.run_slow,
        ),
        (
            "draw",
            "a lucky draw with many entrants, run and verified (verify-draw)",
            scenarios.add_draw,
            scenarios.run_draw,
        ),
        (
            "mixed",
            "danmaku storm + vote burst, --overload-factor: state latency, exact votes, levels",
            scenarios.add_mixed,
            scenarios.run_mixed,
        ),
    ):
        p = sub.add_parser(
            name,
            help=text,
            description=text,
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        )
        add(p)
        p.set_defaults(func=run)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
