"""Just enough FHIR Shorthand to turn the official ROR example instances (``*.fsh``) into JSON resources.

Handles the rules those files use: ``Alias``, ``Instance``/``InstanceOf``, assignments to paths with
named slices (``identifier[idNatSt]``), indexes ``[0]``, ``[+]`` and ``[=]``, codes ``$ALIAS#code
"display"`` and ``#code``, ``Reference(Type/id)``, strings, booleans, and extensions on primitive
``line`` values (written to ``_line`` as FHIR JSON does). Not a general FSH compiler.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

#: Elements that are arrays in the resources these examples describe.
_ARRAYS = {
    "identifier", "type", "extension", "line", "contact", "telecom", "given", "profile", "address",
    "specialty", "code", "healthcareService", "coding", "alias",
}  # fmt: skip
#: Elements of that list that are single inside a given parent.
_SINGLE = {("identifier", "type")}
_RESOURCE_OF_PROFILE = {
    "ROROrganization": "Organization",
    "Organization": "Organization",
    "RORPractitioner": "Practitioner",
    "RORPractitionerRole": "PractitionerRole",
}
_RULE = re.compile(r"^\*\s+(?P<path>\S+)\s*=\s*(?P<value>.+?)\s*$")
_CODE = re.compile(r'^(?P<system>\$[\w/.-]+)?#(?P<code>[\w.-]+)(?:\s+"(?P<display>[^"]*)")?$')


def load_fsh(path: Path) -> dict[str, Any]:
    aliases: dict[str, str] = {}
    resource: dict[str, Any] = {}
    counters: dict[tuple[int, str], int] = {}
    for raw_line in path.read_text(encoding="utf-8").splitlines():
        line = raw_line.strip()
        if line.startswith("Alias:"):
            name, _, target = line.removeprefix("Alias:").partition("=")
            aliases[name.strip()] = target.strip()
        elif line.startswith("Instance:"):
            resource["id"] = line.removeprefix("Instance:").strip()
        elif line.startswith("InstanceOf:"):
            resource["resourceType"] = _RESOURCE_OF_PROFILE[line.removeprefix("InstanceOf:").strip()]
        elif match := _RULE.match(line):
            _assign(resource, match["path"], _value(match["value"], aliases), counters)
    return clean(resource)


def _value(text: str, aliases: dict[str, str]) -> Any:
    if text.startswith('"'):
        return text.strip('"')
    if text in ("true", "false"):
        return text == "true"
    if text.startswith("Reference("):
        return {"reference": text.removeprefix("Reference(").removesuffix(")")}
    match = _CODE.match(text)
    if match is None:
        raise ValueError(f"FSH value not handled: {text}")
    if match["system"] is None:
        return match["code"]
    coding = {"system": aliases[match["system"]], "code": match["code"]}
    if match["display"] is not None:
        coding["display"] = match["display"]
    return {"coding": [coding]}


def _assign(resource: dict[str, Any], path: str, value: Any, counters: dict[tuple[int, str], int]) -> None:
    steps = re.findall(r"(\w+)(?:\[([^\]]+)\])?", path)
    node: Any = resource
    for position, (name, index) in enumerate(steps):
        last = position == len(steps) - 1
        if name == "line" and not last:  # extensions of the primitive ``line`` go to ``_line``
            node = node.setdefault("_line", [{}])[0]
            continue
        parent = steps[position - 1][0] if position else resource.get("resourceType")
        is_array = name in _ARRAYS and (parent, name) not in _SINGLE
        if (parent, name) == ("Practitioner", "name"):
            is_array = True
        if not is_array:
            if last:
                node[name] = value
            else:
                node = node.setdefault(name, {})
            continue
        items = node.setdefault(name, [])
        key = (id(items), name)
        if index in ("", "0") or index is None:
            slot = 0
        elif index == "+":
            slot = len(items)
        elif index == "=":
            slot = counters.get(key, 0)
        elif index.isdigit():
            slot = int(index)
        else:  # a named slice: one entry per name
            slot = node.setdefault(f"__slices_{name}", {}).setdefault(index, len(items))
        counters[key] = slot
        while len(items) <= slot:
            items.append({})
        if last:
            if isinstance(value, dict) and isinstance(items[slot], dict):
                items[slot].update(value)
            else:
                items[slot] = value
        else:
            node = items[slot]


def clean(node: Any) -> Any:
    """The resource without the converter's bookkeeping keys."""
    if isinstance(node, dict):
        return {key: clean(value) for key, value in node.items() if not key.startswith("__slices_")}
    if isinstance(node, list):
        return [clean(value) for value in node]
    return node
