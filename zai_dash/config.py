"""TOML config plus environment overrides → one frozen `Config`.

Lookup: `--config PATH`, else `$ZAI_DASH_CONFIG`, else `$XDG_CONFIG_HOME/zai-dash/config.toml`. A missing file
means defaults; a broken one raises `ConfigError` whose message names the file, the line and the problem.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from zai_dash.domain.events import TOOL_IDS
from zai_dash.domain.plans import Plan, Thresholds, plan_from_mapping
from zai_dash.sources.safeio import read_text_capped  # stdlib only: checked opens, no adapters

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib


class ConfigError(Exception):
    """A config problem, already phrased as the one line the user sees."""


def builtin_plans() -> dict[str, Plan]:
    """Lite / Pro / Max from the packaged `data/plans.toml`."""
    # Read beside this module rather than through importlib.resources: `status` pays for every import.
    text = (Path(__file__).parent / "data" / "plans.toml").read_text(encoding="utf-8")
    return {name: plan_from_mapping(name, row) for name, row in tomllib.loads(text).items()}


@dataclass(frozen=True)
class ApiSettings:
    """The opt-in Z.ai quota endpoint (`[api]`). Holds the *name* of the key's env var, never the key."""

    enabled: bool = False
    key_env: str = "ZAI_API_KEY"
    use_claude_token: bool = False
    region: str = "auto"
    base_url: str | None = None
    interval: float = 60.0
    timeout: float = 10.0
    drift_margin: float = 15.0
    """Percentage points between official and local before the gauge warns of drift."""


@dataclass(frozen=True)
class ProxyEndpoint:
    """One `[[proxy]]` Prometheus endpoint."""

    name: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    interval: float = 30.0
    preset: str | None = "litellm"
    metric_map: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    """Everything configurable, with defaults that work with no file at all."""

    plan: Plan = field(default_factory=lambda: builtin_plans()["pro"])
    plans: Mapping[str, Plan] = field(default_factory=builtin_plans)
    renewal_day: int = 1
    timezone: str | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)
    bell: bool = False
    theme: str | None = None
    disabled_tools: frozenset[str] = frozenset()
    extra_roots: Mapping[str, tuple[Path, ...]] = field(default_factory=dict)
    api: ApiSettings = field(default_factory=ApiSettings)
    proxies: tuple[ProxyEndpoint, ...] = ()
    source_path: Path | None = None
    """The file this came from, if any (shown by `doctor`)."""

    @property
    def enabled_tools(self) -> frozenset[str]:
        """Tool ids not switched off in config."""
        return frozenset(TOOL_IDS) - self.disabled_tools

    def fingerprint(self) -> str:
        """A short digest of everything that changes the numbers (for the status fast path)."""
        import hashlib

        parts = (
            self.plan, self.renewal_day, self.timezone, self.thresholds,
            sorted(self.disabled_tools), sorted((k, tuple(map(str, v))) for k, v in self.extra_roots.items()),
            self.api.enabled, tuple(p.url for p in self.proxies),
        )  # fmt: skip
        return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]

    def tz(self) -> tzinfo:
        """The configured timezone, else the system's (by name, so DST is handled)."""
        return resolve_timezone(self.timezone)


def resolve_timezone(name: str | None) -> tzinfo:
    """A `ZoneInfo` for `name`, else for `$TZ` / `/etc/localtime`, else the current fixed offset."""
    for candidate in (name, os.environ.get("TZ", "").lstrip(":") or None, _system_zone_name()):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                if candidate == name:
                    raise
    from datetime import datetime

    return datetime.now().astimezone().tzinfo or ZoneInfo("UTC")


def _system_zone_name() -> str | None:
    try:
        target = os.readlink("/etc/localtime")
    except OSError:
        return None
    marker = "zoneinfo/"
    return target.split(marker, 1)[1] if marker in target else None


def default_config_path(env: Mapping[str, str]) -> Path:
    """Where the config file lives unless told otherwise."""
    if env.get("ZAI_DASH_CONFIG"):
        return Path(env["ZAI_DASH_CONFIG"])
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME", str(Path.home()))) / ".config")
    return Path(base) / "zai-dash" / "config.toml"


