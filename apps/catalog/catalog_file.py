"""Parse and validate a catalog file (YAML) into frozen specs, before anything is written.

The file format is documented in docs/catalog.md. Validation is complete and side-effect free:
:func:`parse_catalog` either returns a :class:`CatalogSpec` that the sync can apply as is, or
raises :class:`CatalogError` listing every problem found, each prefixed with the exact place in
the file, e.g. ``models[2] (name: "gpt-x").deployments[0].provider: unknown provider "nope"``.

Money never passes through ``float``: unquoted YAML numbers are kept as their source text and
parsed straight to :class:`~decimal.Decimal`.

Top-level keys are a table (:data:`_SECTIONS`), parsed in table order so that later sections can
refer to names declared by earlier ones. Adding a section means adding a row there, a field on
:class:`CatalogSpec`, and (for references) a check that reads ``_Context.declared``. An optional
section that makes another one required is listed in :data:`_REQUIRED_WITH`.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import yaml
from yaml.constructor import ConstructorError

from apps.catalog.models import Deployment, Model, Provider
from apps.limits.models import Plan

# Limits come from the database columns so the file can never hold what the tables cannot.
_PRICE_FIELD = Model._meta.get_field("input_price_per_mtok")
PRICE_MAX_DECIMALS: Final[int] = _PRICE_FIELD.decimal_places
PRICE_LIMIT: Final[Decimal] = Decimal(10) ** (_PRICE_FIELD.max_digits - _PRICE_FIELD.decimal_places)
MAX_POSITIVE_INT: Final[int] = 2_147_483_647  # PositiveIntegerField on PostgreSQL
MAX_TIMEOUT_S: Final[int] = 3600
DEFAULT_TIMEOUT_S: Final[int] = Provider._meta.get_field("timeout_s").default
DEFAULT_CONTEXT_WINDOW: Final[int] = Model._meta.get_field("context_window").default
DEFAULT_MAX_OUTPUT_TOKENS: Final[int] = Model._meta.get_field("max_output_tokens").default

_SLUG_RE = re.compile(r"[-a-zA-Z0-9_]+")
_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _max_length(model: type, name: str) -> int:
    return model._meta.get_field(name).max_length


# ---------------------------------------------------------------------------------------------
# Public specs and error
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderSpec:
    """An upstream: at most one of ``api_key`` / ``api_key_env`` is non-empty (neither: no key)."""

    name: str
    base_url: str
    api_key: str = field(default="", repr=False)
    api_key_env: str = ""
    timeout_s: int = DEFAULT_TIMEOUT_S


@dataclass(frozen=True)
class DeploymentSpec:
    """One way to serve a model: ``provider`` (a provider name) and its upstream model id."""

    provider: str
    upstream_model: str
    weight: int = 1
    enabled: bool = True


@dataclass(frozen=True)
class ModelSpec:
    """A public model. Prices are exact USD per million tokens."""

    name: str
    input_price_per_mtok: Decimal
    output_price_per_mtok: Decimal
    deployments: tuple[DeploymentSpec, ...]
    context_window: int = DEFAULT_CONTEXT_WINDOW
    max_output_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS
    enabled: bool = True


@dataclass(frozen=True)
class PlanSpec:
    """A rate-limit plan: requests and tokens per minute, and requests in flight (all >= 1)."""

    name: str
    rpm: int
    tpm: int
    max_concurrent: int


@dataclass(frozen=True)
class CatalogSpec:
    """A whole, validated catalog: every reference in it resolves inside the file.

    ``plans`` is empty and ``default_plan`` None when the file has no ``plans`` section (the
    sync then leaves plans alone); otherwise ``default_plan`` names one of ``plans``.
    """

    default_model: str
    providers: tuple[ProviderSpec, ...]
    models: tuple[ModelSpec, ...]
    plans: tuple[PlanSpec, ...] = ()
    default_plan: str | None = None


class CatalogError(ValueError):
    """A catalog file that cannot be applied; ``errors`` lists every problem, one per entry."""

    def __init__(self, errors: Sequence[str], *, source: str = "<string>") -> None:
        self.errors: tuple[str, ...] = tuple(errors)
        self.source = source
        lines = [f"invalid catalog file {source}:", *(f"  - {error}" for error in self.errors)]
        super().__init__("\n".join(lines))


# ---------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------


def load_catalog_file(path: str | Path) -> CatalogSpec:
    """Read the UTF-8 YAML file at ``path`` and validate it (see :func:`parse_catalog`)."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError([f"cannot read the file: {exc}"], source=source) from exc
    return parse_catalog(text, source=source)


