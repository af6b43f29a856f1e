"""TOML config plus environment overrides → one frozen `Config`.

Lookup: `--config PATH`, else `$ZAI_DASH_CONFIG`, else `$XDG_CONFIG_HOME/zai-dash/config.toml`. A missing file
means defaults; a broken one raises `ConfigError` whose message names the file, the line and the problem.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from zai_dash import paths
from zai_dash.domain.plans import Plan, Thresholds, plan_from_mapping, plan_from_tariff
from zai_dash.domain.tariff import BILLINGS, WINDOW_IDS, Tariff, TariffError, merge_tariff, tariff_from_mapping
from zai_dash.sources.safeio import read_text_capped  # stdlib only: checked opens, no adapters

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib


class ConfigError(Exception):
    """A config problem, already phrased as the one line the user sees."""


@lru_cache(maxsize=1)
def packaged_tariff_data() -> Mapping[str, Any]:
    """The packaged `data/tariff.toml`, parsed once per process (callers must not mutate it)."""
    # Read beside this module rather than through importlib.resources: `status` pays for every import.
    text = (Path(__file__).parent / "data" / "tariff.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


@lru_cache(maxsize=1)
def packaged_tariff() -> Tariff:
    """The packaged tariff with no overrides."""
    return tariff_from_mapping(packaged_tariff_data())


DEFAULT_PLAN = "pro"
DEFAULT_BILLING = "credits"
"""What zai-dash assumes with no config: the plan Z.ai sells today."""


def builtin_plans(billing: str = DEFAULT_BILLING) -> dict[str, Plan]:
    """The packaged tiers of one billing generation (Lite / Pro / Max, and the team seats on credits)."""
    return dict(_builtin_plans(billing))


@lru_cache(maxsize=len(BILLINGS))
def _builtin_plans(billing: str) -> Mapping[str, Plan]:
    tariff = packaged_tariff()
    # The packaged pools are not dated, so the instant they are resolved at does not matter.
    now = datetime.now(timezone.utc)
    return {name: plan_from_tariff(tariff, billing, name, now) for name in tariff.plan_names(billing)}


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
class OtlpSettings:
    """The `[otlp]` receiver for tools' OpenTelemetry (its presence turns it on). The token is named, never held."""

    enabled: bool = False
    listen: str = "127.0.0.1:4318"
    token_env: str | None = None
    machine: str | None = None


@dataclass(frozen=True)
class FleetSettings:
    """The `[fleet]` Prometheus server that scrapes every box's `zai-dash export`."""

    prometheus: str | None = None
    interval: float = 30.0
    timeout: float = 5.0
    machine: str | None = None
    """This machine's `machine` label, so its own series count once (default: the host name)."""


@dataclass(frozen=True)
class Config:
    """Everything configurable, with defaults that work with no file at all."""

    plan: Plan = field(default_factory=lambda: builtin_plans()[DEFAULT_PLAN])
    plans: Mapping[str, Plan] = field(default_factory=builtin_plans)
    billing: str = DEFAULT_BILLING
    """The billing generation: `credits` (sold since 2026-07-30), `legacy-v2` or `legacy-v1`."""
    tariff: Tariff = field(default_factory=packaged_tariff)
    """The packaged tariff with the config's `[tariff]` overrides and custom plans merged in."""
    tariff_overrides: Mapping[str, Any] = field(default_factory=dict)
    """What the config changed in the tariff (for the fingerprint and `doctor`)."""
    plan_explicit: bool = False
    """Whether the user chose a plan (config, env or `--plan`); without one views say "assuming Pro"."""
    billing_explicit: bool = False
    """Whether the user chose the billing generation."""
    weekly_reset: datetime | None = None
    """Any instant (aware, UTC) at which the weekly window reset; it repeats every 7 days."""
    renewal_day: int = 1
    timezone: str | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)
    bell: bool = False
    theme: str | None = None
    title: bool = True
    """Whether the dashboard puts its key figure in the terminal's window title (`title = false`, `--no-title`)."""
    disabled_tools: frozenset[str] = frozenset()
    extra_roots: Mapping[str, tuple[Path, ...]] = field(default_factory=dict)
    api: ApiSettings = field(default_factory=ApiSettings)
    proxies: tuple[ProxyEndpoint, ...] = ()
    otlp: OtlpSettings = field(default_factory=OtlpSettings)
    fleet: FleetSettings = field(default_factory=FleetSettings)
    source_path: Path | None = None
    """The file this came from, if any (shown by `doctor`)."""

    def fingerprint(self) -> str:
        """A short digest of everything that changes the numbers (for the status fast path)."""
        import hashlib

        parts = (
            self.plan, self.billing, self.weekly_reset, sorted(self.tariff_overrides.items(), key=str),
            self.renewal_day, self.timezone, self.thresholds,
            sorted(self.disabled_tools), sorted((k, tuple(map(str, v))) for k, v in self.extra_roots.items()),
            self.api.enabled, tuple(p.url for p in self.proxies), self.otlp.enabled, self.fleet.prometheus,
        )  # fmt: skip
        return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]

    def assumption(self) -> str:
        """`assuming Pro, credits` when neither config, environment nor `--plan` chose the plan or billing; else ""."""
        if self.plan_explicit and self.billing_explicit:
            return ""
        return f"assuming {self.plan.name.title()}, {self.billing}"

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


