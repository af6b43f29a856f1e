"""TOML config plus environment overrides → one frozen `Config`.

Lookup: `--config PATH`, else `$ZAI_DASH_CONFIG`, else `$XDG_CONFIG_HOME/zai-dash/config.toml`. A missing file
means defaults; a broken one raises `ConfigError` whose message names the file, the line and the problem.
"""

# ruff: noqa: RUF009 - `setting(...)` returns `dataclasses.field(...)`, which ruff only recognises by name

from __future__ import annotations

import os
import re
import sys
import types
import typing
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import MISSING, Field, dataclass, field, fields, is_dataclass, replace
from datetime import date, datetime, timezone, tzinfo
from functools import cache, lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from zai_dash import paths
from zai_dash.clock import SYSTEM_CLOCK, local_zone
from zai_dash.domain.plans import Plan, Thresholds, plan_from_tariff
from zai_dash.domain.tariff import BILLINGS, WINDOW_IDS, Tariff, TariffError, merge_tariff, tariff_from_mapping
from zai_dash.safeio import read_text_capped  # stdlib only: checked opens, no adapters

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
    now = SYSTEM_CLOCK.now()
    return {name: plan_from_tariff(tariff, billing, name, now) for name in tariff.plan_names(billing)}


THEMES = (
    "ansi-dark", "ansi-light", "atom-one-dark", "atom-one-light", "catppuccin-frappe", "catppuccin-latte",
    "catppuccin-macchiato", "catppuccin-mocha", "dracula", "flexoki", "gruvbox", "monokai", "nord", "rose-pine",
    "rose-pine-dawn", "rose-pine-moon", "solarized-dark", "solarized-light", "textual-dark", "textual-light",
    "tokyo-night", "zai-ansi",
)  # fmt: skip
"""The dashboard's themes: Textual's built-in ones and our `zai-ansi` (`ui/palette.py`). Named here, not
asked of Textual: importing `textual.theme` costs `status` 0.2 s. `tests/engine/test_config.py` checks the list
against Textual's and the palette's."""


def unknown_theme(name: str) -> str | None:
    """Why `name` is not a theme (the message lists them), or None when it is one."""
    return None if name in THEMES else f"unknown theme {name!r} (themes: {', '.join(THEMES)})"


def setting(
    default: Any = MISSING,
    doc: str = "",
    *,
    factory: Callable[[], Any] | None = None,
    toml: str | None = None,
    floor: float | None = None,
    schema: Mapping[str, Any] | None = None,
    **bounds: Any,
) -> Any:
    """One config setting, declared once: its default, the line editors show, and what values it takes.

    Args:
        default: the value when the file does not set it (omit for a required setting).
        doc: one line for the JSON Schema (editors show it on hover).
        factory: makes the default instead (mutable defaults).
        toml: the key in the file when it is not the attribute's name (`5h`, `metrics`).
        floor: a smaller value from the file is raised to this (poll intervals), not refused.
        schema: extra JSON Schema for a value msgspec cannot type (`weekly_reset`).
        **bounds: `msgspec.Meta` constraints (`ge`, `gt`, `le`, `min_length`); a value outside is an error.
    """
    meta = {"doc": doc, "toml": toml, "floor": floor, "schema": schema, "bounds": bounds}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


# The settings types: one frozen dataclass per config table, used as they are by the sources. msgspec
# validates a file into them (see `_struct`); with no file it is never imported.


@dataclass(frozen=True)
class ApiSettings:
    """The opt-in Z.ai quota endpoint (`[api]`). Holds the *name* of the key's env var, never the key."""

    enabled: bool = setting(False, "Poll Z.ai's quota endpoint (off unless turned on).")
    key_env: str = setting(
        "ZAI_API_KEY", "The NAME of the environment variable holding the API key; the key is never stored.",
        min_length=1,
    )  # fmt: skip
    use_claude_token: bool = setting(
        False, "Also use ANTHROPIC_AUTH_TOKEN from Claude Code's settings when its base URL is a Z.ai host."
    )
    region: Literal["auto", "intl", "cn"] = setting(
        "auto", "auto (from Claude Code's base URL), intl (api.z.ai) or cn (open.bigmodel.cn)."
    )
    base_url: str | None = setting(None, "Replaces the host entirely (a corporate proxy).", min_length=1)
    interval: float = setting(60.0, "Seconds between polls (floor 30).", floor=30.0, ge=0)
    timeout: float = setting(10.0, "Seconds before a request is abandoned.", gt=0)
    drift_margin: float = setting(
        15.0, "Percentage points between official and local before the gauge warns of drift.", ge=0
    )
    stale_after: float | None = setting(
        None, "Seconds after which the last reading is shown as stale (default: three intervals).", gt=0
    )


