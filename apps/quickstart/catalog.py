"""The demo catalog (docs/catalog.md): the demo upstream as provider `demo`, two models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

HEADER = (
    "# Written by `manage.py demo` on every start (the upstream port may change); edits are\n"
    "# overwritten. Format: docs/catalog.md.\n"
)
DEFAULT_MODEL = "default"
MODELS: tuple[tuple[str, str, str, str], ...] = (
    # public name, upstream model, input and output USD per million tokens
    ("default", "demo-small", "0.10", "0.40"),
    ("demo-large", "demo-large", "1.00", "3.00"),
)


def demo_catalog(upstream_port: int) -> dict[str, Any]:
    """The catalog, as the mapping the YAML file holds."""
    return {
        "default_model": DEFAULT_MODEL,
        "providers": [
            {"name": "demo", "base_url": f"http://127.0.0.1:{upstream_port}/v1", "timeout_s": 60}
        ],
        "models": [
            {
                "name": name,
                "input_price_per_mtok": input_price,
                "output_price_per_mtok": output_price,
                "deployments": [{"provider": "demo", "upstream_model": upstream_model}],
            }
            for name, upstream_model, input_price, output_price in MODELS
        ],
    }


def write_demo_catalog(path: Path, upstream_port: int) -> Path:
    """Write the catalog file for an upstream on ``upstream_port`` and return its path."""
    body = yaml.safe_dump(demo_catalog(upstream_port), sort_keys=False, default_flow_style=False)
    path.write_text(HEADER + body, encoding="utf-8")
    return path