_ENV_SETTINGS = ("plan", "billing", "weekly_reset", "renewal_day", "timezone")
"""Settings an environment variable `ZAI_DASH_<NAME>` overrides."""


KnownTools = Callable[[], Collection[str]]
"""Gives the registered tool ids (the CLI passes the adapters' registry; called only for a `[tools]` table)."""


def load_config(
    path: Path | None = None,
    env: Mapping[str, str] | None = None,
    known_tools: KnownTools | None = None,
    now: datetime | None = None,
) -> Config:
    """Read the config file (if any) and apply environment overrides.

    Environment: `ZAI_DASH_PLAN`, `ZAI_DASH_BILLING`, `ZAI_DASH_WEEKLY_RESET`, `ZAI_DASH_RENEWAL_DAY`,
    `ZAI_DASH_TIMEZONE` override the file.

    Args:
        path: the config file (default: `$ZAI_DASH_CONFIG`, else the XDG location).
        env: the environment (default: `os.environ`).
        known_tools: when given, rejects a `[tools.X]` table no adapter declares (config cannot import
            the adapters itself; asking only when there is such a table keeps `status` fast).
        now: the instant the plan's pools are resolved at (default: the wall clock).

    Raises:
        ConfigError: with "FILE:LINE: problem" text.
    """
    env = os.environ if env is None else env
    explicit = path is not None or bool(env.get("ZAI_DASH_CONFIG"))
    path = path or paths.config_file(env)
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
    overrides = {key: env.get(f"ZAI_DASH_{key.upper()}") for key in _ENV_SETTINGS}
    try:
        return _build(data, overrides, path if data or text else None, known_tools, now)
    except _Problem as problem:
        where = _line_of(text, problem.path) if text else None
        loc = f"{path}:{where}" if where else (str(path) if text else "environment")
        raise ConfigError(f"{loc}: {problem.message}") from None


class _Problem(Exception):
    def __init__(self, key: str | tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.path = key if isinstance(key, tuple) else tuple(key.split("."))
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


_HEADER = re.compile(r"^[ \t]*\[\[?[ \t]*(.+?)[ \t]*\]\]?[ \t]*(?:#.*)?$")
_KEY_PART = re.compile(r'"([^"]*)"|\'([^\']*)\'|([^.\s"\']+)')


def _key_parts(dotted: str) -> tuple[str, ...]:
    """`tariff.rates."glm-5.3"` → ('tariff', 'rates', 'glm-5.3')."""
    return tuple(next(g for g in m.groups() if g is not None) for m in _KEY_PART.finditer(dotted))


def _line_of(text: str, path: tuple[str, ...]) -> int | None:
    """The 1-based line that sets `path`: under the deepest table header it lies in, else that header."""
    lines = text.split("\n")
    start, depth = -1, 0
    for i, line in enumerate(lines):
        m = _HEADER.match(line)
        if m and len(parts := _key_parts(m.group(1))) > depth and path[: len(parts)] == parts:
            start, depth = i, len(parts)
    end = next((i for i in range(start + 1, len(lines)) if _HEADER.match(lines[i])), len(lines))
    found = start if start >= 0 else None
    for part in path[depth:]:
        key = re.compile(rf"(?:^|[{{,.\s])[\"']?{re.escape(part)}[\"']?[ \t]*[=.]")
        if found is not None and found != start and key.search(lines[found]):
            continue  # an inline table on the same line
        hit = next((j for j in range((found if found is not None else -1) + 1, end) if key.search(lines[j])), None)
        if hit is not None:  # else not written (a version date an undated override applies to): skip it
            found = hit
    return found + 1 if found is not None else None


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
    "billing",
    "weekly_reset",
    "limits",
    "plans",
    "renewal_day",
    "vision_credits",
    "default_model",
    "tariff",
    "timezone",
    "thresholds",
    "bell",
    "theme",
    "title",
    "tools",
    "api",
    "proxy",
    "otlp",
    "fleet",
}
_LEGACY_FIELDS = ("prompts_per_cycle", "searches_per_month", "calls_per_prompt", "cycle_hours")
"""A plan table's fields from before the credits plans (they count prompts)."""
_PLAN_FIELDS = frozenset({"base", *WINDOW_IDS, *_LEGACY_FIELDS})


