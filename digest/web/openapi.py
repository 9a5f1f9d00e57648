"""The OpenAPI 3.1 document of /api/v1: what each endpoint takes and answers.

A test checks every answer of the API against it (``tests/test_api.py``).
"""

from __future__ import annotations

from typing import Any

_NULLABLE_TEXT: dict[str, Any] = {"type": ["string", "null"]}
_MOMENT: dict[str, Any] = {"type": ["string", "null"], "format": "date-time"}

SCHEMAS: dict[str, Any] = {
    "Problem": {
        "type": "object",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["field", "detail"],
                    "properties": {"field": {"type": "string"}, "detail": {"type": "string"}},
                },
            },
        },
    },
    "Topic": {
        "type": "object",
        "required": ["query", "label"],
        "properties": {"query": {"type": "string"}, "label": _NULLABLE_TEXT},
    },
    "Subscriber": {
        "type": "object",
        "required": ["id", "email", "state", "status", "newsletter", "topics", "paused"],
        "properties": {
            "id": {"type": "integer"},
            "email": {"type": "string"},
            "name": _NULLABLE_TEXT,
            "state": {
                "enum": ["pending", "active", "paused", "unsubscribed", "bounced", "complained"]
            },
            "status": {"type": "string"},
            "newsletter": {"type": "string"},
            "topics": {"type": "array", "items": {"$ref": "#/components/schemas/Topic"}},
            "theme": _NULLABLE_TEXT,
            "timezone": _NULLABLE_TEXT,
            "paused": {"type": "boolean"},
            "explore": {
                "type": "boolean",
                "description": "Whether their emails may carry an exploration card.",
            },
            "cadence": {
                "type": "object",
                "required": ["kind"],
                "properties": {
                    "kind": {"enum": ["daily", "weekly", "threshold"]},
                    "weekday": {"type": "integer"},
                    "papers": {"type": "integer"},
                },
            },
            "period_start": {"type": ["string", "null"], "format": "date"},
            "unsubscribed_at": _MOMENT,
            "updated_at": _MOMENT,
        },
    },
    "SubscriberPage": {
        "type": "object",
        "required": ["newsletter", "total", "page", "per_page", "items"],
        "properties": {
            "newsletter": {"type": "string"},
            "total": {"type": "integer"},
            "page": {"type": "integer"},
            "per_page": {"type": "integer"},
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Subscriber"}},
        },
    },
    "History": {
        "allOf": [
            {"$ref": "#/components/schemas/Subscriber"},
            {
                "type": "object",
                "required": ["events", "came_back", "feedback", "deliveries", "next_email"],
                "properties": {
                    "events": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["at", "state", "channel"],
                            "properties": {
                                "at": {"type": "string", "format": "date-time"},
                                "state": {"type": "string"},
                                "channel": {"type": "string"},
                                "detail": _NULLABLE_TEXT,
                            },
                        },
                    },
                    "came_back": {"type": "array", "items": {"type": "object"}},
                    "feedback": {"type": "array", "items": {"type": "object"}},
                    "deliveries": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["id", "day", "status"],
                            "properties": {
                                "id": {"type": "integer"},
                                "day": {"type": "string", "format": "date"},
                                "status": {"type": "string"},
                                "message_id": _NULLABLE_TEXT,
                            },
                        },
                    },
                    "next_email": _MOMENT,
                },
            },
        ]
    },
    "Edition": {
        "type": "object",
        "required": ["day", "newsletter", "papers", "deliveries", "came_back"],
        "properties": {
            "day": {"type": "string", "format": "date"},
            "newsletter": {"type": "string"},
            "papers": {"type": "integer"},
            "deliveries": {"type": "object", "additionalProperties": {"type": "integer"}},
            "came_back": {"type": "object", "additionalProperties": {"type": "integer"}},
            "bounce_rate": {"type": "number"},
            "complaint_rate": {"type": "number"},
            "failures": {"type": "array", "items": {"type": "object"}},
        },
    },
    "EditionWithPapers": {
        "allOf": [
            {"$ref": "#/components/schemas/Edition"},
            {
                "type": "object",
                "required": ["entries"],
                "properties": {
                    "entries": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["title", "source"],
                            "properties": {
                                "title": {"type": "string"},
                                "arxiv_id": _NULLABLE_TEXT,
                                "source": {"type": "string"},
                            },
                        },
                    }
                },
            },
        ]
    },
    "EditionList": {
        "type": "object",
        "required": ["items"],
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Edition"}}
        },
    },
    "SourceList": {
        "type": "object",
        "required": ["last_edition", "items"],
        "properties": {
            "last_edition": {"type": ["string", "null"], "format": "date"},
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "location", "last_check", "in_last_edition"],
                    "properties": {
                        "name": {"type": "string"},
                        "location": {"type": "string"},
                        "format": _NULLABLE_TEXT,
                        "last_check": {"type": ["object", "null"]},
                        "in_last_edition": {"type": "integer"},
                    },
                },
            },
        },
    },
    "NewSubscriber": {
        "type": "object",
        "required": ["email"],
        "properties": {
            "email": {"type": "string"},
            "name": {"type": "string"},
            "topics": {"type": "array", "items": {"type": "string"}},
            "theme": {"type": "string"},
            "timezone": {"type": "string"},
            "cadence": {"type": "string", "examples": ["daily", "weekly:monday", "threshold:10"]},
            "confirmed": {
                "type": "boolean",
                "description": "Active at once, without a confirmation mail: keys of scope "
                "import only, for lists the operator vouches for.",
            },
        },
    },
    "Changes": {
        "type": "object",
        "properties": {
            "topics": {"type": "array", "items": {"type": "string"}},
            "theme": {"type": "string"},
            "timezone": {"type": "string"},
            "cadence": {"type": "string"},
            "paused": {"type": "boolean"},
            "explore": {"type": "boolean"},
        },
    },
    "TestSend": {
        "type": "object",
        "required": ["email"],
        "properties": {"email": {"type": "string"}},
    },
    "Sent": {"type": "object", "required": ["sent"], "properties": {"sent": {"type": "string"}}},
}


