"""Make Typer's parse of options left out cheap: they skip Pydantic, which their default needs no check from.

Typer coerces every option through a Pydantic TypeAdapter, built on first use, even an
option the user left out whose default is None; importing Pydantic and building about
fifteen adapters cost `timeout` some 50 ms before its first sound. For such a value
Typer's coercion returns None (or () for a repeatable option) without ever using the
adapter, so we hand it an adapter-less coercion that does exactly that. Options that
were given still go through Typer's own path, so their checks and messages are Typer's.
If a Typer release moves these internals the patch is skipped: parsing stays as it was,
only slower (tests/test_cli.py notices).
"""

from __future__ import annotations

from typing import Any


def skip_coercion_of_absent_values() -> bool:
    """Patch Typer's parameter class once; return True when it is (or already was) patched."""
    try:
        from typer._coercion import PassThroughRuntimeParam
        from typer.core import _TyperParameter
    except ImportError:
        return False
    original = getattr(_TyperParameter, "process_value", None)
    if original is None or not hasattr(_TyperParameter, "get_runtime_param"):
        return False
    if getattr(original, "_skips_absent", False):
        return True

    def process_value(self: Any, ctx: Any, value: Any) -> Any:
        if value is not None or getattr(self, "_runtime_param", object()) is not None:
            return original(self, ctx, value)
        descriptor = self.type_descriptor
        # Typer's RuntimeParam.coerce returns None or () for None before any adapter runs.
        self._runtime_param = PassThroughRuntimeParam(
            parameter_info=descriptor.parameter_info, annotation=descriptor.annotation
        )
        try:
            return original(self, ctx, value)
        finally:
            self._runtime_param = None  # a later value that is given builds Typer's real coercion

    process_value._skips_absent = True  # type: ignore[attr-defined]
    _TyperParameter.process_value = process_value  # type: ignore[method-assign]
    return True