def _build(
    data: Mapping[str, Any],
    env: Mapping[str, str | None],
    source: Path | None,
    known_tools: KnownTools | None,
    now: datetime | None = None,
) -> Config:
    unknown = sorted(set(data) - _KNOWN_TOP)
    if unknown:
        raise _Problem(unknown[0], f"unknown setting {unknown[0]!r} (known: {', '.join(sorted(_KNOWN_TOP))})")
    now = now or datetime.now(timezone.utc)
    plan_raw = env.get("plan") or _typed(data, "plan", str, "")
    plan_name = (plan_raw or DEFAULT_PLAN).lower()
    rows = _plan_rows(data, plan_name)
    billing_raw = env.get("billing") or _typed(data, "billing", str, "")
    billing = _billing(billing_raw, plan_name, rows.get(plan_name, {}))
    overrides = _tariff_overrides(data, billing, rows)
    try:
        tariff = tariff_from_mapping(merge_tariff(packaged_tariff_data(), overrides))
    except TariffError as exc:
        shortcut = exc.path[:1] == ("default_model",) and "default_model" in data
        raise _Problem(exc.path if shortcut else ("tariff", *exc.path), str(exc)) from None
    if plan_name not in tariff.plan_names(billing):
        raise _unsold(tariff, plan_name, billing, bool(billing_raw), plan_name in rows)

    def resolve(name: str) -> Plan:
        legacy = {k: v for k, v in rows.get(name, {}).items() if k in _LEGACY_FIELDS}
        return plan_from_tariff(tariff, billing, name, now, legacy)

    plans = {name: resolve(name) for name in tariff.plan_names(billing)}

    renewal_raw: Any = env.get("renewal_day") or _typed(data, "renewal_day", int, "")
    renewal_raw = 1 if renewal_raw is None else renewal_raw
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
    known = known_tools() if tools and known_tools is not None else None
    for tool, row in tools.items():
        if known is not None and tool not in known:
            raise _Problem(f"tools.{tool}", f"unknown tool {tool!r} (known: {', '.join(known)})")
        if not isinstance(row, dict):
            raise _Problem(f"tools.{tool}", f"[tools.{tool}] must be a table")
        if _typed(row, "enabled", bool, f"tools.{tool}.") is False:
            disabled.add(tool)
        roots = _typed(row, "roots", list, f"tools.{tool}.") or []
        if not all(isinstance(r, str) for r in roots):
            raise _Problem(f"tools.{tool}.roots", f"tools.{tool}.roots must be a list of paths")
        extra[tool] = tuple(Path(os.path.expanduser(r)) for r in roots)

    return Config(
        plan=plans[plan_name],
        plans=plans,
        billing=billing,
        tariff=tariff,
        tariff_overrides=overrides,
        plan_explicit=bool(plan_raw),
        billing_explicit=bool(billing_raw),
        weekly_reset=_weekly_reset(env.get("weekly_reset") or data.get("weekly_reset")),
        renewal_day=renewal_day,
        timezone=tz_name,
        thresholds=Thresholds(warning / 100, critical / 100),
        bell=bool(_typed(data, "bell", bool, "")),
        theme=_typed(data, "theme", str, ""),
        title=_typed(data, "title", bool, "") is not False,
        disabled_tools=frozenset(disabled),
        extra_roots=extra,
        api=_api(data.get("api", {})),
        proxies=_proxies(data.get("proxy", [])),
        otlp=_otlp(data.get("otlp")),
        fleet=_fleet(data.get("fleet")),
        source_path=source,
    )


def _plan_rows(data: Mapping[str, Any], plan_name: str) -> dict[str, dict[str, Any]]:
    """`[plans.<name>]` tables (names lower-cased) with `[limits]` folded into the chosen plan's, checked."""
    custom = data.get("plans", {})
    if not isinstance(custom, dict):
        raise _Problem("plans", "[plans] must be a table of plan tables")
    rows: dict[str, dict[str, Any]] = {}
    for name, row in custom.items():
        rows[name.lower()] = _plan_row(row, ("plans", name), f"[plans.{name}]")
    limits = data.get("limits", {})
    if not isinstance(limits, dict):
        raise _Problem("limits", "[limits] must be a table")
    if limits:
        rows[plan_name] = {**rows.get(plan_name, {}), **_plan_row(limits, ("limits",), "[limits]")}
    return rows