@dataclass(frozen=True, kw_only=True)
class ProxyEndpoint:
    """One `[[proxy]]` Prometheus endpoint (a LiteLLM proxy, another machine's `zai-dash export`, …)."""

    name: str = setting("", "The endpoint's name in views (default: proxy1, proxy2, …).", min_length=1)
    url: str = setting(doc="The metrics URL.", min_length=1)
    headers: Mapping[str, str] = setting(
        doc="Request headers; values may name env vars as ${VAR} (secrets: never shown).", factory=dict
    )
    interval: float = setting(30.0, "Seconds between polls (floor 5).", floor=5.0, ge=0)
    preset: str | None = setting(
        "litellm", "litellm, zai-dash, or custom (the metric map alone; the default when metrics is set)."
    )
    metric_map: Mapping[str, Any] = setting(
        doc="Logical series → {samples, labels, group_by, kind}; wins over the preset.", factory=dict, toml="metrics"
    )
    group_by: str | None = setting(None, "Regroup every preset series by this label (e.g. requested_model).")
    timeout: float = setting(10.0, "Seconds before a request is abandoned.", gt=0)


@dataclass(frozen=True)
class OtlpSettings:
    """The `[otlp]` receiver for tools' OpenTelemetry (its presence turns it on). The token is named, never held."""

    enabled: bool = setting(False, "Run the receiver (the table's presence turns it on).")
    listen: str = setting(
        "127.0.0.1:4318", "HOST:PORT to bind; loopback unless you name another address.", min_length=1
    )
    token_env: str | None = setting(
        None, "The env var holding a bearer token requests must carry (unset: no check).", min_length=1
    )
    machine: str | None = setting(None, "This machine's name for events without host.name.", min_length=1)


@dataclass(frozen=True)
class FleetSettings:
    """The `[fleet]` Prometheus server that scrapes every box's `zai-dash export`."""

    prometheus: str | None = setting(None, "The Prometheus server's base URL (http://HOST:9090).", min_length=1)
    interval: float = setting(30.0, "Seconds between queries (floor 5).", floor=5.0, gt=0)
    timeout: float = setting(5.0, "Seconds before a query is abandoned.", gt=0)
    machine: str | None = setting(
        None, "This machine's machine label, so its own series count once (default: the host name).", min_length=1
    )


@dataclass(frozen=True)
class ThresholdSettings:
    """`[thresholds]`: gauge levels in percent of a pool (the engine uses them as `domain.plans.Thresholds`)."""

    warning: float = setting(75.0, "Percent of a pool at which the gauge warns.", gt=0, le=100)
    critical: float = setting(90.0, "Percent of a pool at which the gauge turns critical.", gt=0, le=100)


@dataclass(frozen=True)
class StatusSettings:
    """`[status]`: how `zai-dash status` keeps itself fast."""

    publisher: bool = setting(
        True, "With no dashboard running, the first status starts a background publisher that stays while "
        "status keeps asking (10 min after the last), so the next calls read its state file instead of scanning.",
    )  # fmt: skip


@dataclass(frozen=True)
class ToolSettings:
    """One `[tools.<id>]` table (the id of a supported tool, e.g. `claude-code`)."""

    enabled: bool = setting(True, "Read this tool's logs.")
    roots: tuple[str, ...] = setting((), "Extra locations of its data (~ is expanded).")


