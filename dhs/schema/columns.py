"""Column: one output column (name, Arrow type, unit, meaning), and Arrow schemas from columns."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    unit: str
    doc: str


def _c(name: str, typ: pa.DataType, unit: str, doc: str) -> Column:
    return Column(name, typ, unit, doc)


F64, F32, I64, I32 = pa.float64(), pa.float32(), pa.int64(), pa.int32()
I16, STR, BOOL = pa.int16(), pa.string(), pa.bool_()


def arrow_schema(columns: tuple[Column, ...]) -> pa.Schema:
    """The Arrow schema of a column set, with units and docs as field metadata."""
    return pa.schema([pa.field(c.name, c.type, metadata={b"unit": c.unit.encode(), b"doc": c.doc.encode()})
                      for c in columns])


def names(columns: tuple[Column, ...]) -> list[str]:
    return [c.name for c in columns]