def _plan_row(row: Any, path: tuple[str, ...], label: str) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise _Problem(path, f"{label} must be a table")
    unknown = sorted(set(row) - _PLAN_FIELDS)
    if unknown:
        known = ", ".join(sorted(_PLAN_FIELDS))
        raise _Problem((*path, unknown[0]), f"{label}: unknown field {unknown[0]!r} (known: {known})")
    for window in WINDOW_IDS:
        value = row.get(window)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
            raise _Problem((*path, window), f"{label}: {window} must be a number ≥ 0, got {value!r}")
    if "base" in row and not isinstance(row["base"], str):
        raise _Problem((*path, "base"), f"{label}: base must be a plan name, got {row['base']!r}")
    legacy = {k: row[k] for k in _LEGACY_FIELDS if k in row}
    try:
        plan_from_mapping("check", {"prompts_per_cycle": 1, "searches_per_month": 0, **legacy})
    except ValueError as exc:
        field_name = str(exc).split(" ", 1)[0]
        raise _Problem((*path, field_name), f"{label}: {exc}") from None
    return dict(row)


def _billing(raw: str | None, plan_name: str, row: Mapping[str, Any]) -> str:
    """The billing generation: as configured, else credits (the plan sold today).

    A custom plan that only counts prompts (`prompts_per_cycle`, no window pools) was written for the
    legacy V1 plan and keeps meaning that.
    """
    if raw:
        billing = raw.lower()
        if billing not in BILLINGS:
            raise _Problem("billing", f"billing must be one of {', '.join(BILLINGS)}, got {raw!r}")
        return billing
    builtin = {name for b in BILLINGS for name in packaged_tariff().plan_names(b)}
    legacy_only = any(k in row for k in _LEGACY_FIELDS[:2]) and not any(w in row for w in WINDOW_IDS)
    if plan_name not in builtin and "base" not in row and legacy_only:
        return "legacy-v1"
    return DEFAULT_BILLING