def parse_catalog(text: str, *, source: str = "<string>") -> CatalogSpec:
    """Parse YAML ``text`` and validate it; ``source`` names the file in error messages.

    Raises CatalogError for malformed YAML (with line and column), duplicate mapping keys, and
    every validation error in the document.
    """
    try:
        data = yaml.load(text, Loader=_CatalogLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise CatalogError([_describe_yaml_error(exc)], source=source) from exc
    return validate_catalog(data, source=source)


def validate_catalog(data: object, *, source: str = "<string>") -> CatalogSpec:
    """Validate already-loaded data (mappings, lists, scalars) into a :class:`CatalogSpec`.

    Floats must arrive as :class:`YamlNumber` (as :func:`parse_catalog` produces them); a Python
    ``float`` is refused wherever a price is expected, so money is never rounded in binary.
    """
    ctx = _Context()
    if data is None:
        ctx.error("", "the file is empty; expected a mapping with " + _key_list(_SECTIONS))
        raise CatalogError(ctx.errors, source=source)
    values = _read_mapping(data, "", _SECTIONS, ctx)
    _check_required_with(data, ctx)
    if values is None or ctx.errors:
        raise CatalogError(ctx.errors, source=source)
    return CatalogSpec(**values)


# ---------------------------------------------------------------------------------------------
# YAML loading: floats kept as text, duplicate keys refused
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class YamlNumber:
    """An unquoted YAML float, kept as its source text (e.g. ``0.10``) and never as a float."""

    text: str


class _CatalogLoader(yaml.SafeLoader):
    """SafeLoader that keeps floats as :class:`YamlNumber` and refuses duplicate mapping keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        _refuse_duplicate_keys(node)
        return super().construct_mapping(node, deep=deep)


def _construct_number_text(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> YamlNumber:
    return YamlNumber(loader.construct_scalar(node))


_CatalogLoader.add_constructor("tag:yaml.org,2002:float", _construct_number_text)


def _refuse_duplicate_keys(node: yaml.MappingNode) -> None:
    """Raise ConstructorError at the second occurrence of a scalar key in one mapping."""
    seen: set[tuple[str, str]] = set()
    for key_node, _value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
            continue
        key = (key_node.tag, key_node.value)
        if key in seen:
            raise ConstructorError(
                None, None, f"duplicate key {json.dumps(key_node.value)}", key_node.start_mark
            )
        seen.add(key)


def _describe_yaml_error(exc: yaml.YAMLError) -> str:
    """``line L, column C: invalid YAML: <problem> (<context> at line L, column C)``."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and context_mark is not None:
        problem += f" ({context} at {_position(context_mark)})"
    return f"{_position(mark)}: invalid YAML: {problem}" if mark else f"invalid YAML: {problem}"


def _position(mark: yaml.Mark) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


# ---------------------------------------------------------------------------------------------
# Generic machinery: context, mappings, named lists
# ---------------------------------------------------------------------------------------------


class _Invalid:
    """Marker returned by a parser that has already recorded its error."""


_INVALID: Final = _Invalid()

_Parser = Callable[[Any, str, "_Context"], Any]


@dataclass(frozen=True)
class _Key:
    """One allowed key of a mapping: how to parse it, and its default when optional."""

    parse: _Parser
    required: bool = True
    default: Any = None


@dataclass
class _Context:
    """Errors so far, and the names each list declares (valid entries are in ``parsed``)."""

    errors: list[str] = field(default_factory=list)
    declared: dict[str, set[str]] = field(default_factory=dict)
    parsed: dict[str, dict[str, Any]] = field(default_factory=dict)

    def error(self, where: str, message: str) -> None:
        self.errors.append(f"{where}: {message}" if where else message)


def _join(where: str, key: object) -> str:
    return f"{where}.{key}" if where else str(key)


def _key_list(keys: Mapping[str, _Key]) -> str:
    return ", ".join(keys)


def _describe(value: object, *, secret: bool = False) -> str:
    """Name the YAML type of ``value`` for an error message (without the value if secret)."""
    kinds: list[tuple[type, str]] = [
        (bool, "a boolean"),
        (int, "an integer"),
        (YamlNumber, "a number"),
        (float, "a float"),
        (str, "a string"),
        (list, "a list"),
        (dict, "a mapping"),
    ]
    if value is None:
        return "null"
    kind = next((name for cls, name in kinds if isinstance(value, cls)), type(value).__name__)
    if secret or isinstance(value, list | dict):
        return kind
    if isinstance(value, YamlNumber):
        shown = value.text
    else:
        shown = json.dumps(value) if isinstance(value, str) else str(value).lower()
    return f"{kind} ({shown[:80]})"


def _unknown_key_message(key: object, keys: Mapping[str, _Key]) -> str:
    close = difflib.get_close_matches(str(key), list(keys), n=1)
    hint = f'; did you mean "{close[0]}"?' if close else f" (allowed: {_key_list(keys)})"
    return f"unknown key{hint}"


def _read_mapping(
    raw: object, where: str, keys: Mapping[str, _Key], ctx: _Context
) -> dict[str, Any] | None:
    """Parse a mapping with exactly the allowed ``keys``; None if anything in it is invalid."""
    if not isinstance(raw, dict):
        ctx.error(where or "top level", f"expected a mapping, got {_describe(raw)}")
        return None
    valid = True
    for key in raw:
        if key not in keys:
            ctx.error(_join(where, key), _unknown_key_message(key, keys))
            valid = False
    values: dict[str, Any] = {}
    for key, spec in keys.items():
        if key not in raw:
            if spec.required:
                ctx.error(_join(where, key), "required key is missing")
                valid = False
            values[key] = spec.default
            continue
        values[key] = spec.parse(raw[key], _join(where, key), ctx)
        valid = valid and values[key] is not _INVALID
    return values if valid else None


def _entry_where(where: str, index: int, raw: object) -> str:
    """``models[2] (name: "gpt-x")`` — the index, plus the name when the entry has one."""
    name = raw.get("name") if isinstance(raw, dict) else None
    label = f" (name: {json.dumps(name, ensure_ascii=False)})" if isinstance(name, str) else ""
    return f"{where}[{index}]{label}"


def _read_named_list(
    raw: object,
    where: str,
    kind: str,
    parse_entry: Callable[[object, str, _Context], Any],
    ctx: _Context,
) -> tuple[Any, ...] | _Invalid:
    """Parse a list of entries with unique ``name`` keys, recording them under ``kind``.

    Every string name is declared (even on an otherwise invalid entry), so references to it
    elsewhere do not produce a second, misleading "unknown" error.
    """
    declared = ctx.declared.setdefault(kind, set())
    parsed = ctx.parsed.setdefault(kind, {})
    if not isinstance(raw, list):
        ctx.error(where, f"expected a list, got {_describe(raw)}")
        return _INVALID
    first_at: dict[str, str] = {}
    entries: list[Any] = []
    for index, item in enumerate(raw):
        item_where = _entry_where(where, index, item)
        name = item.get("name") if isinstance(item, dict) else None
        duplicate = isinstance(name, str) and name in first_at
        if duplicate:
            ctx.error(f"{item_where}.name", f"duplicate name; first used by {first_at[name]}")
        elif isinstance(name, str):
            first_at[name] = f"{where}[{index}]"
            declared.add(name)
        entry = parse_entry(item, item_where, ctx)
        if entry is not _INVALID and not duplicate:
            parsed[entry.name] = entry
            entries.append(entry)
    return tuple(entries) if len(entries) == len(raw) else _INVALID


# ---------------------------------------------------------------------------------------------
# Scalar parsers
# ---------------------------------------------------------------------------------------------


def _text(max_length: int, *, secret: bool = False, spaces: bool = False) -> _Parser:
    """A non-empty printable string up to ``max_length`` characters (no whitespace unless
    ``spaces``); a secret's value is never echoed in errors."""

    def parse(raw: object, where: str, ctx: _Context) -> str | _Invalid:
        if not isinstance(raw, str):
            got = _describe(raw, secret=secret)
            ctx.error(where, f"expected a string, got {got} (quote it in YAML)")
            return _INVALID
        problem = _text_problem(raw, max_length, spaces=spaces)
        if problem:
            ctx.error(where, problem)
            return _INVALID
        return raw

    return parse


def _text_problem(value: str, max_length: int, *, spaces: bool) -> str:
    if not value.strip():
        return "must not be empty"
    if len(value) > max_length:
        return f"longer than {max_length} characters"
    if not value.isprintable() or (not spaces and " " in value):
        return "must not contain whitespace or control characters"
    return ""


def _matching(pattern: re.Pattern[str], max_length: int, description: str) -> _Parser:
    """A string that fully matches ``pattern`` (e.g. a slug)."""
    base = _text(max_length)

    def parse(raw: object, where: str, ctx: _Context) -> str | _Invalid:
        value = base(raw, where, ctx)
        if value is _INVALID:
            return _INVALID
        if not pattern.fullmatch(value):
            ctx.error(where, f"{json.dumps(value)} is not {description}")
            return _INVALID
        return value

    return parse


def _integer(minimum: int, maximum: int = MAX_POSITIVE_INT) -> _Parser:
    """A YAML integer (not a boolean, float or string) within ``[minimum, maximum]``."""

    def parse(raw: object, where: str, ctx: _Context) -> int | _Invalid:
        if isinstance(raw, bool) or not isinstance(raw, int):
            ctx.error(where, f"expected an integer, got {_describe(raw)}")
            return _INVALID
        if not minimum <= raw <= maximum:
            ctx.error(where, f"must be between {minimum} and {maximum}, got {raw}")
            return _INVALID
        return raw

    return parse


def _boolean(raw: object, where: str, ctx: _Context) -> bool | _Invalid:
    """A YAML boolean: ``true`` or ``false``."""
    if not isinstance(raw, bool):
        ctx.error(where, f"expected true or false, got {_describe(raw)}")
        return _INVALID
    return raw


def _price(raw: object, where: str, ctx: _Context) -> Decimal | _Invalid:
    """USD per million tokens: a string or YAML number, parsed exactly to Decimal.

    Refused: floats that did not come from YAML text, non-finite values, negatives, more than
    :data:`PRICE_MAX_DECIMALS` decimal places as written, and values the column cannot hold.
    """
    if isinstance(raw, bool) or not isinstance(raw, str | int | YamlNumber):
        ctx.error(where, f'expected a decimal such as "0.10", got {_describe(raw)}')
        return _INVALID
    text = raw.text if isinstance(raw, YamlNumber) else str(raw)
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal("NaN")
    problem = _price_problem(value)
    if problem:
        ctx.error(where, f"{problem}, got {json.dumps(text)}")
        return _INVALID
    return value.copy_abs()  # turns a written "-0" into 0


def _price_problem(value: Decimal) -> str:
    if not value.is_finite():
        return "expected a decimal number"
    if value < 0:
        return "must not be negative"
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > PRICE_MAX_DECIMALS:
        return f"at most {PRICE_MAX_DECIMALS} decimal places"
    if value >= PRICE_LIMIT:
        return f"must be less than {PRICE_LIMIT}"
    return ""


def _base_url(raw: object, where: str, ctx: _Context) -> str | _Invalid:
    """An absolute http(s) URL with a host, no credentials, query or fragment."""
    value = _text(_max_length(Provider, "base_url"))(raw, where, ctx)
    if value is _INVALID:
        return _INVALID
    problem = _url_problem(value)
    if problem:
        ctx.error(where, problem)
        return _INVALID
    return value


def _url_problem(value: str) -> str:
    parts = urlsplit(value)
    try:
        parts.port  # noqa: B018 - evaluated for its ValueError on a bad port
    except ValueError:
        return "has an invalid port"
    if parts.scheme not in {"http", "https"}:
        return "must start with http:// or https://"
    if not parts.hostname:
        return "has no host"
    if parts.username is not None or parts.password is not None:
        return "must not contain credentials; use api_key or api_key_env"
    if parts.query or parts.fragment:
        return "must not have a query string or fragment"
    return ""


# ---------------------------------------------------------------------------------------------
# Entries: providers, deployments, models, plans
# ---------------------------------------------------------------------------------------------

_PROVIDER_KEYS: Final[dict[str, _Key]] = {
    "name": _Key(_matching(_SLUG_RE, _max_length(Provider, "name"), "a slug (a-z, 0-9, - and _)")),
    "base_url": _Key(_base_url),
    "api_key": _Key(_text(_max_length(Provider, "api_key"), secret=True), False, ""),
    "api_key_env": _Key(
        _matching(
            _ENV_NAME_RE, _max_length(Provider, "api_key_env"), "an environment variable name"
        ),
        False,
        "",
    ),
    "timeout_s": _Key(_integer(1, MAX_TIMEOUT_S), False, DEFAULT_TIMEOUT_S),
}


def _provider(raw: object, where: str, ctx: _Context) -> ProviderSpec | _Invalid:
    values = _read_mapping(raw, where, _PROVIDER_KEYS, ctx)
    both_keys = isinstance(raw, dict) and "api_key" in raw and "api_key_env" in raw
    if both_keys:
        ctx.error(where, "set only one of api_key and api_key_env")
    if values is None or both_keys:
        return _INVALID
    return ProviderSpec(**values)


def _provider_reference(raw: object, where: str, ctx: _Context) -> str | _Invalid:
    """The name of a provider declared in the file's ``providers`` list."""
    name = _text(_max_length(Provider, "name"))(raw, where, ctx)
    if name is _INVALID:
        return _INVALID
    if name not in ctx.declared.get("providers", set()):
        ctx.error(where, f"unknown provider {json.dumps(name)}")
        return _INVALID
    return name


_DEPLOYMENT_KEYS: Final[dict[str, _Key]] = {
    "provider": _Key(_provider_reference),
    "upstream_model": _Key(_text(_max_length(Deployment, "upstream_model"))),
    "weight": _Key(_integer(0), False, 1),
    "enabled": _Key(_boolean, False, True),
}


def _deployments(raw: object, where: str, ctx: _Context) -> tuple[DeploymentSpec, ...] | _Invalid:
    """A list of deployments, each (provider, upstream_model) at most once."""
    if not isinstance(raw, list):
        ctx.error(where, f"expected a list, got {_describe(raw)}")
        return _INVALID
    entries: list[DeploymentSpec] = []
    first_at: dict[tuple[str, str], int] = {}
    for index, item in enumerate(raw):
        values = _read_mapping(item, f"{where}[{index}]", _DEPLOYMENT_KEYS, ctx)
        if values is None:
            continue
        entry = DeploymentSpec(**values)
        key = (entry.provider, entry.upstream_model)
        if key in first_at:
            ctx.error(f"{where}[{index}]", f"same provider and upstream_model as [{first_at[key]}]")
            continue
        first_at[key] = index
        entries.append(entry)
    return tuple(entries) if len(entries) == len(raw) else _INVALID


_MODEL_KEYS: Final[dict[str, _Key]] = {
    "name": _Key(_text(_max_length(Model, "name"))),
    "input_price_per_mtok": _Key(_price),
    "output_price_per_mtok": _Key(_price),
    "context_window": _Key(_integer(1), False, DEFAULT_CONTEXT_WINDOW),
    "max_output_tokens": _Key(_integer(1), False, DEFAULT_MAX_OUTPUT_TOKENS),
    "enabled": _Key(_boolean, False, True),
    "deployments": _Key(_deployments),
}


def _model(raw: object, where: str, ctx: _Context) -> ModelSpec | _Invalid:
    values = _read_mapping(raw, where, _MODEL_KEYS, ctx)
    if values is None:
        return _INVALID
    spec = ModelSpec(**values)
    valid = True
    if spec.max_output_tokens > spec.context_window:
        ctx.error(f"{where}.max_output_tokens", "must not exceed context_window")
        valid = False
    if spec.enabled and not any(d.enabled and d.weight > 0 for d in spec.deployments):
        ctx.error(
            f"{where}.deployments",
            "an enabled model needs at least one enabled deployment with weight > 0",
        )
        valid = False
    return spec if valid else _INVALID


_PLAN_KEYS: Final[dict[str, _Key]] = {
    "name": _Key(_matching(_SLUG_RE, _max_length(Plan, "name"), "a slug (a-z, 0-9, - and _)")),
    "rpm": _Key(_integer(1)),
    "tpm": _Key(_integer(1)),
    "max_concurrent": _Key(_integer(1)),
}


def _plan(raw: object, where: str, ctx: _Context) -> PlanSpec | _Invalid:
    values = _read_mapping(raw, where, _PLAN_KEYS, ctx)
    return _INVALID if values is None else PlanSpec(**values)


# ---------------------------------------------------------------------------------------------
# Top-level sections
# ---------------------------------------------------------------------------------------------


def _providers_section(
    raw: object, where: str, ctx: _Context
) -> tuple[ProviderSpec, ...] | _Invalid:
    return _read_named_list(raw, where, "providers", _provider, ctx)


def _models_section(raw: object, where: str, ctx: _Context) -> tuple[ModelSpec, ...] | _Invalid:
    return _read_named_list(raw, where, "models", _model, ctx)


def _default_model_section(raw: object, where: str, ctx: _Context) -> str | _Invalid:
    """The name of an enabled model declared in the file's ``models`` list."""
    name = _text(_max_length(Model, "name"))(raw, where, ctx)
    if name is _INVALID:
        return _INVALID
    if name not in ctx.declared.get("models", set()):
        ctx.error(where, f"unknown model {json.dumps(name)}")
        return _INVALID
    model = ctx.parsed.get("models", {}).get(name)
    if model is not None and not model.enabled:
        ctx.error(where, f"model {json.dumps(name)} has enabled: false")
        return _INVALID
    return name


def _plans_section(raw: object, where: str, ctx: _Context) -> tuple[PlanSpec, ...] | _Invalid:
    """A non-empty list of plans (omit the key to leave the database's plans alone)."""
    if isinstance(raw, list) and not raw:
        ctx.declared.setdefault("plans", set())
        ctx.error(where, "must list at least one plan; leave the key out to keep plans as they are")
        return _INVALID
    return _read_named_list(raw, where, "plans", _plan, ctx)


def _default_plan_section(raw: object, where: str, ctx: _Context) -> str | _Invalid:
    """The name of a plan declared in the file's ``plans`` list."""
    name = _text(_max_length(Plan, "name"))(raw, where, ctx)
    if name is _INVALID:
        return _INVALID
    declared = ctx.declared.get("plans")
    if declared is None or name not in declared:
        hint = "" if declared is not None else " (the file has no plans section)"
        ctx.error(where, f"unknown plan {json.dumps(name)}{hint}")
        return _INVALID
    return name


# Parsed in this order: a section may refer to names declared by the sections above it.
_SECTIONS: Final[dict[str, _Key]] = {
    "providers": _Key(_providers_section),
    "models": _Key(_models_section),
    "default_model": _Key(_default_model_section),
    "plans": _Key(_plans_section, False, ()),
    "default_plan": _Key(_default_plan_section, False, None),
}

# An optional section -> the section that becomes required when it is present.
_REQUIRED_WITH: Final[dict[str, str]] = {"plans": "default_plan"}


def _check_required_with(data: object, ctx: _Context) -> None:
    """Record an error for each section of :data:`_REQUIRED_WITH` given without its partner."""
    if not isinstance(data, dict):
        return
    for section, needed in _REQUIRED_WITH.items():
        if section in data and needed not in data:
            ctx.error(needed, f"required when {section} is given")
