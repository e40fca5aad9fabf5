"""Finding the stack ``payments up`` is running, so that CLI tools need no flags next to ``make run``.

``payments up`` writes ``<state dir>/stack.json`` (atomically) with the broker's bootstrap, partitions,
topic names, the Redis URL and the PSP and gateway URLs, and removes it when it stops. A tool resolves
each setting in this order: its flag, then the environment (``PAYMENTS_KAFKA__BOOTSTRAP``...), then the
discovered stack, then the built-in default; :func:`resolve` reports which one won for each.

The state dir is ``$PAYMENTS_DEVSTACK_DIR`` when set (``off`` disables discovery), else the first
``.devstack/`` holding a ``stack.json`` in the current directory or one of its parents (like git finds
``.git``). A file whose supervisor process is gone (``payments up`` was killed with SIGKILL) is ignored.

Parsing and resolving are pure; :func:`find_stack` and :func:`write_stack` are the thin file edges.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings

from payments.settings import TopicNames

log = logging.getLogger(__name__)

STACK_FILE = "stack.json"
DEFAULT_DIR = ".devstack"
DIR_ENV = "PAYMENTS_DEVSTACK_DIR"
ENV_PREFIX = "PAYMENTS_"


class StackInfo(BaseModel):
    """What a running dev stack offers to the tools: where its broker, Redis and PSP are."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    bootstrap: str
    partitions: int = Field(ge=1)
    topics: TopicNames = TopicNames()
    redis_url: str
    psp_url: str
    gateway_url: str
    supervisor_pid: int | None = None


class DiscoveryError(ValueError):
    """A stack file that exists but cannot be read as one."""


def parse_stack(text: str) -> StackInfo:
    try:
        return StackInfo.model_validate_json(text)
    except ValidationError as exc:
        raise DiscoveryError(
            f"not a stack file: {exc.error_count()} error(s): {exc.errors()[0]['msg']}"
        ) from exc


def render_stack(info: StackInfo) -> str:
    return json.dumps(info.model_dump(mode="json"), indent=2)


def stack_dir(cwd: Path, env: Mapping[str, str]) -> Path | None:
    """The state dir to read: ``$PAYMENTS_DEVSTACK_DIR``, else the nearest ``.devstack/`` with a stack
    file from ``cwd`` upwards. None when discovery is off or nothing is found."""
    override = env.get(DIR_ENV)
    if override is not None:
        return None if override.strip().lower() in {"", "off", "none", "0"} else Path(override)
    for parent in (cwd, *cwd.parents):
        candidate = parent / DEFAULT_DIR
        if (candidate / STACK_FILE).is_file():
            return candidate
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


@dataclass(frozen=True)
class Discovered:
    info: StackInfo
    path: Path


def find_stack(
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    pid_alive: Callable[[int], bool] = _pid_alive,
) -> Discovered | None:
    """The running stack's file, if there is one (the thin reader around :func:`parse_stack`)."""
    directory = stack_dir(Path.cwd() if cwd is None else cwd, os.environ if env is None else env)
    if directory is None:
        return None
    path = directory / STACK_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    info = parse_stack(text)
    if info.supervisor_pid is not None and not pid_alive(info.supervisor_pid):
        return None  # left behind by a stack that was killed; its ports may belong to anything now
    return Discovered(info, path)


def write_stack(directory: Path, info: StackInfo) -> Path:
    """Write the stack file atomically (a reader never sees half of it)."""
    path = directory / STACK_FILE
    tmp = directory / f".{STACK_FILE}.{os.getpid()}.tmp"
    tmp.write_text(render_stack(info))
    os.replace(tmp, path)
    return path


def remove_stack(directory: Path) -> None:
    (directory / STACK_FILE).unlink(missing_ok=True)


# --- resolving settings -----------------------------------------------------------------------------

Path_ = tuple[str, ...]


