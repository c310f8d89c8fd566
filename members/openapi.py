"""A small bridge between Flask views and pydantic: request validation and the OpenAPI 3.1
document, both from the same models.

A view decorated with ``@api_operation(...)`` receives ``body=`` / ``query=`` as validated
model instances, returns a response model (or ``(model, status)``), and is listed in the
document built by ``openapi_document()``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

from flask import jsonify, request
from pydantic import BaseModel
from pydantic import ValidationError as PydanticError
from pydantic.json_schema import models_json_schema

from core.errors import ValidationError
from members.schemas import ErrorResponse

REF = "#/components/schemas/{model}"
ERROR_TEXT = {
    400: "Invalid input",
    401: "Missing, invalid or expired session token",
    403: "Not allowed (e.g. the member card is not activated yet)",
    404: "Unknown brand",
    409: "Conflict with existing data",
    502: "WeChat answered an unexpected error",
    503: "WeChat is unavailable; try again",
}


@dataclasses.dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    response: type[BaseModel]
    status: int
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    auth: bool
    errors: tuple[int, ...]
    operation_id: str


OPERATIONS: list[Operation] = []


def _first_error(exc: PydanticError) -> ValidationError:
    err = exc.errors(include_url=False)[0]
    loc = [str(p) for p in err.get("loc", ()) if p != "__root__"]
    message = err.get("msg", "invalid")
    if err.get("type") == "json_invalid":
        return ValidationError("the body must be a JSON object", field=None)
    return ValidationError(message, field=".".join(loc) or None)


def parse_body(model: type[BaseModel]) -> BaseModel:
    """The request's JSON body validated by ``model`` (ValidationError with the field)."""
    try:
        return model.model_validate_json(request.get_data() or b"")
    except PydanticError as exc:
        raise _first_error(exc) from None


def parse_query(model: type[BaseModel]) -> BaseModel:
    """The query string validated by ``model`` (the first value of repeated parameters)."""
    try:
        return model.model_validate(request.args.to_dict(flat=True))
    except PydanticError as exc:
        raise _first_error(exc) from None


def api_operation(
    method: str,
    path: str,
    *,
    summary: str,
    response: type[BaseModel],
    status: int = 200,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    auth: bool = True,
    errors: tuple[int, ...] = (400,),
) -> Callable:
    """Validate a view's input with pydantic and list it in the OpenAPI document."""

    def decorate(view: Callable) -> Callable:
        errs = (
            set(errors) | {404} | ({401} if auth else set()) | ({400} if body or query else set())
        )
        OPERATIONS.append(
            Operation(
                method.lower(),
                path,
                summary,
                response,
                status,
                body,
                query,
                auth,
                tuple(sorted(errs)),
                view.__name__,
            )
        )

        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            if body is not None:
                kwargs["body"] = parse_body(body)
            if query is not None:
                kwargs["query"] = parse_query(query)
            result = view(*args, **kwargs)
            code = status
            if isinstance(result, tuple):
                result, code = result
            return jsonify(result.model_dump(mode="json")), code

        return wrapper

    return decorate


def _query_parameters(model: type[BaseModel]) -> list[dict]:
    schema = model.model_json_schema(mode="validation", ref_template=REF)
    required = set(schema.get("required", ()))
    params = []
    for name, prop in schema.get("properties", {}).items():
        prop = dict(prop)
        description = prop.pop("description", None)
        prop.pop("title", None)
        param = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if description:
            param["description"] = description
        params.append(param)
    return params


def openapi_document(*, title: str, version: str, path_params: dict[str, dict]) -> dict:
    """The OpenAPI 3.1 document of every registered operation."""
    models: list[tuple[type[BaseModel], str]] = [(ErrorResponse, "serialization")]
    for op in OPERATIONS:
        models.append((op.response, "serialization"))
        if op.body is not None:
            models.append((op.body, "validation"))
    refs, defs = models_json_schema(list(dict.fromkeys(models)), ref_template=REF)
    paths: dict[str, dict] = {}
    for op in OPERATIONS:
        params = [
            {"name": name, "in": "path", "required": True, "schema": schema}
            for name, schema in path_params.items()
            if "{" + name + "}" in op.path
        ]
        if op.query is not None:
            params += _query_parameters(op.query)
        responses = {
            str(op.status): {
                "description": "OK",
                "content": {"application/json": {"schema": refs[(op.response, "serialization")]}},
            }
        }
        for code in op.errors:
            responses[str(code)] = {
                "description": ERROR_TEXT.get(code, "Error"),
                "content": {"application/json": {"schema": refs[(ErrorResponse, "serialization")]}},
            }
        entry: dict = {
            "operationId": op.operation_id,
            "summary": op.summary,
            "parameters": params,
            "responses": responses,
        }
        if op.body is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[(op.body, "validation")]}},
            }
        entry["security"] = [{"session": []}] if op.auth else []
        paths.setdefault(op.path, {})[op.method] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {
                "session": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The token from POST /login",
                }
            },
        },
    }
