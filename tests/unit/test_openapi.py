"""The OpenAPI document: valid 3.1, and it names exactly the routes the app serves."""

from __future__ import annotations

import json
import re
from pathlib import Path

from openapi_spec_validator import validate
from starlette.routing import Route

from emulator.api.openapi import REQUEST_SCHEMAS, build_document
from emulator.api.openapi_components import END_REASONS
from emulator.api.schemas import default_schema_dir
from emulator.app import create_app
from emulator.calls.actions import ACTIONS
from emulator.media.session import FAILURE_REASONS
from tests.servers import emulator_settings

UNDOCUMENTED = {"/openapi.json", "/"}  # the document does not describe itself; / is a page for people


def test_the_document_is_valid_openapi_3_1():
    document = build_document()
    validate(document)
    assert document["openapi"] == "3.1.0"


def test_every_route_of_the_app_is_documented_with_its_methods_and_nothing_else():
    served: dict[str, set[str]] = {}
    for route in create_app(emulator_settings()).routes:
        assert isinstance(route, Route)
        if route.path in UNDOCUMENTED:
            continue
        if route.path.endswith("/actions/{action}"):  # one route serves every action Telnyx takes with its method
            for name, action in ACTIONS.items():
                if action.method in (route.methods or ()):
                    served.setdefault(route.path.replace("{action}", name), set()).add(action.method.lower())
            continue
        served.setdefault(route.path, set()).update(m.lower() for m in route.methods or () if m != "HEAD")
    documented = {path: set(item) for path, item in build_document()["paths"].items()}
    assert documented == served


def test_request_bodies_are_the_schema_files_themselves():
    components = build_document()["components"]["schemas"]
    for stem, name in REQUEST_SCHEMAS.items():
        schema = json.loads((default_schema_dir() / f"{stem}.schema.json").read_text(encoding="utf-8"))
        schema.pop("$schema")
        schema.pop("$id", None)
        assert components[name] == schema, name


def test_every_secured_operation_documents_401_and_every_body_documents_422():
    for path, item in build_document()["paths"].items():
        for method, operation in item.items():
            if operation.get("security") == []:  # served without a key: recording links
                assert "401" not in operation["responses"], (method, path)
                continue
            assert "401" in operation["responses"], (method, path)
            if "requestBody" in operation:
                assert {"400", "422"} <= set(operation["responses"]), (method, path)


def test_every_end_reason_is_documented_alike_in_the_document_and_in_control_plane_md():
    text = (Path(__file__).resolve().parents[2] / "docs" / "control-plane.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([a-z_]+)` \| `(stopped|failed)` \|", text, flags=re.MULTILINE))
    assert set(rows) == set(END_REASONS)
    assert {reason for reason, state in rows.items() if state == "failed"} == FAILURE_REASONS
    stream = build_document()["components"]["schemas"]["Stream"]["properties"]
    assert stream["end_reason"]["enum"] == [None, *END_REASONS]
