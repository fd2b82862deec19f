"""What the demo prints once everything answers: URLs, logins and copy-paste examples."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from apps.quickstart.catalog import DEFAULT_MODEL, MODELS

READY_LINE = "Tollgate demo is ready"
CURL_HEADING = "Try it with curl:"
PYTHON_HEADING = "Or with the OpenAI Python SDK (pip install openai):"
QUESTION = "Say hello to Tollgate!"


@dataclass(frozen=True)
class DemoAccess:
    """Everything a user needs to reach the running demo."""

    root_url: str  # e.g. http://127.0.0.1:8000
    api_key: str
    admin_email: str
    admin_password: str
    secrets_path: Path
    logs_path: Path
    store_url: str
    upstream_url: str

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    @property
    def admin_url(self) -> str:
        return f"{self.root_url}/admin/"


def curl_command(access: DemoAccess) -> list[str]:
    """A POST /v1/chat/completions that works when pasted into a POSIX shell."""
    body = json.dumps({"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": QUESTION}]})
    return [
        f"curl {access.base_url}/chat/completions \\",
        f'  -H "Authorization: Bearer {access.api_key}" \\',
        '  -H "Content-Type: application/json" \\',
        f"  -d '{body}'",
    ]


def python_snippet(access: DemoAccess) -> list[str]:
    """The same request through the official openai SDK."""
    messages = json.dumps([{"role": "user", "content": QUESTION}])
    return [
        "from openai import OpenAI",
        f'client = OpenAI(base_url="{access.base_url}", api_key="{access.api_key}")',
        f'reply = client.chat.completions.create(model="{DEFAULT_MODEL}", messages={messages})',
        "print(reply.choices[0].message.content)",
    ]


def banner_lines(access: DemoAccess) -> list[str]:
    """The whole announcement, ending with READY_LINE (which tests and scripts wait for)."""
    models = ", ".join(
        f"{name} (default)" if name == DEFAULT_MODEL else name for name, *_ in MODELS
    )
    rule = "=" * 78
    return [
        "",
        rule,
        f"  Base URL:     {access.base_url}",
        f"  API key:      {access.api_key}",
        "                (a new key on every start; keys from earlier starts keep working)",
        f"  Models:       {models}",
        f"  Admin:        {access.admin_url}",
        f"  Admin login:  {access.admin_email} / {access.admin_password}",
        f"  Secrets:      {access.secrets_path}",
        f"  Logs:         {access.logs_path}/ (gateway, worker, upstream)",
        f"  Store:        {access.store_url} (embedded, in memory)",
        f"  Upstream:     {access.upstream_url} (demo LLM)",
        rule,
        "",
        CURL_HEADING,
        "",
        *curl_command(access),
        "",
        PYTHON_HEADING,
        "",
        *python_snippet(access),
        "",
        "Press Ctrl-C to stop.",
        READY_LINE,
    ]
