"""Type mapping between Arrow, the NCF footer and Spark SQL.

A type is stored in the footer as a JSON object whose ``"id"`` is the Spark SQL type name
(``boolean, byte, short, int, long, float, double, decimal, string, binary, date,
timestamp, timestamp_ntz, void, array, struct, map``) plus the attributes needed to give back the
identical Arrow type (``large`` offsets, timestamp ``unit``/``tz``, field names...).
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

from .errors import NCFSchemaError, NCFVersionError

TAG_PREFIX = "ncf.tag."
"""Arrow field-metadata key prefix under which semantic column tags are exposed."""

_SIMPLE = {
    "boolean": pa.bool_(),
    "byte": pa.int8(),
    "short": pa.int16(),
    "int": pa.int32(),
    "long": pa.int64(),
    "float": pa.float32(),
    "double": pa.float64(),
    "date": pa.date32(),
    "void": pa.null(),
}
_SIMPLE_BY_TYPE = {t: name for name, t in _SIMPLE.items()}


def type_to_json(t: pa.DataType) -> dict[str, Any]:
    """Footer descriptor of an Arrow type; raises :class:`NCFSchemaError` if NCF cannot store it."""
    if t in _SIMPLE_BY_TYPE:
        return {"id": _SIMPLE_BY_TYPE[t]}
    if pa.types.is_decimal128(t):
        return {"id": "decimal", "precision": t.precision, "scale": t.scale}
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return {"id": "string", "large": pa.types.is_large_string(t)}
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return {"id": "binary", "large": pa.types.is_large_binary(t)}
    if pa.types.is_timestamp(t):
        if t.tz is None:
            return {"id": "timestamp_ntz", "unit": t.unit}
        return {"id": "timestamp", "unit": t.unit, "tz": t.tz}
    if pa.types.is_map(t):
        return {
            "id": "map",
            "key": field_to_json(t.key_field),
            "value": field_to_json(t.item_field),
            "entries": t.field(0).name,
            "keys_sorted": t.keys_sorted,
        }
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return {"id": "array", "large": pa.types.is_large_list(t), "element": field_to_json(t.value_field)}
    if pa.types.is_struct(t):
        return {"id": "struct", "fields": [field_to_json(t.field(i)) for i in range(t.num_fields)]}
    raise NCFSchemaError(f"NCF cannot store Arrow type {t}")


def type_from_json(d: dict[str, Any]) -> pa.DataType:
    """Arrow type of a footer descriptor; raises :class:`NCFVersionError` for an unknown type id."""
    tid = d["id"]
    if tid in _SIMPLE:
        return _SIMPLE[tid]
    if tid == "decimal":
        return pa.decimal128(int(d["precision"]), int(d["scale"]))
    if tid == "string":
        return pa.large_string() if d.get("large") else pa.string()
    if tid == "binary":
        return pa.large_binary() if d.get("large") else pa.binary()
    if tid == "timestamp":
        return pa.timestamp(d.get("unit", "us"), tz=d.get("tz", "UTC"))
    if tid == "timestamp_ntz":
        return pa.timestamp(d.get("unit", "us"))
    if tid == "map":
        key, value = field_from_json(d["key"]), field_from_json(d["value"])
        mt = pa.map_(key, value, keys_sorted=bool(d.get("keys_sorted", False)))
        if d.get("entries", "entries") != "entries":
            raise NCFVersionError(f"map entries named {d['entries']!r} are not supported by this reader")
        return mt
    if tid == "array":
        element = field_from_json(d["element"])
        return pa.large_list(element) if d.get("large") else pa.list_(element)
    if tid == "struct":
        return pa.struct([field_from_json(f) for f in d["fields"]])
    raise NCFVersionError(f"unknown column type {tid!r} (file written by a newer NCF version?)")


def spark_type_name(t: pa.DataType) -> str:
    """Spark SQL DDL name of an Arrow type, e.g. ``decimal(10,2)`` or ``map<string,array<int>>``."""
    d = type_to_json(t)
    tid = d["id"]
    if tid == "decimal":
        return f"decimal({t.precision},{t.scale})"
    if tid == "array":
        return f"array<{spark_type_name(t.value_type)}>"
    if tid == "map":
        return f"map<{spark_type_name(t.key_type)},{spark_type_name(t.item_type)}>"
    if tid == "struct":
        inner = ",".join(f"{f.name}:{spark_type_name(f.type)}" for f in t)
        return f"struct<{inner}>"
    return tid


def _decode_metadata(metadata: dict[bytes, bytes] | None, where: str) -> dict[str, str]:
    out = {}
    for k, v in (metadata or {}).items():
        try:
            out[k.decode("utf-8")] = v.decode("utf-8")
        except UnicodeDecodeError:
            raise NCFSchemaError(f"metadata of {where} is not UTF-8 text: {k!r}") from None
    return out


def field_to_json(f: pa.Field) -> dict[str, Any]:
    """Footer descriptor of a field: name, type, nullability, metadata, semantic tags."""
    meta = _decode_metadata(f.metadata, f"field {f.name!r}")
    tags = {k[len(TAG_PREFIX) :]: v for k, v in meta.items() if k.startswith(TAG_PREFIX)}
    other = {k: v for k, v in meta.items() if not k.startswith(TAG_PREFIX)}
    d: dict[str, Any] = {"name": f.name, "type": type_to_json(f.type), "nullable": f.nullable}
    if other:
        d["metadata"] = other
    if tags:
        d["tags"] = tags
    return d


def field_from_json(d: dict[str, Any]) -> pa.Field:
    """Arrow field of a footer descriptor; tags go into field metadata under ``ncf.tag.*``."""
    meta = dict(d.get("metadata") or {})
    meta.update({TAG_PREFIX + k: v for k, v in (d.get("tags") or {}).items()})
    return pa.field(str(d["name"]), type_from_json(d["type"]), bool(d.get("nullable", True)), meta or None)


def schema_to_json(schema: pa.Schema) -> list[dict[str, Any]]:
    """Footer descriptors of the top-level fields of ``schema``."""
    names = schema.names
    if len(set(names)) != len(names):
        raise NCFSchemaError(f"duplicate column names in schema: {names}")
    return [field_to_json(f) for f in schema]


def schema_from_json(fields: list[dict[str, Any]], metadata: dict[str, str]) -> pa.Schema:
    """Arrow schema of footer field descriptors, with the file key/value metadata attached."""
    return pa.schema([field_from_json(f) for f in fields], metadata=metadata or None)


def apply_tags(schema: pa.Schema, column_tags: dict[str, dict[str, str]] | None) -> pa.Schema:
    """``schema`` with ``column_tags`` (column -> {tag: value}) merged into field metadata."""
    if not column_tags:
        return schema
    unknown = set(column_tags) - set(schema.names)
    if unknown:
        raise NCFSchemaError(f"column_tags name unknown columns: {sorted(unknown)}")
    fields = []
    for f in schema:
        tags = column_tags.get(f.name)
        if tags:
            meta = dict(f.metadata or {})
            for k, v in tags.items():
                if not isinstance(v, str):
                    v = json.dumps(v)
                meta[(TAG_PREFIX + str(k)).encode()] = v.encode()
            f = f.with_metadata(meta)
        fields.append(f)
    return pa.schema(fields, metadata=schema.metadata)


def column_tags_of(schema: pa.Schema) -> dict[str, dict[str, str]]:
    """Semantic tags per top-level column, read back from field metadata."""
    out = {}
    for f in schema:
        tags = {
            k.decode()[len(TAG_PREFIX) :]: v.decode()
            for k, v in (f.metadata or {}).items()
            if k.decode(errors="replace").startswith(TAG_PREFIX)
        }
        if tags:
            out[f.name] = tags
    return out
