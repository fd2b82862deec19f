"""The API reference page: the OpenAPI schema rendered as plain HTML on the server.

No JavaScript and no CDN, so it works offline and under a strict Content-Security-Policy. The
page is built from the same schema /api/schema/ serves, so it cannot drift from it.
"""

from dataclasses import dataclass, field
from typing import Any

from drf_spectacular.generators import SchemaGenerator

from apps.api.schema import api_schema_settings

HTTP_METHODS = ("get", "post", "put", "patch", "delete")
TAG_ORDER = ("organizations", "keys", "members", "invitations", "usage", "billing")
REF_PREFIX = "#/components/schemas/"


@dataclass
class Row:
    """One parameter or property: name, type, required and description."""

    name: str
    type: str
    required: bool
    description: str
    ref: str = ""


@dataclass
class Operation:
    method: str
    path: str
    anchor: str
    description: str
    parameters: list[Row]
    request_body: Row | None
    responses: list[Row]
    secured: bool


@dataclass
class Section:
    tag: str
    operations: list[Operation] = field(default_factory=list)


@dataclass
class Component:
    name: str
    description: str
    properties: list[Row]


def build_schema() -> dict[str, Any]:
    """The public OpenAPI document, as /api/schema/ serves it."""
    with api_schema_settings():
        return SchemaGenerator().get_schema(request=None, public=True)


def reference(schema: dict[str, Any]) -> dict[str, Any]:
    """What the docs template shows: title, sections per tag and the schema components."""
    sections: dict[str, Section] = {}
    for path, item in schema.get("paths", {}).items():
        for method in HTTP_METHODS:
            if method in item:
                operation = _operation(method, path, item[method])
                tag = (item[method].get("tags") or ["other"])[0]
                sections.setdefault(tag, Section(tag)).operations.append(operation)
    components = [
        _component(name, body)
        for name, body in sorted(schema.get("components", {}).get("schemas", {}).items())
    ]
    return {
        "title": schema.get("info", {}).get("title", "API"),
        "version": schema.get("info", {}).get("version", ""),
        "sections": sorted(sections.values(), key=_section_rank),
        "components": components,
    }


def type_name(schema: dict[str, Any]) -> tuple[str, str]:
    """A short type for a schema and the component it refers to, e.g. ("array of Key", "Key")."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix(REF_PREFIX)
        return name, name
    for combined in ("allOf", "oneOf", "anyOf"):
        if schema.get(combined):
            return type_name(schema[combined][0])
    if schema.get("type") == "array":
        inner, ref = type_name(schema.get("items", {}))
        return f"array of {inner}", ref
    text = schema.get("type", "object")
    if schema.get("format"):
        text += f" ({schema['format']})"
    if schema.get("enum"):
        text += ": " + " | ".join(str(value) for value in schema["enum"] if value is not None)
    if schema.get("nullable"):
        text += ", nullable"
    return text, ""


def _section_rank(section: Section) -> tuple[int, str]:
    """Our tags in reading order, then any others by name."""
    known = section.tag in TAG_ORDER
    return (TAG_ORDER.index(section.tag) if known else len(TAG_ORDER), section.tag)


def _operation(method: str, path: str, body: dict[str, Any]) -> Operation:
    return Operation(
        method=method.upper(),
        path=path,
        anchor=body.get("operationId", f"{method}-{path}"),
        description=body.get("description", ""),
        parameters=[_parameter(parameter) for parameter in body.get("parameters", [])],
        request_body=_request_body(body.get("requestBody")),
        responses=[_response(code, response) for code, response in body["responses"].items()],
        secured=bool(body.get("security")),
    )


def _parameter(parameter: dict[str, Any]) -> Row:
    kind, ref = type_name(parameter.get("schema", {}))
    return Row(
        name=f"{parameter['name']} ({parameter['in']})",
        type=kind,
        required=parameter.get("required", False),
        description=parameter.get("description", ""),
        ref=ref,
    )


def _request_body(body: dict[str, Any] | None) -> Row | None:
    if not body:
        return None
    media = body.get("content", {}).get("application/json", {})
    kind, ref = type_name(media.get("schema", {}))
    return Row("JSON body", kind, body.get("required", False), "", ref)


def _response(code: str, response: dict[str, Any]) -> Row:
    media = response.get("content", {}).get("application/json", {})
    kind, ref = type_name(media["schema"]) if "schema" in media else ("no body", "")
    return Row(code, kind, False, response.get("description", ""), ref)


def _component(name: str, body: dict[str, Any]) -> Component:
    required = set(body.get("required", []))
    rows = []
    for prop, schema in body.get("properties", {}).items():
        kind, ref = type_name(schema)
        if schema.get("readOnly"):
            kind += ", read-only"
        rows.append(Row(prop, kind, prop in required, schema.get("description", ""), ref))
    description = body.get("description", "")
    if body.get("enum"):
        values = ", ".join(str(value) for value in body["enum"] if value is not None)
        description = f"One of: {values}. {description}".strip()
    return Component(name, description, rows)
