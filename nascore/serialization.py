"""Objects as data: import paths of classes and functions, and JSON-able arguments.

What crosses a process boundary or goes into the store is data, not a pickle of live objects: a
class or function is its import path (``"package.module:Name"``) and its arguments must be JSON.

Shipping trials to worker processes (:func:`ship_model`, :func:`ship_evaluator`) follows the same
rule: a model travels as its format's payload (:meth:`~nascore.format.ExecutableModel.to_payload`)
and an evaluator as its spec (:meth:`~nascore.evaluator.Evaluator.to_spec`). Only when that is
impossible (a class defined in ``__main__`` or inside a function, a format that cannot ship) is the
object pickled with cloudpickle, in this one place, with no size limit; if even that fails, a
:class:`~nascore.errors.ShippingError` says what could not be shipped and how to fix it.
"""

from __future__ import annotations

import base64
import importlib
import json
import logging
from typing import TYPE_CHECKING, Any

from nascore.errors import ShippingError

if TYPE_CHECKING:
    from nascore.evaluator import Evaluator
    from nascore.format import ExecutableModel

__all__ = [
    "import_path",
    "resolve",
    "is_json_data",
    "object_spec",
    "build_from_spec",
    "ship_model",
    "load_shipped_model",
    "ship_evaluator",
    "load_shipped_evaluator",
    "pickle_shipment",
    "unpickle_shipment",
]

_log = logging.getLogger(__name__)

#: Shipments larger than this are logged (they are still shipped: there is no size limit).
LARGE_SHIPMENT = 64 * 2**20


def import_path(obj: Any) -> str | None:
    """``"module:qualname"`` if ``obj`` can be imported again by that name, else ``None``."""
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not module or not qualname or module == "__main__" or "<" in qualname:
        return None
    try:
        found = resolve(f"{module}:{qualname}")
    except ShippingError:
        return None
    return f"{module}:{qualname}" if found is obj or found == obj else None


def resolve(path: str) -> Any:
    """The object named by an import path ``"module:qualname"``."""
    module_name, _, qualname = path.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ShippingError(f"cannot import {path!r}: {exc}") from exc
    return target


def is_json_data(value: Any) -> bool:
    """Whether ``value`` survives a JSON round trip unchanged."""
    try:
        return json.loads(json.dumps(value)) == value
    except (TypeError, ValueError):
        return False