@dataclass(frozen=True)
class PlanTable:
    """A `[plans.<name>]` table, or `[limits]` for the chosen plan: pools in the billing's unit."""

    base: str | None = setting(None, "A built-in plan whose pools this one starts from.")
    five_hour: float | None = setting(None, "The 5-hour window's pool.", toml="5h", ge=0)
    weekly: float | None = setting(None, "The weekly window's pool.", ge=0)
    monthly_mcp: float | None = setting(None, "The monthly MCP pool (calls; legacy plans).", toml="monthly-mcp", ge=0)
    prompts_per_cycle: int | None = setting(None, "Legacy: prompts per cycle.", ge=1)
    searches_per_month: int | None = setting(None, "Legacy: MCP searches per month.", ge=0)
    calls_per_prompt: int | None = setting(None, "Legacy: model calls one prompt stands for.", ge=1)
    cycle_hours: float | None = setting(None, "Legacy: hours in a cycle.", gt=0)


@dataclass(frozen=True)
class ConfigFile:
    """zai-dash's config.toml. Every setting is optional; a missing file means these defaults."""

    plan: str | None = setting(
        None, "lite | pro | max | team-standard | team-premium | a plan under [plans].", min_length=1
    )
    billing: str | None = setting(None, "credits | legacy-v2 | legacy-v1 (default: credits).", min_length=1)
    weekly_reset: Any = setting(
        None, "Any past weekly reset (an instant with a UTC offset); it repeats every 7 days.",
        schema={"type": "string", "format": "date-time"},
    )  # fmt: skip
    renewal_day: int = setting(1, "Day of the month the subscription renews (legacy plans' MCP pool).", ge=1, le=31)
    timezone: str | None = setting(None, "An IANA time zone like Europe/Berlin (default: the system's).", min_length=1)
    vision_credits: float | None = setting(None, "Estimated credits per Vision MCP call.", ge=0)
    default_model: str | None = setting(None, "What a model the tariff does not know is billed as.")
    bell: bool = setting(False, "Ring the terminal bell on warning, critical and refresh.")
    theme: str | None = setting(None, "A Textual theme name.", min_length=1)
    title: bool = setting(True, "Put the key figure in the terminal's window title.")
    plans: Mapping[str, PlanTable] = setting(doc="Built-in plans' pools changed, or custom plans.", factory=dict)
    limits: PlanTable | None = setting(None, "The chosen plan's pools and legacy prompt counting.")
    tariff: Mapping[str, Any] = setting(
        doc="Overrides of the packaged tariff (zai_dash/data/tariff.toml), same layout.", factory=dict
    )
    thresholds: ThresholdSettings = setting(doc="Gauge levels in percent.", factory=ThresholdSettings)
    status: StatusSettings = setting(doc="The status line's background publisher.", factory=StatusSettings)
    tools: Mapping[str, ToolSettings] = setting(doc="Per tool: enabled, extra roots.", factory=dict)
    api: ApiSettings = setting(doc="Z.ai's quota endpoint (opt-in).", factory=ApiSettings)
    proxy: tuple[ProxyEndpoint, ...] = setting((), "Prometheus endpoints to read (any number).")
    otlp: OtlpSettings | None = setting(None, "The OpenTelemetry receiver (its presence turns it on).")
    fleet: FleetSettings | None = setting(None, "The Prometheus server that scrapes every machine's export.")


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
    renewal_day: int = ConfigFile.renewal_day  # the file's defaults, so they are written once
    timezone: str | None = ConfigFile.timezone
    thresholds: Thresholds = field(default_factory=Thresholds)
    status: StatusSettings = field(default_factory=StatusSettings)
    """`[status]`: whether `status` may start the lingering publisher."""
    bell: bool = ConfigFile.bell
    theme: str | None = ConfigFile.theme
    title: bool = ConfigFile.title
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
    return local_zone()


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
        file = _validate(data) if data else ConfigFile()  # msgspec is imported only for a file that says something
        return _build(file, data, overrides, path if data or text else None, known_tools, now)
    except _Problem as problem:
        if problem.env:
            raise ConfigError(f"${problem.env}: {problem.message}") from None
        where = _line_of(text, problem.path) if text else None
        loc = f"{path}:{where}" if where else (str(path) if text else "environment")
        raise ConfigError(f"{loc}: {problem.message}") from None


KeyPath = tuple[str | int, ...]
"""Where a value sits in the file: table and key names, and 0-based indices into arrays of tables."""