def offered(info: StackInfo) -> dict[Path_, Any]:
    """The settings a stack offers, by their path in a service's settings object."""
    out: dict[Path_, Any] = {
        ("kafka", "bootstrap"): info.bootstrap,
        ("kafka", "partitions"): info.partitions,
        ("redis", "url"): info.redis_url,
        ("psp_url",): info.psp_url,
    }
    for name, topic in info.topics.model_dump().items():
        out[("kafka", "topics", name)] = topic
    return out


def env_name(path: Path_) -> str:
    return ENV_PREFIX + "__".join(path).upper()


def _in_env(path: Path_, env: Mapping[str, str]) -> bool:
    # pydantic-settings matches names case-insensitively; so do we.
    wanted = env_name(path)
    return any(k.upper() == wanted for k in env)


def _nest(flat: Mapping[Path_, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, value in flat.items():
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return out


@dataclass(frozen=True)
class Resolution:
    """Keyword arguments for a settings class, and where each discoverable setting came from."""

    kwargs: dict[str, Any]
    sources: dict[str, str]  # dotted setting name -> "flag" | "env" | "<stack file>" | "default"

    def describe(self, settings: object = None) -> str:
        """The headline settings' sources (and values, from ``settings``), for one log line. Topic names
        and partitions follow the bootstrap's source unless the environment names them."""
        shown = [n for n in ("kafka.bootstrap", "redis.url", "psp_url") if n in self.sources]
        parts = []
        for name in shown:
            value = "" if settings is None else f"={_redact(_lookup(settings, name))}"
            parts.append(f"{name}{value} from {self.sources[name]}")
        return ", ".join(parts)


def _lookup(settings: object, dotted: str) -> object:
    node: object = settings
    for part in dotted.split("."):
        node = getattr(node, part, None)
    return node


def _redact(value: object) -> str:
    """A URL without its password (a Redis URL may carry one): never log secrets."""
    text = str(value)
    scheme, sep, rest = text.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return text
    userinfo, _, host = rest.partition("@")
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user + ':***' if ':' in userinfo else user}@{host}"


def resolve(
    fields: set[str],
    flags: Mapping[Path_, Any],
    env: Mapping[str, str],
    stack: Discovered | None,
) -> Resolution:
    """Merge flags (highest), the stack's offers (where the environment is silent) into settings kwargs.

    ``fields`` are the settings class's top-level fields: a stack's Redis URL is not offered to a service
    without a ``redis`` section. The environment itself is read by the settings class; init kwargs win over
    it in pydantic-settings, so an offer the environment already sets is left out here.
    """
    merged: dict[Path_, Any] = {}
    sources: dict[str, str] = {}
    offers = offered(stack.info) if stack is not None else {}
    for path in offered(_PLACEHOLDER) if stack is None else offers:
        if path[0] not in fields:
            continue
        name = ".".join(path)
        if path in flags:
            continue
        if _in_env(path, env):
            sources[name] = "env"
        elif stack is not None:
            merged[path] = offers[path]
            sources[name] = str(stack.path)
        else:
            sources[name] = "default"
    for path, value in flags.items():
        merged[path] = value
        sources[".".join(path)] = "flag"
    return Resolution(_nest(merged), sources)


_PLACEHOLDER = StackInfo(bootstrap="-", partitions=1, redis_url="-", psp_url="-", gateway_url="-")


T = TypeVar("T", bound=BaseSettings)


def discover_settings(
    cls: type[T],
    flags: Mapping[str, object] | None = None,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[T, Resolution]:
    """``cls`` built from flags > environment > the discovered stack > defaults, and where each came from.

    ``flags`` maps a setting's dotted name (``"kafka.bootstrap"``) to its command-line value; None (flag
    not given) is left out. A stack file that cannot be read is reported and ignored.
    """
    environ = os.environ if env is None else env
    try:
        stack = find_stack(cwd, environ)
    except DiscoveryError as exc:
        log.warning("ignoring the dev stack file: %s", exc)
        stack = None
    given = {tuple(name.split(".")): value for name, value in (flags or {}).items() if value is not None}
    resolution = resolve(set(cls.model_fields), given, environ, stack)
    return cls(**resolution.kwargs), resolution
