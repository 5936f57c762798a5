"""The published memory tools as data: schemas loaded from `tool_schemas.json`, filtered for
disabled components, and the argument check derived from them (nothing is retyped here)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from memalpha.errors import ConfigError, ToolArgumentError, ToolParseError
from memalpha.jsontext import argument_problem, repair_object
from memalpha.memory.config import Component

MEMORY_TYPE = "memory_type"
_SUFFIX = "_memory"


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One tool: name, description and JSON-schema parameters (OpenAI function format)."""

    name: str
    description: str
    parameters: dict[str, Any]

    def openai(self) -> dict[str, Any]:
        """The OpenAI `tools=[...]` element for this tool."""
        return {"type": "function", "function": self.function()}

    def function(self) -> dict[str, Any]:
        """The `function` part, which is what qwen-agent renders for Memalpha-4B."""
        return {"name": self.name, "description": self.description, "parameters": self.parameters}


def published_specs() -> list[ToolSpec]:
    """The three memorize-mode tools exactly as published (MEMALPHA_SPEC §1.5)."""
    raw = json.loads(files("memalpha.memory").joinpath("tool_schemas.json").read_text("utf-8"))
    specs = [ToolSpec(t["name"], t["description"], t["parameters"]) for t in raw]
    for spec in specs:
        _check_spec(spec)
    return specs


def _check_spec(spec: ToolSpec) -> None:
    """Validate a definition when the registry is built, not on the first call in a rollout."""
    params = spec.parameters
    props = params.get("properties", {})
    if params.get("type") != "object" or not set(params.get("required", [])) <= set(props):
        raise ConfigError(
            f"tool '{spec.name}': parameters must be an object whose required "
            "names are all properties"
        )
    for value in props.get(MEMORY_TYPE, {}).get("enum", []):
        if not value.endswith(_SUFFIX) or value[: -len(_SUFFIX)] not in set(Component):
            raise ConfigError(f"tool '{spec.name}': unknown memory_type value '{value}'")


def parse_component(value: str) -> Component:
    """`semantic_memory` or the bare `semantic` → Component.SEMANTIC.

    Raises:
        ValueError: not a component name.
    """
    name = value.strip().lower()
    return Component(name[: -len(_SUFFIX)] if name.endswith(_SUFFIX) else name)


class ToolRegistry:
    """The tools offered to the memory writer, given which components are enabled.

    A component disabled for an ablation is removed from every `memory_type` enum; a tool
    whose enum becomes empty is dropped (as published, SPEC §1.5).
    """

    def __init__(self, disabled: frozenset[Component] = frozenset()) -> None:
        self.specs: dict[str, ToolSpec] = {}
        for spec in published_specs():
            props = dict(spec.parameters["properties"])
            if MEMORY_TYPE in props:
                allowed = [
                    v for v in props[MEMORY_TYPE]["enum"] if parse_component(v) not in disabled
                ]
                if not allowed:
                    continue
                props[MEMORY_TYPE] = {**props[MEMORY_TYPE], "enum": allowed}
            params = {**spec.parameters, "properties": props}
            self.specs[spec.name] = ToolSpec(spec.name, spec.description, params)

    def openai(self) -> list[dict[str, Any]]:
        return [s.openai() for s in self.specs.values()]

    def functions(self) -> list[dict[str, Any]]:
        return [s.function() for s in self.specs.values()]

    def arguments(self, name: str, arguments: dict[str, Any] | str) -> dict[str, Any]:
        """Check a call against its schema and return its arguments, `memory_type` normalised
        to a `Component`. A JSON string is parsed (repaired where json_repair can, as published).

        Raises:
            ToolParseError: the arguments are not a JSON object.
            ToolArgumentError: unknown tool, missing or mistyped argument, value outside the enum.
        """
        spec = self.specs.get(name)
        if spec is None:
            raise ToolArgumentError(
                f"unknown tool '{name}' (available: {', '.join(self.specs)})", tool=name
            )
        args = _as_object(name, arguments)
        props = spec.parameters["properties"]
        for required in spec.parameters.get("required", []):
            if args.get(required) is None:
                raise ToolArgumentError(
                    f"{name}: missing required argument '{required}'", tool=name
                )
        out: dict[str, Any] = {}
        for key, schema in props.items():
            value = args.get(key)
            if value is None:
                continue
            if schema.get("type") == "string" and not isinstance(value, str):
                raise ToolArgumentError(
                    f"{name}: argument '{key}' must be a string, got {type(value).__name__}",
                    tool=name,
                )
            out[key] = value
        if MEMORY_TYPE in out:
            out[MEMORY_TYPE] = self._component(name, out[MEMORY_TYPE], props[MEMORY_TYPE]["enum"])
        return out

    @staticmethod
    def _component(tool: str, value: str, enum: list[str]) -> Component:
        allowed = {parse_component(v) for v in enum}
        try:
            component = parse_component(value)
        except ValueError:
            component = None
        if component not in allowed:
            raise ToolArgumentError(
                f"{tool}: memory_type '{value}' is not one of {', '.join(enum)}", tool=tool
            )
        return component


def _as_object(tool: str, arguments: dict[str, Any] | str) -> dict[str, Any]:
    if isinstance(arguments, str):
        problem = argument_problem(arguments)
        if problem is not None:
            raise ToolParseError(f"{tool}: {problem}", tool=tool)
        try:
            parsed = json.loads(arguments)  # bounded by argument_problem: no deep recursion
        except (json.JSONDecodeError, RecursionError):
            parsed = repair_object(arguments) or None  # a repair that finds nothing is a miss
        if parsed is None:
            raise ToolParseError(
                f"{tool}: arguments are not a JSON object: {arguments[:80]!r}", tool=tool
            )
        arguments = parsed
    if not isinstance(arguments, dict):
        raise ToolParseError(
            f"{tool}: arguments must be a JSON object, got {type(arguments).__name__}", tool=tool
        )
    return arguments