class _Problem(Exception):
    def __init__(self, key: str | KeyPath, message: str, env: str | None = None) -> None:
        super().__init__(message)
        self.path: KeyPath = key if isinstance(key, tuple) else tuple(key.split("."))
        self.message = message
        self.env = env
        """The environment variable the bad value came from, if it did not come from the file."""


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


# -- where in the file: TOML parsers give no line numbers, so the text is scanned for the table and key ----

_HEADER = re.compile(r"^[ \t]*(\[\[?)[ \t]*(.+?)[ \t]*\]\]?[ \t]*(?:#.*)?$")
_KEY_PART = re.compile(r'"([^"]*)"|\'([^\']*)\'|([^.\s"\']+)')


def _key_parts(dotted: str) -> tuple[str, ...]:
    """`tariff.rates."glm-5.3"` → ('tariff', 'rates', 'glm-5.3')."""
    return tuple(next(g for g in m.groups() if g is not None) for m in _KEY_PART.finditer(dotted))


def _line_of(text: str, path: KeyPath) -> int | None:
    """The 1-based line that sets `path`: under the deepest table header it lies in, else that header.

    The n-th `[[proxy]]` header is `("proxy", n)`, and a `[proxy.metrics]` under it `("proxy", n, "metrics")`.
    """
    lines = text.split("\n")
    arrays: dict[tuple[str, ...], int] = {}  # array-of-tables name → index of its latest header
    start, depth = -1, 0
    for i, line in enumerate(lines):
        m = _HEADER.match(line)
        if not m:
            continue
        parts = _key_parts(m.group(2))
        if m.group(1) == "[[":
            arrays[parts] = arrays.get(parts, -1) + 1
        where: list[str | int] = []
        for n in range(len(parts)):
            where.append(parts[n])
            if parts[: n + 1] in arrays:
                where.append(arrays[parts[: n + 1]])
        if len(where) > depth and path[: len(where)] == tuple(where):
            start, depth = i, len(where)
    end = next((i for i in range(start + 1, len(lines)) if _HEADER.match(lines[i])), len(lines))
    found = start if start >= 0 else None
    for part in path[depth:]:
        if isinstance(part, int):
            continue  # an item of an inline array: its key's line is as close as the text gets
        key = re.compile(rf"(?:^|[{{,.\s])[\"']?{re.escape(part)}[\"']?[ \t]*[=.]")
        if found is not None and found != start and key.search(lines[found]):
            continue  # an inline table on the same line
        hit = next((j for j in range((found if found is not None else -1) + 1, end) if key.search(lines[j])), None)
        if hit is not None:  # else not written (a version date an undated override applies to): skip it
            found = hit
    return found + 1 if found is not None else None


# -- validation: msgspec Structs derived from the settings dataclasses (imported only when a file exists) ----

_SETTINGS_OF: dict[type, type] = {}
"""Each derived Struct → the settings dataclass it validates."""


def _fields(cls: type) -> list[tuple[Field[Any], Any]]:
    """A settings dataclass's fields with their resolved types."""
    hints = typing.get_type_hints(cls)
    return [(f, hints[f.name]) for f in fields(cls)]


def _toml_name(f: Field[Any]) -> str:
    return f.metadata.get("toml") or f.name


