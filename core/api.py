"""The JSON API layer every package shares: pydantic validates requests and responses, and the
OpenAPI 3.1 documents are built from the same models.

A view decorated with ``@api_operation(document, method, path, ...)`` receives ``body=`` /
``query=`` as validated model instances, returns a response model (or ``(model, status)``),
and is listed in the document named ``document`` (``"mp"`` for the mini-program). Any package
registers its operations this way; ``openapi_document()`` collects them all, so the package
that serves the document never imports the others. pydantic's errors become 400s in the
``{"error": {"code", "message", "field"}}`` format, their messages in the request's language.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

from flask import jsonify, request
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticError
from pydantic.json_schema import models_json_schema

from core.errors import NotFound, ValidationError

REF = "#/components/schemas/{model}"
MAX_ID = 2**63 - 1  # BIGINT: a larger id in a URL is simply not found
ERROR_TEXT = {
    400: "Invalid input",
    401: "Missing, invalid or expired session token",
    403: "Not allowed (e.g. the member card is not activated yet)",
    404: "Unknown brand or object",
    409: "Conflict with existing data",
    429: "Too many requests",
    502: "WeChat answered an unexpected error",
    503: "WeChat is unavailable; try again",
}

# pydantic's error types, by what the person has to fix; %(field)s names the field.
MESSAGES = {
    "missing": _l("%(field)s is required."),
    "extra_forbidden": _l("%(field)s is not an accepted field."),
    "string_too_short": _l("%(field)s is too short."),
    "string_too_long": _l("%(field)s is too long."),
    "too_short": _l("%(field)s has too few items."),
    "too_long": _l("%(field)s has too many items."),
    "string_pattern_mismatch": _l("%(field)s is not in the expected format."),
    "string_type": _l("%(field)s must be text."),
    "string_unicode": _l("%(field)s must be text."),
    "int_type": _l("%(field)s must be a whole number."),
    "int_parsing": _l("%(field)s must be a whole number."),
    "int_from_float": _l("%(field)s must be a whole number."),
    "float_type": _l("%(field)s must be a number."),
    "float_parsing": _l("%(field)s must be a number."),
    "finite_number": _l("%(field)s must be a finite number."),
    "greater_than": _l("%(field)s is too small."),
    "greater_than_equal": _l("%(field)s is too small."),
    "less_than": _l("%(field)s is too large."),
    "less_than_equal": _l("%(field)s is too large."),
    "literal_error": _l("%(field)s is not one of the allowed values."),
    "enum": _l("%(field)s is not one of the allowed values."),
    "bool_type": _l("%(field)s must be true or false."),
    "bool_parsing": _l("%(field)s must be true or false."),
    "date_type": _l("%(field)s must be a date written YYYY-MM-DD."),
    "date_parsing": _l("%(field)s must be a date written YYYY-MM-DD."),
    "date_from_datetime_parsing": _l("%(field)s must be a date written YYYY-MM-DD."),
    "date_from_datetime_inexact": _l("%(field)s must be a date written YYYY-MM-DD."),
    "list_type": _l("%(field)s must be a list."),
    "model_type": _l("%(field)s must be an object."),
    "dict_type": _l("%(field)s must be an object."),
}
FALLBACK = _l("%(field)s is not valid.")


class ErrorBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(description="Machine-readable error code, e.g. invalid, invalid_session")
    message: str = Field(description="For the person, in the request's language")
    field: str | None = Field(description="The request field at fault, if any")


class ErrorResponse(BaseModel):
    model_config = ConfigDict(extra="forbid")

    error: ErrorBody


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


OPERATIONS: dict[str, list[Operation]] = {}


def validation_error(exc: PydanticError) -> ValidationError:
    """pydantic's first error as ours: the field's dotted path and a message by error type."""
    err = exc.errors(include_url=False)[0]
    kind = err.get("type", "")
    if kind == "json_invalid" or (
        kind in ("model_type", "model_attributes_type") and not err.get("loc")
    ):
        return ValidationError(gettext("The body must be a JSON object."), field=None)
    loc = [str(p) for p in err.get("loc", ()) if p != "__root__"]
    field = ".".join(loc) or None
    message = MESSAGES.get(kind, FALLBACK)
    return ValidationError(str(message) % {"field": field or gettext("The input")}, field=field)


def parse_body(model: type[BaseModel]) -> BaseModel:
    """The request's JSON body validated by ``model`` (ValidationError with the field)."""
    try:
        return model.model_validate_json(request.get_data() or b"")
    except PydanticError as exc:
        raise validation_error(exc) from None


def parse_query(model: type[BaseModel]) -> BaseModel:
    """The query string validated by ``model`` (the first value of repeated parameters)."""
    try:
        return model.model_validate(request.args.to_dict(flat=True))
    except PydanticError as exc:
        raise validation_error(exc) from None


def api_operation(
    document: str,
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
    """Validate a view's input with pydantic and list it in the OpenAPI ``document``."""

    def decorate(view: Callable) -> Callable:
        errs = (
            set(errors) | {404} | ({401} if auth else set()) | ({400} if body or query else set())
        )
        OPERATIONS.setdefault(document, []).append(
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
            if any(isinstance(v, int) and v > MAX_ID for v in kwargs.values()):
                raise NotFound(gettext("Not found."))
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


def openapi_document(
    document: str, *, title: str, version: str, path_params: dict[str, dict]
) -> dict:
    """The OpenAPI 3.1 document of every operation registered into ``document``."""
    operations = OPERATIONS.get(document, [])
    models: list[tuple[type[BaseModel], str]] = [(ErrorResponse, "serialization")]
    for op in operations:
        models.append((op.response, "serialization"))
        if op.body is not None:
            models.append((op.body, "validation"))
    refs, defs = models_json_schema(list(dict.fromkeys(models)), ref_template=REF)
    paths: dict[str, dict] = {}
    for op in operations:
        params = [
            {"name": name, "in": "path", "required": True, "schema": schema}
            for name, schema in path_params.items()
            if "{" + name + "}" in op.path
        ]
        params += [
            {"name": name, "in": "path", "required": True, "schema": _path_schema(name)}
            for name in _path_names(op.path)
            if name not in path_params
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


def _path_names(path: str) -> list[str]:
    return [p[1:-1] for p in path.split("/") if p.startswith("{") and p.endswith("}")]


def _path_schema(name: str) -> dict:
    """``..._id`` parts are row ids (Flask's ``int`` converter); the others tokens."""
    if name.endswith("_id"):
        return {"type": "integer", "minimum": 0, "maximum": MAX_ID}
    return {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}
