"""Check real responses against the emulator's own OpenAPI document (``GET /openapi.json``)."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from emulator.api.openapi import build_document

BASE = "urn:telnyx-emulator:openapi"


def _pointer(*parts: str) -> str:
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in parts)


def assert_documented(response: httpx.Response, path: str) -> Any:
    """``response`` (to a request on the templated ``path``) has a documented status and a body of its schema.

    Returns the parsed body.
    """
    document = build_document()
    method = response.request.method.lower()
    responses = document["paths"][path][method]["responses"]
    status = str(response.status_code)
    assert status in responses, f"{method.upper()} {path}: status {status} is not documented"
    registry = Registry().with_resource(BASE, Resource.from_contents(document, default_specification=DRAFT202012))
    pointer = _pointer("paths", path, method, "responses", status, "content", "application/json", "schema")
    validator = jsonschema.Draft202012Validator({"$ref": f"{BASE}#{pointer}"}, registry=registry)
    body = response.json()
    errors = sorted(validator.iter_errors(body), key=str)
    assert not errors, f"{method.upper()} {path} {status}: {errors[0].message} at {list(errors[0].absolute_path)}"
    return body