def _optional(tp: Any) -> tuple[Any, bool]:
    """`X | None` → (X, True); anything else → (it, False)."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return rest[0], True
    return tp, False


def _validator_type(tp: Any) -> Any:
    """The type msgspec checks for `tp`: settings dataclasses become their Structs, containers plain."""
    core, optional = _optional(tp)
    origin, args = typing.get_origin(core), typing.get_args(core)
    if is_dataclass(core):
        out: Any = _struct(typing.cast(type, core))
    elif origin is tuple:
        out = typing.cast(Any, tuple)[_validator_type(args[0]), ...]  # runtime types, built from `tp`
    elif origin in (dict, Mapping):
        out = typing.cast(Any, dict)[args[0], _validator_type(args[1])]
    else:
        out = core
    return typing.Optional[out] if optional else out  # noqa: UP045 - a runtime type, not an annotation


@cache
def _struct(cls: type) -> Any:
    """The msgspec Struct that validates settings dataclass `cls`: its fields, defaults and bounds; no other keys."""
    import msgspec

    specs: list[tuple[str, Any, Any]] = []
    for f, tp in _fields(cls):
        meta = f.metadata
        core, optional = _optional(_validator_type(tp))
        if meta.get("bounds"):
            core = Annotated[core, msgspec.Meta(**meta["bounds"])]
        checked: Any = typing.Optional[core] if optional else core  # noqa: UP045
        if meta.get("doc") or meta.get("schema"):
            checked = Annotated[
                checked, msgspec.Meta(description=meta.get("doc"), extra_json_schema=meta.get("schema"))
            ]
        if f.default is not MISSING:
            specs.append((f.name, checked, f.default))
        elif f.default_factory is not MISSING:
            specs.append((f.name, checked, msgspec.field(default_factory=f.default_factory)))
        else:
            specs.append((f.name, checked, msgspec.NODEFAULT))
    rename = {f.name: _toml_name(f) for f, _ in _fields(cls) if f.metadata.get("toml")}
    struct = msgspec.defstruct(
        cls.__name__, specs, kw_only=True, frozen=True, forbid_unknown_fields=True, rename=rename or None
    )
    struct.__doc__ = cls.__doc__  # the schema's description
    _SETTINGS_OF[struct] = cls
    return struct


def _settings(value: Any) -> Any:
    """A validated Struct (and what it holds) as the settings dataclasses, with floors applied."""
    cls = _SETTINGS_OF.get(type(value))
    if cls is not None:
        kwargs = {}
        for f in fields(cls):
            item = _settings(getattr(value, f.name))
            floor = f.metadata.get("floor")
            kwargs[f.name] = max(floor, item) if floor is not None and item is not None else item
        return cls(**kwargs)
    if isinstance(value, tuple):
        return tuple(_settings(v) for v in value)
    if isinstance(value, dict):
        return {k: _settings(v) for k, v in value.items()}
    return value


def _validate(data: Mapping[str, Any]) -> ConfigFile:
    """The file's tables as settings types.

    Raises:
        _Problem: the first value (in file order) that is unknown, missing, of the wrong type or out of range.
    """
    import msgspec

    try:
        checked = msgspec.convert(data, _struct(ConfigFile))
    except msgspec.ValidationError as exc:
        raise _explain(str(exc), data) from None
    return typing.cast(ConfigFile, _settings(checked))


def _explain(message: str, data: Mapping[str, Any]) -> _Problem:
    """msgspec's "Expected `int` >= 1 - at `$.limits.prompts_per_cycle`" as this project's one line.

    msgspec writes a table's key as `[...]`; the walk finds which key it was by checking each in file order.
    """
    import msgspec

    m = re.fullmatch(r"(?s)(.*) - at `\$(.*)`", message)
    problem, at = (m.group(1), m.group(2)) if m else (message, "")
    tp: Any = ConfigFile
    value: Any = data
    bounds: Mapping[str, Any] = {}
    path: list[str | int] = []
    for name, index in re.findall(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]", at):
        core = _optional(tp)[0]
        if name:
            f, tp = next((f, t) for f, t in _fields(core) if _toml_name(f) == name)
            bounds, value = f.metadata.get("bounds") or {}, value.get(name)
            path.append(name)
            continue
        bounds = {}
        if index == "...":
            tp = typing.get_args(core)[1]
            kind = _validator_type(tp)

            def fails(item: Any, kind: Any = kind) -> bool:
                try:
                    msgspec.convert(item, kind)
                except msgspec.ValidationError:
                    return True
                return False

            key = next(k for k, item in value.items() if fails(item))
            path.append(key)
            value = value[key]
        else:
            tp, value = typing.get_args(core)[0], value[int(index)]
            path.append(int(index))
    named = re.search(r"`([^`]*)`", problem)
    if problem.startswith("Object contains unknown field") and named:
        key = named.group(1)
        known = [_toml_name(f) for f, _ in _fields(_optional(tp)[0])]
        import difflib

        close = difflib.get_close_matches(key, known, n=1)
        hint = f": did you mean {close[0]!r}?" if close else ""
        where = f" in {_table_label(path)}" if path else ""
        return _Problem((*path, key), f"unknown setting {key!r}{where}{hint} (known: {', '.join(sorted(known))})")
    if problem.startswith("Object missing required field") and named:
        return _Problem(tuple(path), f"{_table_label(path)} needs {named.group(1)}")
    wrong_type = re.match(r"Expected `[^`]*`, got `", problem) is not None
    wanted = _kind(tp) if wrong_type else _expectation(tp, bounds)
    return _Problem(tuple(path), f"{_label(path)} must be {wanted}, got {_shown(value)}")


def _label(path: Sequence[str | int]) -> str:
    """`proxy#2.url`: dotted names, arrays of tables numbered from 1."""
    out = ""
    for part in path:
        out += f"#{part + 1}" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _table_label(path: Sequence[str | int]) -> str:
    """`[api]`, `[plans.x]`, `[[proxy]] #2`."""
    if path and isinstance(path[-1], int):
        return f"[[{_label(path[:-1])}]] #{path[-1] + 1}"
    return f"[{_label(path)}]"


def _shown(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else repr(value)


def _kind(tp: Any) -> str:
    """What a value of type `tp` looks like in TOML: "an integer", "a table", …"""
    core = _optional(tp)[0]
    origin, args = typing.get_origin(core), typing.get_args(core)
    if origin is typing.Literal:
        return "one of " + ", ".join(map(str, args))
    if origin is tuple:
        return "an array of tables" if is_dataclass(args[0]) else "a list"
    if is_dataclass(core) or origin in (dict, Mapping):
        return "a table"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    return names.get(core, getattr(core, "__name__", str(core)))


def _expectation(tp: Any, bounds: Mapping[str, Any]) -> str:
    """The range a value broke: "1–31", "> 0", "in (0, 100]", "one of …", "a non-empty string"."""
    if "min_length" in bounds:
        return "a non-empty string"
    lo = next(((k, bounds[k]) for k in ("ge", "gt") if k in bounds), None)
    hi = next(((k, bounds[k]) for k in ("le", "lt") if k in bounds), None)
    if lo and hi:
        if _optional(tp)[0] is int and (lo[0], hi[0]) == ("ge", "le"):
            return f"{lo[1]}–{hi[1]}"
        return f"in {'[' if lo[0] == 'ge' else '('}{lo[1]:g}, {hi[1]:g}{']' if hi[0] == 'le' else ')'}"
    symbols = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}
    if lo or hi:
        key, limit = typing.cast(tuple[str, Any], lo or hi)
        return f"{symbols[key]} {limit:g}"
    return _kind(tp)


def _within(value: float, bounds: Mapping[str, Any]) -> bool:
    """Whether `value` keeps `bounds` (for environment values, which msgspec never sees)."""
    checks = {"ge": value.__ge__, "gt": value.__gt__, "le": value.__le__, "lt": value.__lt__}
    return all(checks[k](limit) for k, limit in bounds.items() if k in checks)


def _env_int(name: str, raw: str) -> int:
    """`ZAI_DASH_<NAME>` as the integer setting `name`, checked against the bounds the file's setting declares."""
    var = f"ZAI_DASH_{name.upper()}"
    f = next(f for f in fields(ConfigFile) if f.name == name)
    bounds = f.metadata.get("bounds") or {}
    try:
        value = int(raw)
    except ValueError:
        raise _Problem(name, f"{name} must be an integer, got {raw!r}", env=var) from None
    if not _within(value, bounds):
        raise _Problem(name, f"{name} must be {_expectation(int, bounds)}, got {value}", env=var)
    return value