def _answers(ok: dict[str, Any], *errors: int) -> dict[str, Any]:
    problem = {
        "description": "A problem (RFC 9457)",
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }
    return ok | {str(code): problem for code in (401, 429, *errors)}


def _ok(code: int, schema: str | None, description: str) -> dict[str, Any]:
    if schema is None:
        return {str(code): {"description": description}}
    content = {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}
    return {str(code): {"description": description, "content": content}}


def _body(schema: str) -> dict[str, Any]:
    return {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


_NEWSLETTER = {
    "name": "newsletter",
    "in": "query",
    "description": "The newsletter's slug (default: the first)",
    "schema": {"type": "string"},
}
_READER = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}

PATHS: dict[str, Any] = {
    "/subscribers": {
        "get": {
            "summary": "A page of readers",
            "parameters": [
                _NEWSLETTER,
                {"name": "state", "in": "query", "schema": {"type": "string"}},
                {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
                {"name": "per_page", "in": "query", "schema": {"type": "integer", "maximum": 200}},
            ],
            "responses": _answers(_ok(200, "SubscriberPage", "The readers"), 404, 422),
        },
        "post": {
            "summary": "Add a reader (pending, mailed a confirmation link)",
            "parameters": [_NEWSLETTER],
            "requestBody": _body("NewSubscriber"),
            "responses": _answers(
                _ok(201, "Subscriber", "Added"), 400, 403, 404, 409, 413, 422, 503
            ),
        },
    },
    "/subscribers/{id}": {
        "get": {
            "summary": "A reader and their history",
            "parameters": [_READER],
            "responses": _answers(_ok(200, "History", "The reader"), 404),
        },
        "patch": {
            "summary": "Change a reader's topics, theme, timezone, cadence or pause",
            "parameters": [_READER],
            "requestBody": _body("Changes"),
            "responses": _answers(_ok(200, "Subscriber", "Changed"), 400, 403, 404, 409, 413, 422),
        },
        "delete": {
            "summary": "Unsubscribe a reader from their newsletter",
            "parameters": [_READER],
            "responses": _answers(_ok(204, None, "Unsubscribed"), 403, 404),
        },
    },
    "/editions": {
        "get": {
            "summary": "The latest editions",
            "parameters": [
                _NEWSLETTER,
                {"name": "limit", "in": "query", "schema": {"type": "integer"}},
            ],
            "responses": _answers(_ok(200, "EditionList", "The editions"), 404, 422),
        }
    },
    "/editions/{day}": {
        "get": {
            "summary": "One edition and its papers",
            "parameters": [
                _NEWSLETTER,
                {"name": "day", "in": "path", "required": True, "schema": {"type": "string"}},
            ],
            "responses": _answers(_ok(200, "EditionWithPapers", "The edition"), 404, 422),
        }
    },
    "/sources": {
        "get": {
            "summary": "The sources and their health",
            "responses": _answers(_ok(200, "SourceList", "The sources")),
        }
    },
    "/send-test": {
        "post": {
            "summary": "Mail an address the latest digest, marked [test]",
            "parameters": [_NEWSLETTER],
            "requestBody": _body("TestSend"),
            "responses": _answers(_ok(200, "Sent", "Sent"), 400, 403, 404, 409, 413, 422, 503),
        }
    },
}


def document(base_url: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document, with the server this installation serves it from."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "digest", "version": "1"},
        "servers": [{"url": f"{base_url}/api/v1"}],
        "security": [{"key": []}],
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"key": {"type": "http", "scheme": "bearer"}},
        },
        "paths": PATHS,
    }
