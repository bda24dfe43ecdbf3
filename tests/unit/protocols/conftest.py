"""A small schema with one column of each kind, for the protocol readers."""

from __future__ import annotations

import pytest

from service.model.schema import Column, Schema


@pytest.fixture
def schema() -> Schema:
    return Schema(
        columns=(
            Column("age", "integer"),
            Column("income", "number", nullable=True),
            Column("member", "boolean"),
            Column("plan", "string", categories=("basic", "pro")),
        ),
        example={"age": 30, "income": 1.5, "member": True, "plan": "pro"},
        source="test",
    )