# -- building the Config ------------------------------------------------------------------------------

_LEGACY_FIELDS = ("prompts_per_cycle", "searches_per_month", "calls_per_prompt", "cycle_hours")
"""A plan table's fields from before the credits plans (they count prompts)."""


def _build(
    file: ConfigFile,
    data: Mapping[str, Any],
    env: Mapping[str, str | None],
    source: Path | None,
    known_tools: KnownTools | None,
    now: datetime | None = None,
) -> Config:
    """The Config from the validated file (`file`), its raw tables (`data`, for the tariff) and the environment."""
    now = now or SYSTEM_CLOCK.now()
    plan_raw = env.get("plan") or file.plan  # an empty variable is unset; an empty `plan = ""` never validates
    plan_name = (plan_raw or DEFAULT_PLAN).lower()
    rows = _plan_rows(data, plan_name)
    billing_raw = env.get("billing") or file.billing
    billing = _billing(billing_raw, plan_name, rows.get(plan_name, {}))
    overrides = _tariff_overrides(file, billing, rows)
    try:
        tariff = tariff_from_mapping(merge_tariff(packaged_tariff_data(), overrides))
    except TariffError as exc:
        shortcut = exc.path[:1] == ("default_model",) and file.default_model is not None
        raise _Problem(exc.path if shortcut else ("tariff", *exc.path), str(exc)) from None
    if plan_name not in tariff.plan_names(billing):
        raise _unsold(tariff, plan_name, billing, bool(billing_raw), plan_name in rows)

    def resolve(name: str) -> Plan:
        legacy = {k: v for k, v in rows.get(name, {}).items() if k in _LEGACY_FIELDS}
        return plan_from_tariff(tariff, billing, name, now, legacy)

    plans = {name: resolve(name) for name in tariff.plan_names(billing)}

    renewal_env = env.get("renewal_day")
    renewal_day = _env_int("renewal_day", renewal_env) if renewal_env else file.renewal_day

    tz_name = env.get("timezone") or file.timezone
    if tz_name:
        try:
            ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError):
            problem = f"unknown timezone {tz_name!r} (use an IANA name like Europe/Berlin)"
            raise _Problem("timezone", problem, env="ZAI_DASH_TIMEZONE" if env.get("timezone") else None) from None

    if file.theme is not None and (theme_problem := unknown_theme(file.theme)):
        raise _Problem("theme", theme_problem)

    th = file.thresholds
    if th.warning >= th.critical:
        raise _Problem("thresholds.warning", "thresholds.warning must be below thresholds.critical")

    known = known_tools() if file.tools and known_tools is not None else None
    for tool in file.tools:
        if known is not None and tool not in known:
            raise _Problem(("tools", tool), f"unknown tool {tool!r} (known: {', '.join(known)})")

    return Config(
        plan=plans[plan_name],
        plans=plans,
        billing=billing,
        tariff=tariff,
        tariff_overrides=overrides,
        plan_explicit=bool(plan_raw),
        billing_explicit=bool(billing_raw),
        weekly_reset=_weekly_reset(env.get("weekly_reset") or file.weekly_reset, bool(env.get("weekly_reset"))),
        renewal_day=renewal_day,
        timezone=tz_name,
        thresholds=Thresholds(th.warning / 100, th.critical / 100),
        status=file.status,
        bell=file.bell,
        theme=file.theme,
        title=file.title,
        disabled_tools=frozenset(tool for tool, row in file.tools.items() if not row.enabled),
        extra_roots={tool: tuple(Path(os.path.expanduser(r)) for r in row.roots) for tool, row in file.tools.items()},
        api=file.api,
        proxies=_proxies(file.proxy, data.get("proxy", [])),
        otlp=_otlp(file.otlp, data.get("otlp")),
        fleet=_fleet(file.fleet),
        source_path=source,
    )


