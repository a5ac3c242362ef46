"""`umnist config`: print a profile fully resolved (every stage, defaults filled in)."""

import sys

import yaml

from umnist.config import resolve_all


def register(sub) -> None:
    p = sub.add_parser("config", help="print a profile with every default filled in (and check it)")
    p.add_argument("--profile", default="tiny", help="profile name in configs/ or a YAML path")
    p.set_defaults(func=run_cli)


def run_cli(args) -> int:
    sys.stdout.write(yaml.safe_dump(resolve_all(args.profile), sort_keys=False))
    return 0
