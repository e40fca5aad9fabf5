"""The ``payments`` console script: one sub-command per service or tool.

Sub-commands are resolved lazily so that ``payments psp-sim`` does not import Kafka, and so on.
Each target is ``module:function`` taking the remaining argv and returning an exit code.
"""

from __future__ import annotations

import importlib
import sys
from importlib import metadata

DISTRIBUTION = "shared-payments"

COMMANDS: dict[str, tuple[str, str]] = {
    "up": ("payments.devstack.up", "start broker, Redis, PSP simulator and every service"),
    "down": ("payments.devstack.down", "stop a stack started by 'payments up'"),
    "broker": ("payments.devstack.broker_cli", "run only a local Kafka broker (foreground)"),
    "topics": ("payments.devstack.topics_cli", "create the topics on a broker"),
    "gateway": ("payments.gateway.main", "run the HTTP gateway"),
    "processor": ("payments.processor.main", "run one processor instance (exactly-once)"),
    "projector": ("payments.readmodel.main", "run the results -> Redis read-model projector"),
    "psp-sim": ("payments.psp_sim.main", "run the PSP simulator"),
    "psp-caller": (
        "payments.psp_caller.main",
        "run the PSP caller (at-least-once, many calls in flight)",
    ),
    "reconciler": (
        "payments.reconciler.main",
        "run the reconciler (resolves non-terminal operations, settlement matching)",
    ),
    "fulfillment-example": (
        "payments.fulfillment.main",
        "reference downstream consumer: results -> SQLite, exactly once by seq",
    ),
    "schemas": ("payments.schemas.export", "write or check the JSON Schemas of every message"),
    "bench": ("bench.cli", "run the benchmarks in bench/ (see bench/README.md)"),
    "seed": ("payments.gateway.seed", "create API keys and the demo account"),
    "keys": ("payments.gateway.keys_cli", "create, list, revoke and rotate API keys"),
    "chaos": (
        "payments.chaos.main",
        "seeded fault-injection runs against the real stack; exit 1 on violation",
    ),
    "audit": ("payments.audit.main", "check docs/design.md §3 on the topics; exit 1 on violation"),
}


def version() -> str:
    """The installed distribution's version (pyproject.toml's, via the package metadata)."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def usage() -> str:
    lines = ["usage: payments [-V | --version] <command> [options]", "", "commands:"]
    lines += [f"  {name:<10} {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in {"-V", "--version"}:
        print(f"payments {version()}")
        return 0
    if not args or args[0] in {"-h", "--help"} or args[0] not in COMMANDS:
        print(usage(), file=sys.stderr if args and args[0] not in {"-h", "--help"} else sys.stdout)
        return 0 if not args or args[0] in {"-h", "--help"} else 2
    module = importlib.import_module(COMMANDS[args[0]][0])
    rc: int = module.main(args[1:])
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