def _plan_rows(data: Mapping[str, Any], plan_name: str) -> dict[str, dict[str, Any]]:
    """`[plans.<name>]` tables (names lower-cased, keys as written) with `[limits]` folded into the chosen plan's."""
    rows = {name.lower(): dict(row) for name, row in data.get("plans", {}).items()}
    limits = data.get("limits", {})
    if limits:
        rows[plan_name] = {**rows.get(plan_name, {}), **limits}
    return rows


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


def _tariff_overrides(file: ConfigFile, billing: str, rows: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Everything the config changes in the tariff: `[tariff]`, the shortcuts, and the plans' pools.

    `[tariff]` is checked by the tariff's own reader (`domain.tariff`), which knows its layout.
    """
    overrides: dict[str, Any] = dict(file.tariff)
    if file.vision_credits is not None:
        overrides = merge_tariff(overrides, {"mcp": {"vision": file.vision_credits}})
    if file.default_model is not None:
        overrides["default_model"] = file.default_model
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


def _weekly_reset(raw: Any, from_env: bool = False) -> datetime | None:
    """`weekly_reset` as an aware UTC instant (a TOML offset date-time or an ISO 8601 string)."""
    if raw is None:
        return None
    var = "ZAI_DASH_WEEKLY_RESET" if from_env else None
    value = raw
    if isinstance(raw, str):
        text = raw.strip()
        try:
            value = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
        except ValueError:
            value = None
    if not isinstance(value, datetime) and isinstance(raw, date):
        problem = f"weekly_reset must be an instant with a time and UTC offset, got {raw}"
        raise _Problem("weekly_reset", problem, env=var)
    if not isinstance(value, datetime):
        problem = f"weekly_reset must be an ISO 8601 instant like 2026-11-03T09:00:00+08:00, got {raw!r}"
        raise _Problem("weekly_reset", problem, env=var)
    if value.tzinfo is None or value.utcoffset() is None:
        problem = f"weekly_reset needs a UTC offset (e.g. {value.isoformat()}+08:00)"
        raise _Problem("weekly_reset", problem, env=var)
    return value.astimezone(timezone.utc)


def _otlp(table: OtlpSettings | None, raw: Mapping[str, Any] | None) -> OtlpSettings:
    """`[otlp]`: absent means off; present turns the receiver on unless it says `enabled = false`."""
    if table is None:
        return OtlpSettings()
    return table if raw is not None and "enabled" in raw else replace(table, enabled=True)


def _fleet(table: FleetSettings | None) -> FleetSettings:
    if table is None:
        return FleetSettings()
    if table.prometheus is None:
        raise _Problem("fleet", '[fleet] needs prometheus = "http://HOST:9090"')
    return table


def _proxies(endpoints: Sequence[ProxyEndpoint], raw: Sequence[Mapping[str, Any]]) -> tuple[ProxyEndpoint, ...]:
    """`[[proxy]]` tables with the defaults that depend on the table: a numbered name, no preset beside a metric map."""
    out = []
    for i, (endpoint, row) in enumerate(zip(endpoints, raw, strict=True)):
        name = endpoint.name if "name" in row else f"proxy{i + 1}"
        preset = endpoint.preset if "preset" in row or not endpoint.metric_map else None
        out.append(replace(endpoint, name=name, preset=preset))
    return tuple(out)


# -- the JSON Schema editors validate config.toml with ------------------------------------------------------

SCHEMA_PATH = Path(__file__).parent / "data" / "config.schema.json"
"""The shipped schema (`python -m zai_dash.config > zai_dash/data/config.schema.json` regenerates it)."""


def config_schema() -> dict[str, Any]:
    """The JSON Schema (draft 7, what taplo / Even Better TOML read) of config.toml, from the settings types."""
    import msgspec

    (_root,), defs = msgspec.json.schema_components([_struct(ConfigFile)], ref_template="#/definitions/{name}")
    root = defs.pop(ConfigFile.__name__)
    doc = {"$schema": "http://json-schema.org/draft-07/schema#", **root, "definitions": defs}
    doc["title"] = "zai-dash config.toml"
    return typing.cast(dict[str, Any], _for_toml(doc))


def _for_toml(node: Any) -> Any:
    """msgspec's schema made right for TOML and draft 7.

    TOML has no null, so an optional setting loses its `null` branch and `default: null`; draft 7 ignores
    the siblings of a `$ref`, so a described table reference goes under `allOf`.
    """
    if isinstance(node, list):
        return [_for_toml(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _for_toml(v) for k, v in node.items() if not (k == "default" and v is None)}
    branches = [b for b in out.get("anyOf", ()) if b != {"type": "null"}]
    if "anyOf" in out and len(branches) == 1:
        del out["anyOf"]
        out.update(branches[0])
    if "$ref" in out and len(out) > 1:
        out["allOf"] = [{"$ref": out.pop("$ref")}]
    return out


def schema_text() -> str:
    """The schema as the shipped file holds it."""
    import json

    return json.dumps(config_schema(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":  # pragma: no cover - `python -m zai_dash.config`: print the schema
    sys.stdout.write(schema_text())