def load_config(path: Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read the config file (if any) and apply environment overrides.

    Environment: `ZAI_DASH_PLAN`, `ZAI_DASH_RENEWAL_DAY`, `ZAI_DASH_TIMEZONE` override the file.

    Raises:
        ConfigError: with "FILE:LINE: problem" text.
    """
    env = os.environ if env is None else env
    explicit = path is not None or bool(env.get("ZAI_DASH_CONFIG"))
    path = path or default_config_path(env)
    data: dict[str, Any] = {}
    text = ""
    if path.exists() or explicit:
        try:
            text = read_text_capped(path)  # a FIFO or /dev/zero here must be an error, not a hang
            data = tomllib.loads(text)
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read config ({exc})") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(_toml_message(path, text, exc)) from None
    overrides = {
        "plan": env.get("ZAI_DASH_PLAN"),
        "renewal_day": env.get("ZAI_DASH_RENEWAL_DAY"),
        "timezone": env.get("ZAI_DASH_TIMEZONE"),
    }
    try:
        return _build(data, overrides, path if data or text else None)
    except _Problem as problem:
        where = _line_of(text, problem.key) if text else None
        loc = f"{path}:{where}" if where else (str(path) if text else "environment")
        raise ConfigError(f"{loc}: {problem.message}") from None


class _Problem(Exception):
    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


def _toml_message(path: Path, text: str, exc: Exception) -> str:
    """`FILE:LINE: invalid TOML: …` from tomllib's "Invalid value (at line 3, column 8)"."""
    message = str(exc)
    m = re.search(r"\(at line (\d+), column (\d+)\)", message)
    if m:
        return f"{path}:{m.group(1)}: invalid TOML: {message[: m.start()].strip()} (column {m.group(2)})"
    m = re.search(r"\(at end of document\)", message)
    last = max(1, len(text.rstrip("\n").split("\n")))
    detail = message[: m.start()].strip() if m else message
    return f"{path}:{last}: invalid TOML: {detail} (at end of file)"


def _line_of(text: str, key: str) -> int | None:
    leaf = key.rsplit(".", 1)[-1]
    pattern = re.compile(
        rf"^[ \t]*\"?{re.escape(leaf)}\"?[ \t]*=|^[ \t]*\[+[ \t]*{re.escape(key)}[ \t]*\]+", re.MULTILINE
    )
    m = pattern.search(text)
    return text.count("\n", 0, m.start()) + 1 if m else None


def _typed(table: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = table.get(key)
    if value is None:
        return None
    if isinstance(value, bool) and kind is not bool and bool not in (kind if isinstance(kind, tuple) else ()):
        raise _Problem(f"{where}{key}", f"{where}{key} must be {_kind_name(kind)}, got {value!r}")
    if not isinstance(value, kind):
        raise _Problem(f"{where}{key}", f"{where}{key} must be {_kind_name(kind)}, got {value!r}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", list: "a list"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


_KNOWN_TOP = {
    "plan",
    "limits",
    "plans",
    "renewal_day",
    "timezone",
    "thresholds",
    "bell",
    "theme",
    "tools",
    "api",
    "proxy",
}


def _build(data: Mapping[str, Any], env: Mapping[str, str | None], source: Path | None) -> Config:
    unknown = sorted(set(data) - _KNOWN_TOP)
    if unknown:
        raise _Problem(unknown[0], f"unknown setting {unknown[0]!r} (known: {', '.join(sorted(_KNOWN_TOP))})")
    plans = builtin_plans()
    custom = data.get("plans", {})
    if not isinstance(custom, dict):
        raise _Problem("plans", "[plans] must be a table of plan tables")
    for name, row in custom.items():
        base = plans.get(name.lower())
        merged = {**(_plan_row(base) if base else {}), **row} if isinstance(row, dict) else row
        if not isinstance(merged, dict):
            raise _Problem(f"plans.{name}", f"[plans.{name}] must be a table")
        try:
            plans[name.lower()] = plan_from_mapping(name.lower(), merged)
        except ValueError as exc:
            raise _Problem(f"plans.{name}", f"[plans.{name}]: {exc}") from None

    plan_name = env.get("plan") or _typed(data, "plan", str, "") or "pro"
    plan_name = plan_name.lower()
    if plan_name not in plans:
        raise _Problem("plan", f"unknown plan {plan_name!r} (known: {', '.join(sorted(plans))})")
    plan = plans[plan_name]
    limits = data.get("limits", {})
    if not isinstance(limits, dict):
        raise _Problem("limits", "[limits] must be a table")
    if limits:
        try:
            plan = plan_from_mapping(plan.name, {**_plan_row(plan), **limits})
        except ValueError as exc:
            raise _Problem(f"limits.{next(iter(limits))}", f"[limits]: {exc}") from None

    renewal_raw: Any = env.get("renewal_day") or _typed(data, "renewal_day", int, "") or 1
    try:
        renewal_day = int(renewal_raw)
    except ValueError:
        raise _Problem("renewal_day", f"renewal_day must be 1–31, got {renewal_raw!r}") from None
    if not 1 <= renewal_day <= 31:
        raise _Problem("renewal_day", f"renewal_day must be 1–31, got {renewal_day}")

    tz_name = env.get("timezone") or _typed(data, "timezone", str, "")
    if tz_name:
        try:
            ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError):
            problem = f"unknown timezone {tz_name!r} (use an IANA name like Europe/Berlin)"
            raise _Problem("timezone", problem) from None

    th = data.get("thresholds", {})
    if not isinstance(th, dict):
        raise _Problem("thresholds", "[thresholds] must be a table")
    warning = _percent(th, "warning", 75)
    critical = _percent(th, "critical", 90)
    if warning >= critical:
        raise _Problem("thresholds.warning", "thresholds.warning must be below thresholds.critical")

    disabled: set[str] = set()
    extra: dict[str, tuple[Path, ...]] = {}
    tools = data.get("tools", {})
    if not isinstance(tools, dict):
        raise _Problem("tools", "[tools] must be a table of tool tables")
    for tool, row in tools.items():
        if tool not in TOOL_IDS:
            raise _Problem(f"tools.{tool}", f"unknown tool {tool!r} (known: {', '.join(TOOL_IDS)})")
        if not isinstance(row, dict):
            raise _Problem(f"tools.{tool}", f"[tools.{tool}] must be a table")
        if _typed(row, "enabled", bool, f"tools.{tool}.") is False:
            disabled.add(tool)
        roots = _typed(row, "roots", list, f"tools.{tool}.") or []
        if not all(isinstance(r, str) for r in roots):
            raise _Problem(f"tools.{tool}.roots", f"tools.{tool}.roots must be a list of paths")
        extra[tool] = tuple(Path(os.path.expanduser(r)) for r in roots)

    return Config(
        plan=plan,
        plans=plans,
        renewal_day=renewal_day,
        timezone=tz_name,
        thresholds=Thresholds(warning / 100, critical / 100),
        bell=bool(_typed(data, "bell", bool, "")),
        theme=_typed(data, "theme", str, ""),
        disabled_tools=frozenset(disabled),
        extra_roots=extra,
        api=_api(data.get("api", {})),
        proxies=_proxies(data.get("proxy", [])),
        source_path=source,
    )


def _plan_row(plan: Plan) -> dict[str, Any]:
    return {
        "prompts_per_cycle": plan.prompts_per_cycle,
        "searches_per_month": plan.searches_per_month,
        "calls_per_prompt": plan.calls_per_prompt,
        "cycle_hours": plan.cycle.total_seconds() / 3600,
    }


def _percent(table: Mapping[str, Any], key: str, default: float) -> float:
    value = _typed(table, key, (int, float), "thresholds.")
    if value is None:
        return default
    if not 0 < value <= 100:
        raise _Problem(f"thresholds.{key}", f"thresholds.{key} must be a percentage in (0, 100], got {value}")
    return float(value)


def _api(table: Any) -> ApiSettings:
    if not isinstance(table, dict):
        raise _Problem("api", "[api] must be a table")
    region = _typed(table, "region", str, "api.") or "auto"
    if region not in {"auto", "intl", "cn"}:
        raise _Problem("api.region", f"api.region must be auto, intl or cn, got {region!r}")
    interval = float(_typed(table, "interval", (int, float), "api.") or 60)
    return ApiSettings(
        enabled=bool(_typed(table, "enabled", bool, "api.")),
        key_env=_typed(table, "key_env", str, "api.") or "ZAI_API_KEY",
        use_claude_token=bool(_typed(table, "use_claude_token", bool, "api.")),
        region=region,
        base_url=_typed(table, "base_url", str, "api."),
        interval=max(30.0, interval),
        timeout=float(_typed(table, "timeout", (int, float), "api.") or 10),
        drift_margin=float(_typed(table, "drift_margin", (int, float), "api.") or 15),
    )


def _proxies(rows: Any) -> tuple[ProxyEndpoint, ...]:
    if not isinstance(rows, list):
        raise _Problem("proxy", "[[proxy]] must be an array of tables")
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise _Problem("proxy", "[[proxy]] entries must be tables")
        url = _typed(row, "url", str, "proxy.")
        if not url:
            raise _Problem("proxy", f"[[proxy]] number {i + 1} needs a url")
        headers = row.get("headers", {})
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            raise _Problem("proxy.headers", "proxy.headers must be a table of strings")
        metric_map = row.get("metrics", {})
        if not isinstance(metric_map, dict):
            raise _Problem("proxy.metrics", "proxy.metrics must be a table")
        out.append(
            ProxyEndpoint(
                name=_typed(row, "name", str, "proxy.") or f"proxy{i + 1}",
                url=url,
                headers=dict(headers),
                interval=max(5.0, float(_typed(row, "interval", (int, float), "proxy.") or 30)),
                preset=_typed(row, "preset", str, "proxy.") or ("litellm" if not metric_map else None),
                metric_map=metric_map,
            )
        )
    return tuple(out)
