"""The OpenAPI document of this version against 0.1.0's (tests/service/data): every path and
method of 0.1.0 is still served, with the same required fields wherever its requests and
responses go. Components may be renamed, descriptions and new routes added; nothing a client
of 0.1.0 relies on may disappear or become required."""

from __future__ import annotations

import json
from pathlib import Path

REFERENCE = Path(__file__).parent / "data" / "openapi-0.1.0.json"
METHODS = {"get", "post", "put", "patch", "delete"}


def operations(doc: dict) -> set[tuple[str, str]]:
    return {(path, method) for path, item in doc["paths"].items() for method in item
            if method in METHODS}


def required_fields(doc: dict, only: set[tuple[str, str]]) -> set[tuple[str, frozenset]]:
    """(where, required names) of every object schema reachable from an operation; ``where``
    is the operation plus the property path, so renamed components compare equal."""
    found: set[tuple[str, frozenset]] = set()
    schemas = doc["components"]["schemas"]

    def walk(schema: dict, where: str, seen: frozenset) -> None:
        ref = schema.get("$ref")
        if ref:
            name = ref.rsplit("/", 1)[-1]
            if name not in seen:
                walk(schemas[name], where, seen | {name})
            return
        if schema.get("required"):
            found.add((where, frozenset(schema["required"])))
        for name, prop in (schema.get("properties") or {}).items():
            walk(prop, f"{where}.{name}", seen)
        for key in ("oneOf", "anyOf", "allOf"):
            for member in schema.get(key) or []:
                walk(member, where, seen)
        if isinstance(schema.get("items"), dict):
            walk(schema["items"], f"{where}[]", seen)
        if isinstance(schema.get("additionalProperties"), dict):
            walk(schema["additionalProperties"], f"{where}{{}}", seen)

    for path, method in operations(doc) & only:
        op = doc["paths"][path][method]
        where = f"{method.upper()} {path}"
        for param in op.get("parameters") or []:
            if param.get("required"):
                found.add((f"{where} {param['in']}", frozenset({param["name"]})))
        for media in ((op.get("requestBody") or {}).get("content") or {}).values():
            walk(media.get("schema") or {}, f"{where} body", frozenset())
        for status, response in (op.get("responses") or {}).items():
            for media in (response.get("content") or {}).values():
                walk(media.get("schema") or {}, f"{where} {status}", frozenset())
    return found


def test_every_path_and_method_of_0_1_0_is_still_served(client):
    old = json.loads(REFERENCE.read_text())
    new = client.get("/api/v1/openapi.json").get_json()
    assert operations(old) <= operations(new)


# Where 0.1.0's document understated what the API always required: a sweep's base was
# validated as a whole job spec but published as a free-form object; it now says JobSpec.
JOB_BODY, SWEEP_BASE = "POST /api/v1/jobs body", "POST /api/v1/sweeps body.base"


def corrected(entries: set[tuple[str, frozenset]]) -> set[tuple[str, frozenset]]:
    """The job body's required fields, as the sweep base's."""
    return {(SWEEP_BASE + where[len(JOB_BODY):], names) for where, names in entries
            if where.startswith(JOB_BODY)}


def in_response(entry: tuple[str, frozenset]) -> bool:
    """Whether a required_fields entry lies in a response (its third word is a status)."""
    words = entry[0].split(" ")
    return len(words) > 2 and words[2][:3].isdigit()


def test_required_fields_are_those_of_0_1_0(client):
    """Responses keep every required field (new statuses, like 503, may add some); requests
    require nothing new."""
    old_doc = json.loads(REFERENCE.read_text())
    old = required_fields(old_doc, operations(old_doc))
    new = required_fields(client.get("/api/v1/openapi.json").get_json(), operations(old_doc))
    old_out, new_out = {e for e in old if in_response(e)}, {e for e in new if in_response(e)}
    assert old_out <= new_out, {"missing": sorted(map(str, old_out - new_out))}
    old_in, new_in = old - old_out, new - new_out
    assert old_in <= new_in, {"missing": sorted(map(str, old_in - new_in))}
    added = new_in - old_in - corrected(new_in)
    assert not added, {"added": sorted(map(str, added))}


def test_the_published_spec_schema_is_derived_from_nncores_registries(client):
    import nncore

    schemas = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]

    def tags(union: list[dict], field: str) -> set[str]:
        members = [schemas[m["$ref"].rsplit("/", 1)[-1]] for m in union]
        return {m["properties"][field]["const"] for m in members if field in m["properties"]}

    layers = schemas["LayersSpec"]["properties"]["layers"]["items"]["oneOf"]
    models = schemas["JobSpec"]["properties"]["model"]["oneOf"]
    optimizers = schemas["TrainSpec"]["properties"]["optimizer"]["oneOf"]
    assert tags(layers, "type") == set(nncore.LAYERS)
    assert tags(models, "preset") == set(nncore.PRESETS)
    assert tags(optimizers, "type") == set(nncore.OPTIMIZERS)
    assert set(schemas["DataSpec"]["properties"]["dataset"]["enum"]) == set(nncore.DATASETS)
    assert schemas["TrainSpec"]["properties"]["epochs"]["maximum"] == 200
