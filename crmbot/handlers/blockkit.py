"""slack-sdk's Block Kit `to_dict()`, with what is per class looked up once per class.

`JsonObject.validate_json` (run by every `to_dict()`, for every nested object) finds its
validators by walking `dir(self)` and calling `getattr` on each name, properties included:
rendering a 20-hit search reply spent about half its CPU there. The validators are methods
marked by `JsonValidator`, so they are a property of the class; `install()` makes
`validate_json` run exactly those, found once per class. Likewise
`get_non_null_attributes` rebuilt and sorted the class's `attributes` set for every object;
the replacement sorts it once per class and otherwise keeps the original's rules (None is
left out, so are empty lists and strings except where Slack allows them). The output and
the checks are the same.
"""

from __future__ import annotations

import threading
from typing import Any

from slack_sdk.models.basic_objects import EMPTY_ALLOWED_TYPE_AND_PROPERTY_LIST, JsonObject

_validators: dict[type, tuple[str, ...]] = {}
_lock = threading.Lock()


def validators_of(cls: type) -> tuple[str, ...]:
    """The names of `cls`'s validator methods (what `validate_json` would call), cached."""
    names = _validators.get(cls)
    if names is None:
        names = tuple(
            name
            for name in dir(cls)
            if not name.startswith("__")
            and callable(getattr(cls, name, None))
            and hasattr(getattr(cls, name, None), "validator")
        )
        with _lock:
            _validators[cls] = names
    return names


def validate_json(self: Any) -> None:
    """Run the object's validators; raises SlackObjectFormationError like the original."""
    for name in validators_of(type(self)):
        getattr(self, name)()


_attributes: dict[type, tuple[str, ...]] = {}
_EMPTY_ALLOWED: dict[str, frozenset[str]] = {}
for _allowed in EMPTY_ALLOWED_TYPE_AND_PROPERTY_LIST:
    _EMPTY_ALLOWED[_allowed["type"]] = _EMPTY_ALLOWED.get(_allowed["type"], frozenset()) | {
        _allowed["property"]
    }


def _compatible(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_compatible(v) for v in value]
    to_dict = getattr(value, "to_dict", None)
    if to_dict and callable(to_dict):
        return {k: _compatible(v) for k, v in to_dict().items()}
    return value


def get_non_null_attributes(self: Any) -> dict[str, Any]:
    """The object's set attributes as JSON-ready values, keys sorted (as slack-sdk does)."""
    cls = type(self)
    keys = _attributes.get(cls)
    if keys is None:  # `attributes` is a property of the class in every slack-sdk model
        keys = tuple(sorted(self.attributes))
        with _lock:
            _attributes[cls] = keys
    type_value = getattr(self, "type", None)
    empty_allowed = _EMPTY_ALLOWED.get(type_value) if isinstance(type_value, str) else None
    out: dict[str, Any] = {}
    for key in keys:
        value = self.get_object_attribute(key)
        if value is None:
            continue
        if (empty_allowed is None or key not in empty_allowed) and (
            getattr(value, "__len__", None) is not None and len(value) == 0
        ):
            continue
        out[key] = _compatible(value)
    return out


# slack-sdk's own versions, kept so tests can check that ours render the same.
ORIGINAL_VALIDATE_JSON = JsonObject.validate_json
ORIGINAL_GET_NON_NULL_ATTRIBUTES = JsonObject.get_non_null_attributes


def install() -> None:
    """Use the cached lookups for every slack-sdk model (idempotent)."""
    JsonObject.validate_json = validate_json  # type: ignore[method-assign]
    JsonObject.get_non_null_attributes = get_non_null_attributes  # type: ignore[method-assign]
