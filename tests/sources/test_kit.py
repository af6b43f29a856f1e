"""The shared adapter kit: one file stamp, one cached JSON reader, one MCP server-map parser."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

from zai_dash.domain.events import EventKind, McpService
from zai_dash.domain.mcp import McpAliases, mcp_event, mcp_targets
from zai_dash.sources.base import Skips, SourceContext
from zai_dash.sources.configfiles import CachedJson
from zai_dash.sources.stamp import FileStamp, file_stamp
from zai_dash.sources.tools.crush import CrushSource


def opens_of(path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A list that fills with every `os.open` of `path` from now on (the checked reads open through it)."""
    seen: list[str] = []
    real = os.open

    def counted(p: object, *args: object, **kwargs: object) -> int:
        if str(p) == str(path):
            seen.append(str(p))
        return real(p, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", counted)
    return seen


def test_a_stamp_tells_an_append_a_same_size_rewrite_and_a_replace(tmp_path: Path) -> None:
    path = tmp_path / "f.json"
    assert file_stamp(path) is None
    path.write_text("{}", encoding="utf-8")
    first = file_stamp(path)
    assert first == FileStamp.of(path.stat())
    os.utime(path, ns=(first.mtime_ns + 10**9, first.mtime_ns + 10**9))  # same bytes, touched
    touched = file_stamp(path)
    assert touched != first
    other = tmp_path / "g.json"
    other.write_text("{}", encoding="utf-8")
    os.utime(other, ns=(touched.mtime_ns, touched.mtime_ns))
    other.replace(path)  # atomic replace: same size and mtime, another inode
    assert file_stamp(path) not in (first, touched)


def test_the_cached_reader_opens_a_file_once_until_it_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "settings.json"
    path.write_text('{"model": "glm-5.3", // a comment\n "apiKey": "secret",}', encoding="utf-8")
    skips = Skips()
    reader = CachedJson(path, lambda doc: doc.get("model"), None, skips, jsonc=True)
    opens = opens_of(path, monkeypatch)
    assert [reader.get() for _ in range(3)] == ["glm-5.3"] * 3
    assert len(opens) == 1
    path.write_text('{"model": "glm-5.4"}', encoding="utf-8")
    assert reader.get() == "glm-5.4" and len(opens) == 2
    path.write_text('{"model": ', encoding="utf-8")  # torn: counted once, retried when it changes
    assert reader.get() is None and reader.get() is None
    assert skips.counts == {"malformed JSON in config file": 1}
    path.unlink()
    assert reader.get() is None and len(opens) == 3


def test_strict_json_files_are_not_read_as_jsonc(tmp_path: Path) -> None:
    path = tmp_path / ".claude.json"
    path.write_text('{"a": 1,}', encoding="utf-8")
    skips = Skips()
    assert CachedJson(path, lambda doc: doc, "empty", skips).get() == "empty"
    assert skips.counts == {"malformed JSON in config file": 1}


def test_crush_reads_its_project_list_and_config_once_and_keeps_no_secret(
    home: Path, ctx: SourceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = home / ".local" / "share" / "crush"
    data.mkdir(parents=True)
    project = home / "work" / "app"
    (project / ".crush").mkdir(parents=True)
    (data / "projects.json").write_text(json.dumps({"projects": [{"path": str(project)}]}), encoding="utf-8")
    config = home / ".config" / "crush" / "crush.json"
    config.parent.mkdir(parents=True)
    config.write_text(
        json.dumps(
            {
                "models": {"large": {"model": "glm-4.6", "provider": "zai", "api_key": "sk-model"}},
                "providers": {"zai": {"base_url": "https://api.z.ai/api/coding/paas/v4", "api_key": "sk-secret"}},
                "mcp": {
                    "s": {
                        "type": "http",
                        "url": "https://api.z.ai/api/mcp/web_search_prime/mcp",
                        "headers": {"Authorization": "Bearer sk-header"},
                    }
                },
            }
        ),
        encoding="utf-8",
    )
    source = CrushSource(ctx)
    listing, settings = opens_of(data / "projects.json", monkeypatch), opens_of(config, monkeypatch)
    for _ in range(3):
        source.roots()
        source.poll()
        info = source.configs()["crush"]
    assert (info.model, info.endpoint) == ("glm-4.6", "coding-plan")
    assert (len(listing), len(settings)) == (1, 1)
    assert "sk-" not in repr(source._configs[config].value)  # the cached part holds no key or header
    assert source._aliases.by_server == {"s": McpService.SEARCH}


def test_one_mcp_server_map_parser_for_every_shape() -> None:
    servers = {
        "remote": {"url": "https://api.z.ai/api/mcp/web_reader/mcp", "headers": {"Authorization": "Bearer k"}},
        "vision": {"command": ["npx", "-y", "@z_ai/mcp-server"], "env": {"Z_AI_API_KEY": "k"}},
        "goose": {"cmd": "npx", "args": ["-y", "@z_ai/mcp-server"]},
        "zread": {"uri": "https://api.z.ai/api/mcp/zread/mcp"},
        "nothing": {"type": "stdio"},
        "odd": "not a mapping",
    }
    targets = mcp_targets(servers)
    assert set(targets) == {"remote", "vision", "goose", "zread"}
    assert all("k" not in t.split() and "Bearer" not in t for t in targets.values())
    # The mcpServers-style builder is the same parser: every shape a tool writes is classified.
    assert McpAliases.from_servers(servers).by_server == {
        "remote": McpService.READER,
        "vision": McpService.VISION,
        "goose": McpService.VISION,
        "zread": McpService.ZREAD,
    }


def test_mcp_event_is_an_mcp_event_for_a_zai_server_and_none_otherwise() -> None:
    ts = datetime(2026, 11, 26, 10, 0, tzinfo=timezone.utc)
    event = mcp_event(None, "web-search-prime_webSearchPrime", None, ts=ts, tool="crush", key="mcp:m1:c1", session="s")
    assert event is not None
    assert (event.kind, event.service, event.key, event.session, event.tool) == (
        EventKind.MCP, McpService.SEARCH, "mcp:m1:c1", "s", "crush"
    )  # fmt: skip
    assert mcp_event("github", "search_code", None, ts=ts, tool="crush", key="mcp:m1:c2", session="s") is None


def test_extra_roots_follow_a_tools_own_locations_once(tmp_path: Path) -> None:
    own, extra = tmp_path / "own", tmp_path / "extra"
    ctx = SourceContext(home=tmp_path, env={}, extra_roots={"codex": (extra, own)})
    assert ctx.with_extra_roots("codex", [own]) == [own, extra]
    assert ctx.with_extra_roots("pi", [own]) == [own]
