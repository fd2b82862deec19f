"""Derived figures, the brief's targets and the Markdown report of one run."""

from __future__ import annotations

import math
from typing import Any

Record = dict[str, Any]


def _find(records: list[Record], phase: str, target: str, key: str, value: int) -> Record | None:
    for record in records:
        if record["phase"] == phase and record["target"] == target and record.get(key) == value:
            return record
    return None


def derive(records: list[Record]) -> dict[str, Any]:
    """The headline figures: added latency, CPU per request and chunk, TTFT overhead."""
    derived: dict[str, Any] = {}
    for concurrency in sorted({r["concurrency"] for r in records if r["phase"] == "requests"}):
        direct = _find(records, "requests", "direct", "concurrency", concurrency)
        gateway = _find(records, "requests", "gateway", "concurrency", concurrency)
        if direct and gateway:
            derived[f"requests_c{concurrency}"] = {
                "added_p50_ms": gateway["latency_ms"]["p50"] - direct["latency_ms"]["p50"],
                "added_p99_ms": gateway["latency_ms"]["p99"] - direct["latency_ms"]["p99"],
                "gateway_rps": gateway["rps"],
                "direct_rps": direct["rps"],
                "gateway_cpu_ms_per_request": gateway["gateway_cpu_ms_per_request"],
            }
    for concurrency in sorted({r["concurrency"] for r in records if r["phase"] == "streams"}):
        direct = _find(records, "streams", "direct", "concurrency", concurrency)
        gateway = _find(records, "streams", "gateway", "concurrency", concurrency)
        if direct and gateway:
            derived[f"streams_c{concurrency}"] = {
                "ttft_overhead_p50_ms": gateway["ttft_ms"]["p50"] - direct["ttft_ms"]["p50"],
                "ttft_overhead_p99_ms": gateway["ttft_ms"]["p99"] - direct["ttft_ms"]["p99"],
                "gateway_errors": gateway["errors"],
                "gateway_cpu_us_per_chunk": gateway["gateway_cpu_us_per_chunk"],
            }
    derived["max_other_load_cores"] = max(
        (r.get("other_load_cores", 0.0) for r in records), default=0.0
    )
    derived["settlements_lost"] = sum(r.get("settlements_lost", 0) for r in records)
    holds = [r for r in records if r["phase"] == "hold" and r["target"] == "gateway"]
    if holds:
        clean = [r for r in holds if r["errors"] == 0]
        derived["max_open_streams_error_free"] = max((r["peak_open_ok"] for r in clean), default=0)
    return derived


def targets(derived: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) rows for the brief's targets."""
    rows: list[tuple[str, str, bool | None]] = []
    c1, c32 = derived.get("requests_c1"), derived.get("requests_c32")
    if c1:
        added = c1["added_p50_ms"]
        rows.append(("Gateway-added latency p50 at c=1 ≤ 2 ms", f"{added:.2f} ms", added <= 2))
    if c32:
        rps, cpu = c32["gateway_rps"], c32["gateway_cpu_ms_per_request"]
        rows.append(
            ("≥ 600 requests/s at c=32, gateway on one core", f"{rps:.0f} req/s", rps >= 600)
        )
        rows.append(("≤ 1.6 ms gateway CPU per request (c=32)", f"{cpu:.2f} ms", cpu <= 1.6))
    chunk_costs = [
        v["gateway_cpu_us_per_chunk"] for k, v in derived.items() if k.startswith("streams_")
    ]
    if chunk_costs:
        worst = max(chunk_costs)
        rows.append(
            (
                "≤ 100 µs gateway CPU per relayed chunk",
                f"{worst:.0f} µs (worst phase)",
                worst <= 100,
            )
        )
    c256 = derived.get("streams_c256")
    if c256:
        overhead, errors = c256["ttft_overhead_p50_ms"], c256["gateway_errors"]
        rows.append((
            "256 concurrent streams: no error, TTFT overhead p50 ≤ 10 ms",
            f"{errors} errors, {overhead:.1f} ms",
            errors == 0 and overhead <= 10,
        ))  # fmt: skip
    return rows


NONE = "-"


