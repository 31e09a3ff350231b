"""Reading manifest.json's fields with messages that name them, and the serving settings' JSON.

Split from manifest.py (the typed manifest): the field readers raise `_Malformed` naming the
field (`zones.bl.example.test.acl[2].action: expected a string, got 5`), which manifest.py turns
into an ArtifactError naming the file; the codecs write and read a zone's serving settings
(the client ACL, subscriber transfer keys, secondaries) as the manifest holds them. Like
manifest.py it imports only the shared top modules, for the server's sake.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TypeVar, cast

from publisher.addresses import AddressError, format_v4, parse_v4
from publisher.model import ACL_ACTIONS, AclRule, Secondary, TransferKey, ZonePage

_T = TypeVar("_T")


class _Malformed(ValueError):
    """A manifest field that is missing or of the wrong type; the message names the field."""


_TYPE_NAMES: dict[type, str] = {str: "a string", int: "an integer", bool: "true or false", dict: "an object"}


def _at(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _shown(value: object) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check(value: object, kind: type[_T], where: str) -> _T:
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    raise _Malformed(f"{where}: expected {_TYPE_NAMES[kind]}, got {_shown(value)}")


def _object(value: object, where: str) -> dict[str, object]:
    return cast(dict[str, object], _check(value, dict, where or "the manifest"))


def _field(obj: Mapping[str, object], key: str, kind: type[_T], where: str) -> _T:
    if key not in obj:
        raise _Malformed(f"{where + ': ' if where else ''}`{key}` is missing")
    return _check(obj[key], kind, _at(where, key))


def _optional(obj: Mapping[str, object], key: str, kind: type[_T], where: str) -> _T | None:
    value = obj.get(key)
    return None if value is None else _check(value, kind, _at(where, key))


def _list(obj: Mapping[str, object], key: str, where: str) -> list[object] | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, list):
        return value
    raise _Malformed(f"{_at(where, key)}: expected a list, got {_shown(value)}")


def _objects(obj: Mapping[str, object], key: str, where: str) -> list[tuple[str, dict[str, object]]] | None:
    """An optional list of objects, each with where it is (`zones.x.acl[2]`) for messages."""
    items = _list(obj, key, where)
    if items is None:
        return None
    return [(at, _object(item, at)) for at, item in ((f"{_at(where, key)}[{i}]", v) for i, v in enumerate(items))]


def _strings(obj: Mapping[str, object], key: str, where: str) -> tuple[str, ...] | None:
    """An optional list of strings."""
    items = _list(obj, key, where)
    if items is None:
        return None
    return tuple(_check(item, str, f"{_at(where, key)}[{i}]") for i, item in enumerate(items))


def acl_json(rules: Iterable[AclRule]) -> list[dict[str, object]]:
    """An ACL as the manifest holds it (rule locations stay in zones.yaml)."""
    out: list[dict[str, object]] = []
    for rule in rules:
        item: dict[str, object] = {"network": rule.network, "action": rule.action}
        if rule.action == "answer":
            item.update(code=format_v4(rule.code), txt=rule.txt)
        out.append(item)
    return out


def _acl(obj: Mapping[str, object], where: str) -> tuple[AclRule, ...] | None:
    rules = _objects(obj, "acl", where)
    if rules is None:
        return None
    out = []
    for at, rule in rules:
        action = _field(rule, "action", str, at)
        if action not in ACL_ACTIONS:
            raise _Malformed(f"{at}.action: expected one of {', '.join(ACL_ACTIONS)}, got {_shown(action)}")
        code, txt = 0, ""
        if action == "answer":
            try:
                code = parse_v4(_field(rule, "code", str, at))
            except AddressError as exc:
                raise _Malformed(f"{at}.code: {exc.message}") from None
            txt = _field(rule, "txt", str, at)
        out.append(AclRule(_field(rule, "network", str, at), action, code, txt))
    return tuple(out)


def web_json(page: ZonePage) -> dict[str, object]:
    """A zone's `web:` as the manifest holds it (what `publisher web` shows of the published zone)."""
    return {
        "public": list(page.public),
        "policy": page.policy,
        "codes": {format_v4(code): text for code, text in page.codes},
        "requests": page.requests,
    }


def _web(obj: Mapping[str, object], where: str) -> ZonePage | None:
    raw = obj.get("web")
    if raw is None:
        return None
    at = _at(where, "web")
    page = _object(raw, at)
    meanings = []
    for text, meaning in _object(page.get("codes", {}), _at(at, "codes")).items():
        try:
            meanings.append((parse_v4(text), _check(meaning, str, _at(at, f"codes.{text}"))))
        except AddressError as exc:
            raise _Malformed(f"{at}.codes: {exc.message}") from None
    return ZonePage(
        public=_strings(page, "public", at) or (),
        policy=_optional(page, "policy", str, at) or "",
        codes=tuple(sorted(meanings)),
        requests=_optional(page, "requests", str, at),
    )


def transfer_keys_json(keys: Iterable[TransferKey]) -> list[dict[str, object]]:
    return [{"key": k.key, "networks": list(k.networks)} for k in keys]


def _transfer_keys(obj: Mapping[str, object], where: str) -> tuple[TransferKey, ...] | None:
    keys = _objects(obj, "transfer_keys", where)
    if keys is None:
        return None
    return tuple(TransferKey(_field(key, "key", str, at), _strings(key, "networks", at) or ()) for at, key in keys)


def _secondary_json(sec: Secondary) -> dict[str, object]:
    return {"address": sec.address, "port": sec.port, "notify": sec.notify, "tsig_key": sec.tsig_key}


def _secondaries(obj: Mapping[str, object], where: str) -> tuple[Secondary, ...] | None:
    secondaries = _objects(obj, "secondaries", where)
    if secondaries is None:
        return None
    out = []
    for at, sec in secondaries:
        port, notify = _optional(sec, "port", int, at), _optional(sec, "notify", bool, at)
        out.append(
            Secondary(
                address=_field(sec, "address", str, at),
                port=53 if port is None else port,
                notify=True if notify is None else notify,
                tsig_key=_optional(sec, "tsig_key", str, at),
            )
        )
    return tuple(out)