def _tariff_overrides(data: Mapping[str, Any], billing: str, rows: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Everything the config changes in the tariff: `[tariff]`, the shortcuts, and the plans' pools."""
    table = data.get("tariff", {})
    if not isinstance(table, dict):
        raise _Problem("tariff", "[tariff] must be a table (the layout of the packaged tariff.toml)")
    overrides: dict[str, Any] = dict(table)
    vision = _typed(data, "vision_credits", (int, float), "")
    if vision is not None:
        if vision < 0:
            raise _Problem("vision_credits", f"vision_credits must be ≥ 0, got {vision}")
        overrides = merge_tariff(overrides, {"mcp": {"vision": vision}})
    default_model = _typed(data, "default_model", str, "")
    if default_model is not None:
        overrides["default_model"] = default_model
    known = merge_tariff(packaged_tariff_data(), overrides).get("billing", {}).get(billing, {}).get("plans", {})
    pools: dict[str, Any] = {}
    for name, row in rows.items():
        windows: dict[str, Any] = {}
        base = row.get("base")
        if base is not None:
            if base.lower() not in known:
                raise _Problem(("plans", name, "base"), f"[plans.{name}]: no plan {base!r} on {billing} billing")
            windows.update(known[base.lower()])
        if billing != "credits":
            # Before the credits plans a plan table counted prompts per 5 hours and searches per month.
            for legacy, window in (("prompts_per_cycle", "5h"), ("searches_per_month", "monthly-mcp")):
                if legacy in row:
                    windows[window] = row[legacy]
        windows.update({w: row[w] for w in WINDOW_IDS if w in row})
        if windows or name in known:
            pools[name] = windows
    if pools:
        overrides = merge_tariff(overrides, {"billing": {billing: {"plans": pools}}})
    return overrides


def _unsold(tariff: Tariff, plan: str, billing: str, billing_explicit: bool, custom: bool) -> _Problem:
    """Why `plan` has no pools on `billing`."""
    elsewhere = [b for b in tariff.billings if plan in tariff.plan_names(b)]
    if elsewhere:
        problem = f"plan {plan!r} is not sold on {billing} billing (it is on {', '.join(elsewhere)})"
        return _Problem("billing" if billing_explicit else "plan", problem)
    if custom:
        windows = ", ".join(WINDOW_IDS)
        problem = f"[plans.{plan}] sets no pool for {billing} billing (set {windows}, or base = a built-in plan)"
        return _Problem(("plans", plan), problem)
    known = ", ".join(sorted(tariff.plan_names(billing)))
    return _Problem("plan", f"unknown plan {plan!r} (known on {billing} billing: {known})")


def _weekly_reset(raw: Any) -> datetime | None:
    """`weekly_reset` as an aware UTC instant (a TOML offset date-time or an ISO 8601 string)."""
    if raw is None:
        return None
    value = raw
    if isinstance(raw, str):
        text = raw.strip()
        try:
            value = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
        except ValueError:
            value = None
    if not isinstance(value, datetime) and isinstance(raw, date):
        raise _Problem("weekly_reset", f"weekly_reset must be an instant with a time and UTC offset, got {raw}")
    if not isinstance(value, datetime):
        problem = f"weekly_reset must be an ISO 8601 instant like 2026-11-03T09:00:00+08:00, got {raw!r}"
        raise _Problem("weekly_reset", problem)
    if value.tzinfo is None or value.utcoffset() is None:
        raise _Problem("weekly_reset", f"weekly_reset needs a UTC offset (e.g. {value.isoformat()}+08:00)")
    return value.astimezone(timezone.utc)


def _percent(table: Mapping[str, Any], key: str, default: float) -> float:
    value = _typed(table, key, (int, float), "thresholds.")
    if value is None:
        return default
    if not 0 < value <= 100:
        raise _Problem(f"thresholds.{key}", f"thresholds.{key} must be a percentage in (0, 100], got {value}")
    return float(value)


def _number_or(table: Mapping[str, Any], key: str, default: float, where: str, positive: bool = False) -> float:
    """A number ≥ 0 (> 0 when `positive`), or `default` when unset; an explicit zero is kept."""
    value = _typed(table, key, (int, float), where)
    if value is None:
        return default
    if value < 0 or (positive and value == 0):
        raise _Problem(f"{where}{key}", f"{where}{key} must be {'> 0' if positive else '≥ 0'}, got {value}")
    return float(value)


def _api(table: Any) -> ApiSettings:
    if not isinstance(table, dict):
        raise _Problem("api", "[api] must be a table")
    region = _typed(table, "region", str, "api.") or "auto"
    if region not in {"auto", "intl", "cn"}:
        raise _Problem("api.region", f"api.region must be auto, intl or cn, got {region!r}")
    interval = _number_or(table, "interval", 60.0, "api.")
    return ApiSettings(
        enabled=bool(_typed(table, "enabled", bool, "api.")),
        key_env=_typed(table, "key_env", str, "api.") or "ZAI_API_KEY",
        use_claude_token=bool(_typed(table, "use_claude_token", bool, "api.")),
        region=region,
        base_url=_typed(table, "base_url", str, "api."),
        interval=max(30.0, interval),
        timeout=_number_or(table, "timeout", 10.0, "api.", positive=True),
        drift_margin=_number_or(table, "drift_margin", 15.0, "api."),
    )


def _optional_table(table: Any, name: str) -> dict[str, Any] | None:
    """An optional `[name]` table: None when absent; a value that is not a table is a problem."""
    if table is not None and not isinstance(table, dict):
        raise _Problem(name, f"[{name}] must be a table")
    return table


def _otlp(raw: Any) -> OtlpSettings:
    table = _optional_table(raw, "otlp")
    if table is None:
        return OtlpSettings()
    return OtlpSettings(
        enabled=_typed(table, "enabled", bool, "otlp.") is not False,  # the table's presence turns it on
        listen=_typed(table, "listen", str, "otlp.") or "127.0.0.1:4318",
        token_env=_typed(table, "token_env", str, "otlp."),
        machine=_typed(table, "machine", str, "otlp."),
    )


def _fleet(raw: Any) -> FleetSettings:
    table = _optional_table(raw, "fleet")
    if table is None:
        return FleetSettings()
    url = _typed(table, "prometheus", str, "fleet.")
    if not url:
        raise _Problem("fleet", '[fleet] needs prometheus = "http://HOST:9090"')
    return FleetSettings(
        prometheus=url,
        interval=max(5.0, _number_or(table, "interval", 30.0, "fleet.", positive=True)),
        timeout=_number_or(table, "timeout", 5.0, "fleet.", positive=True),
        machine=_typed(table, "machine", str, "fleet."),
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
                interval=max(5.0, _number_or(row, "interval", 30.0, "proxy.")),
                preset=_typed(row, "preset", str, "proxy.") or ("litellm" if not metric_map else None),
                metric_map=metric_map,
            )
        )
    return tuple(out)