def _f(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _pct(value: float) -> str:
    return f"{100 * value:.0f}%"


def _table(columns: list[tuple[str, str]], rows: list[list[str]]) -> list[str]:
    """A Markdown table; `columns` are (title, alignment) with alignment "l" or "r"."""
    head = "| " + " | ".join(title for title, _ in columns) + " |"
    rule = "|" + "|".join("---:" if align == "r" else "---" for _, align in columns) + "|"
    return [head, rule, *("| " + " | ".join(row) + " |" for row in rows)]


REQUEST_COLUMNS = [
    ("Concurrency", "r"), ("Target", "l"), ("Generator", "l"), ("req/s", "r"),
    ("p50 ms", "r"), ("p99 ms", "r"), ("Errors", "r"), ("Gateway CPU/req ms", "r"),
    ("of which kernel", "r"), ("Redis CPU/req µs", "r"), ("Core 0 (gateway) busy", "r"),
    ("Core 1 (load+upstream) busy", "r"), ("Other load, cores", "r"),
    ("Settlements lost", "r"),
]  # fmt: skip
STREAM_COLUMNS = [
    ("Streams", "r"), ("Target", "l"), ("streams/s", "r"), ("TTFT p50 ms", "r"),
    ("TTFT p99 ms", "r"), ("Errors", "r"), ("Chunks", "r"), ("Gateway CPU/chunk µs", "r"),
    ("Gateway CPU/stream ms", "r"), ("of which kernel", "r"), ("Core 0 busy", "r"),
    ("Core 1 busy", "r"), ("Other load, cores", "r"), ("Settlements lost", "r"),
]  # fmt: skip
HOLD_COLUMNS = [
    ("Streams opened", "r"), ("Target", "l"), ("Peak open, error-free", "r"),
    ("Completed OK", "r"), ("Errors", "r"), ("TTFT p50 / p99 ms", "r"),
    ("RSS before → peak MB", "r"), ("KB per open stream", "r"), ("Peak fds", "r"),
    ("Settlements lost", "r"), ("Measured process", "l"),
]  # fmt: skip


def requests_table(records: list[Record]) -> list[str]:
    rows = []
    for r in (r for r in records if r["phase"] == "requests"):
        gateway = r["target"] == "gateway"
        rows.append([
            str(r["concurrency"]), r["target"], r["generator"], f"{r['rps']:.0f}",
            _f(r["latency_ms"]["p50"], 2), _f(r["latency_ms"]["p99"], 2), str(r["errors"]),
            _f(r["gateway_cpu_ms_per_request"], 3) if gateway else NONE,
            _pct(r["gateway_kernel_share"]) if gateway else NONE,
            _f(r["redis_cpu_us_per_request"], 0) if gateway else NONE,
            _pct(r["gateway_core_busy"]), _pct(r["load_core_busy"]), _f(r["other_load_cores"], 2),
            str(r.get("settlements_lost", 0)) if gateway else NONE,
        ])  # fmt: skip
    return _table(REQUEST_COLUMNS, rows)


def streams_table(records: list[Record]) -> list[str]:
    rows = []
    for r in (r for r in records if r["phase"] == "streams"):
        gateway = r["target"] == "gateway"
        rows.append([
            str(r["concurrency"]), r["target"], f"{r['streams_per_s']:.0f}",
            _f(r["ttft_ms"]["p50"], 2), _f(r["ttft_ms"]["p99"], 2), str(r["errors"]),
            str(r["chunks"]), _f(r["gateway_cpu_us_per_chunk"], 0) if gateway else NONE,
            _f(r["gateway_cpu_ms_per_stream"], 2) if gateway else NONE,
            _pct(r["gateway_kernel_share"]) if gateway else NONE,
            _pct(r["gateway_core_busy"]), _pct(r["load_core_busy"]), _f(r["other_load_cores"], 2),
            str(r.get("settlements_lost", 0)) if gateway else NONE,
        ])  # fmt: skip
    return _table(STREAM_COLUMNS, rows)


def hold_table(records: list[Record]) -> list[str]:
    rows = []
    for r in (r for r in records if r["phase"] == "hold"):
        rows.append([
            str(r["planned"]), r["target"], str(r["peak_open_ok"]), str(r["completed_ok"]),
            str(r["errors"]), f"{_f(r['ttft_ms']['p50'])} / {_f(r['ttft_ms']['p99'])}",
            f"{r['rss_before_mb']:.0f} → {r['rss_peak_mb']:.0f}",
            f"{r['kb_per_open_stream']:.0f}", str(r["peak_fds"]),
            str(r.get("settlements_lost", 0)) if r["target"] == "gateway" else NONE,
            r["measured_process"],
        ])  # fmt: skip
    return _table(HOLD_COLUMNS, rows)


def derived_lines(derived: dict[str, Any]) -> list[str]:
    lines = []
    other = derived.get("max_other_load_cores", 0.0)
    if other > 0.25:
        lines.append(
            f"- WARNING: other processes used up to {other:.2f} cores during a phase (column "
            "'Other load'). That phase's req/s, latency and TTFT suffer, and so does CPU time "
            "per request (the two vCPUs share one physical core's caches and pipelines)."
        )
    for key, value in derived.items():
        if key.startswith("requests_"):
            lines.append(
                f"- {key}: gateway-added latency p50 {value['added_p50_ms']:+.2f} ms, "
                f"p99 {value['added_p99_ms']:+.2f} ms"
            )
        elif key.startswith("streams_"):
            lines.append(
                f"- {key}: TTFT overhead p50 {value['ttft_overhead_p50_ms']:+.2f} ms, "
                f"p99 {value['ttft_overhead_p99_ms']:+.2f} ms, "
                f"gateway errors {value['gateway_errors']}"
            )
    lost = derived.get("settlements_lost", 0)
    if lost:
        lines.append(
            f"- the gateway logged {lost} lost settlements (`settlement of request ... was not "
            "recorded`): those requests were served but not billed"
        )
    if "max_open_streams_error_free" in derived:
        lines.append(
            "- most streams one worker held open at once without error: "
            f"{derived['max_open_streams_error_free']}"
        )
    return lines


def targets_table(derived: dict[str, Any]) -> list[str]:
    lines = ["| Target (from the brief) | Measured | Met |", "|---|---|---|"]
    for name, measured, met in targets(derived):
        lines.append(f"| {name} | {measured} | {'yes' if met else 'NO'} |")
    return lines


def profile_lines(profile: Record, top: int = 15) -> list[str]:
    if "error" in profile:
        return [f"py-spy failed: {profile['error']}"]
    lines = [
        f"{profile['samples']} samples of the event-loop thread holding the GIL "
        "(py-spy --gil, 250 Hz), "
        f"concurrency {profile['concurrency']}.",
        "",
        "| Self % | Function (file) |",
        "|---:|---|",
    ]
    lines += [f"| {row['pct']:.1f} | `{row['name']}` |" for row in profile["self"][:top]]
    lines += ["", "| Self % | Package |", "|---:|---|"]
    lines += [f"| {row['pct']:.1f} | `{row['name']}` |" for row in profile["self_by_package"][:10]]
    lines += ["", "| Inclusive % | Gateway function (file) |", "|---:|---|"]
    lines += [f"| {row['pct']:.1f} | `{row['name']}` |" for row in profile["inclusive_apps"][:top]]
    return lines


def _stream_start(records: list[Record]) -> str:
    modes = {r.get("stream_start", "lockstep") for r in records if r["phase"] == "streams"}
    if modes == {"staggered"}:
        return "staggered (spread over one stream's length; then each restarts when it ends)"
    return "in lockstep (all at once; equal streams keep arriving together)"


def render(run: Record) -> str:
    """The whole Markdown report of a run."""
    records, derived = run["records"], run["derived"]
    out = [
        f"## Gateway benchmark {run['stamp']}",
        "",
        f"Machine: {run['machine']['nproc']} cores, {run['machine']['cpu_model']}, "
        f"kernel {run['machine']['kernel']}, Python {run['machine']['python']}.",
        f"Pinning: {run['pinning']}",
        f"Rate limits: {run.get('limits', 'off')}.",
        f"Code: {run['code']['source']}, commit {run['code']['commit'][:12] or 'unknown'} with "
        f"{run['code']['uncommitted_files_in_apps_config']} uncommitted files in apps/ and "
        f"config/ (digest {run['code']['apps_config_sha256']}).",
        "",
        "### Non-streaming requests (short answers, upstream latency 0)",
        "",
        *requests_table(records),
        "",
        "### Streams (20 tokens, 20 ms apart, closed loop)",
        "",
        f"Stream starts: {_stream_start(records)}.",
        "",
        *streams_table(records),
        "",
        "### Open streams held by one worker",
        "",
        *hold_table(records),
        "",
        "### Derived",
        "",
        *derived_lines(derived),
        "",
        "### Targets",
        "",
        *targets_table(derived),
    ]
    for profile in run.get("profiles", []):
        out += ["", f"### Profile: {profile['phase']}", "", *profile_lines(profile)]
    return "\n".join(out) + "\n"
