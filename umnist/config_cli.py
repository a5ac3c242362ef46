"""`umnist config`: print a profile fully resolved (every stage, defaults filled in), the text the pipeline
takes as its `config` run parameter."""

import sys

from umnist.config import profile_text


def register(sub) -> None:
    p = sub.add_parser("config", help="print a profile with every default filled in (and check it)")
    p.add_argument("--profile", default="tiny", help="profile name in configs/ or a YAML path")
    p.set_defaults(func=run_cli)


def run_cli(args) -> int:
    sys.stdout.write(profile_text(args.profile))
    return 0
