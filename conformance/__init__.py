"""The conformance suite: real coding clients driven against a recording fake GLM server (`make conformance`).

`server.py` is the fake Z.ai endpoint (Anthropic Messages, OpenAI Chat Completions and Responses, the
`web-search-prime` MCP server) and records every request it answers: that record is the ground truth.
`clients/<tool>.py` drives one real client headless in a temp HOME. `run.py` installs the pinned clients,
runs every scenario, compares `zai-dash report --json` with the truth and writes `bench/CONFORMANCE.md`.
Nothing here is imported by `zai_dash` or by `make test`, except `truth.py`'s comparison, which the
recorded-fixture tests reuse.
"""
