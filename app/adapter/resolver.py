"""operationId `listProjects` with tag `projects` -> handlers/projects.py:list_projects."""

from __future__ import annotations

import re
from typing import Any

from connexion.resolver import Resolver

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def snake_case(operation_id: str) -> str:
    return _CAMEL.sub("_", operation_id).lower()


def handler_name(tag: str, operation_id: str) -> str:
    return f"handlers.{tag}.{snake_case(operation_id)}"


class TagResolver(Resolver):
    def resolve_operation_id(self, operation: Any) -> str:
        spec = operation._operation
        tags = spec.get("tags") or []
        if len(tags) != 1:
            raise ValueError(f"operation {operation.operation_id} must have exactly one tag")
        return handler_name(tags[0], operation.operation_id)