def object_spec(factory: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """``{"factory": path, "args": [...], "kwargs": {...}}``; raises :class:`ShippingError` saying why not."""
    path = import_path(factory)
    name = getattr(factory, "__qualname__", repr(factory))
    if path is None:
        raise ShippingError(
            f"{name} cannot be referred to by an import path (it is defined in __main__ or inside a function); "
            "move it to an importable module"
        )
    kwargs = dict(kwargs or {})
    if not is_json_data(list(args)) or not is_json_data(kwargs):
        raise ShippingError(f"the arguments of {name} are not plain JSON data (numbers, strings, lists, dicts)")
    return {"factory": path, "args": list(args), "kwargs": kwargs}


def build_from_spec(spec: dict[str, Any]) -> Any:
    """Call the factory of an :func:`object_spec` with its arguments."""
    return resolve(spec["factory"])(*spec.get("args", ()), **spec.get("kwargs", {}))


# --- shipping models and evaluators to worker processes ------------------------------------------


def pickle_shipment(obj: Any, what: str, reason: str) -> dict[str, Any]:
    """``{"kind": "cloudpickle", ...}``: ``obj`` pickled by value where needed; ``reason`` says why not data.

    Raises :class:`ShippingError` naming ``what`` when cloudpickle cannot pickle it either.
    """
    import cloudpickle

    try:
        data = cloudpickle.dumps(obj)
    except Exception as exc:  # cloudpickle raises whatever the object's reducers raise
        raise ShippingError(
            f"cannot ship {what} to a worker process: it cannot travel as data ({reason}), and pickling it "
            f"with cloudpickle failed too ({type(exc).__name__}: {exc}). Define it in an importable module "
            "with JSON arguments, or drop what cannot be pickled (open files, locks, sockets, generators) "
            "from it; the 'sequential' engine runs trials in-process and needs no shipping"
        ) from exc
    if len(data) > LARGE_SHIPMENT:
        _log.info("Shipping %s takes %.1f MB (cloudpickle: %s)", what, len(data) / 2**20, reason)
    return {"kind": "cloudpickle", "what": what, "reason": reason, "data": base64.b64encode(data).decode("ascii")}


def unpickle_shipment(shipment: dict[str, Any]) -> Any:
    """The object of a :func:`pickle_shipment`."""
    import cloudpickle

    try:
        return cloudpickle.loads(base64.b64decode(shipment["data"]))
    except Exception as exc:
        raise ShippingError(
            f"cannot load the shipped {shipment.get('what', 'object')} (cloudpickle): {type(exc).__name__}: {exc}. "
            "The worker must be able to import every module it refers to: check that the code and its "
            "dependencies are installed for the worker's Python"
        ) from exc


def ship_model(model: ExecutableModel) -> dict[str, Any]:
    """``model`` as data to rebuild in another process: its format payload, else a cloudpickle.

    The payload is used when :meth:`~nascore.format.ExecutableModel.to_payload` works and names a
    registered format; otherwise the model is pickled (e.g. a space class defined in ``__main__``).
    A :class:`~nascore.group.ModelGroup` ships as its members' shipments, trial ids, seeds and settings.
    """
    from nascore.group import ModelGroup
    from nascore.plugin import get_plugins

    if isinstance(model, ModelGroup):  # no format of its own: each member travels as its own shipment
        if not is_json_data(model.settings):
            raise ShippingError(f"the settings of {model!r} are not plain JSON data: {model.settings!r}")
        shipment = {"kind": "group", "members": [ship_model(member) for member in model.members[:]],
                    "trial_ids": list(model.trial_ids), "seeds": list(model.seeds), "settings": dict(model.settings)}
        if model.combined is not None:
            shipment["combined"] = ship_model(model.combined)
        return shipment
    what = f"the model {model.sample!r}"
    try:
        payload = model.to_payload()
    except (ShippingError, NotImplementedError) as exc:
        return pickle_shipment(model, what, str(exc))
    name = payload.get("format") if isinstance(payload, dict) else None
    if not isinstance(name, str) or name not in get_plugins().formats:
        return pickle_shipment(model, what, f"its payload names no registered format ({name!r})")
    if not is_json_data(payload):
        return pickle_shipment(model, what, f"the {name!r} payload is not plain JSON data")
    return {"kind": "payload", "payload": payload}


def load_shipped_model(shipment: dict[str, Any]) -> ExecutableModel:
    """The executable model of a :func:`ship_model` shipment (in the worker process)."""
    from nascore.plugin import load_model

    if shipment.get("kind") == "cloudpickle":
        return unpickle_shipment(shipment)
    if shipment.get("kind") == "group":
        from nascore.group import ModelGroup

        try:
            members = [load_shipped_model(member) for member in shipment["members"]]
            combined = load_shipped_model(shipment["combined"]) if shipment.get("combined") else None
            return ModelGroup(members, shipment["trial_ids"], shipment.get("seeds"), shipment.get("settings"), combined)
        except (KeyError, TypeError, ValueError) as exc:
            raise ShippingError(f"a shipped model group is malformed ({type(exc).__name__}: {exc})") from None
    return load_model(shipment["payload"])


def ship_evaluator(evaluator: Evaluator) -> dict[str, Any]:
    """``evaluator`` as data: its :meth:`~nascore.evaluator.Evaluator.to_spec`, else a cloudpickle."""
    what = f"the evaluator {evaluator!r}"
    try:
        spec = evaluator.to_spec()
    except (ShippingError, NotImplementedError) as exc:
        spec, reason = None, str(exc)
    else:
        reason = "its to_spec() returned None (e.g. a function defined in __main__, a lambda, or non-JSON arguments)"
    if spec is not None and is_json_data(spec):
        return {"kind": "spec", "spec": spec}
    return pickle_shipment(evaluator, what, reason)


def load_shipped_evaluator(shipment: dict[str, Any]) -> Evaluator:
    """The evaluator of a :func:`ship_evaluator` shipment (in the worker process)."""
    if shipment.get("kind") == "cloudpickle":
        return unpickle_shipment(shipment)
    return build_from_spec(shipment["spec"])
