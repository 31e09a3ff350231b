"""How long a TXT can get once the queried address or name is filled in, and the limit.

A TXT is the zone's template (zones.yaml `txt`) with `{reason}` filled by an entry's
reason or a bulk file's text, whose `$` (stored as model.SUBST), like `{ip}` and
`{domain}`, becomes the queried address or name at answer time. Its longest form
fills every hole with the longest such text (`model.longest_subject`): 43 bytes in
an ip zone, up to 252 minus the zone name's length in a domain zone. Validation
refuses a text whose longest form exceeds `model.MAX_TXT_BYTES` (README, Security),
so no record can outgrow a DNS message or break a zone transfer.

The template is filled by `model.render_txt`, the compiler's own reading of it.
"""

from __future__ import annotations

from publisher.lists.schema import did_you_mean
from publisher.model import MAX_TXT_BYTES, SUBST, ZoneConfig, longest_subject, longest_txt, render_txt

__all__ = ["FIX", "placeholder_problem", "template_excess", "reason_excess"]

FIX = (
    f"shorten the text, or use `$` / {{ip}} / {{domain}} less often: a TXT may hold at most {MAX_TXT_BYTES} "
    "bytes once the longest queried address or name is filled in (README, Security)"
)


def placeholder_problem(txt: str, allowed: tuple[str, ...], what: str) -> str | None:
    """Why the `{name}` placeholders of a TXT template cannot be read, or None: a stray brace, or a
    name not in `allowed` (with a did-you-mean); `what` names the template ("a domain zone")."""
    rest = txt
    while rest:
        start, stray = rest.find("{"), rest.find("}")
        if stray >= 0 and (start < 0 or stray < start):
            return "has a '}' without a matching '{'"
        if start < 0:
            return None
        end = rest.find("}", start + 1)
        if end < 0:
            return "has a '{' without a matching '}'"
        key = rest[start + 1 : end]
        if key not in allowed:
            guess = did_you_mean(key, allowed)
            hint = f" (did you mean {{{guess}}}?)" if guess else ""
            known = ("only " if len(allowed) == 1 else "") + ", ".join(f"{{{a}}}" for a in allowed)
            return f"has an unknown placeholder {{{key}}}{hint}; {what} knows {known}"
        rest = rest[end + 1 :]
    return None


def _excess(zone: ZoneConfig, code: int, reason: str) -> str | None:
    text = render_txt(zone.txt, code=code, reason=reason, zone=zone.name)
    subject = longest_subject(zone.kind, zone.name)
    size = longest_txt(text, subject)
    if size <= MAX_TXT_BYTES:
        return None
    holes = text.count(SUBST)
    what = "address" if zone.kind == "ip" else "name"
    detail = f"{holes:,} place(s) for the queried {what}, up to {subject} bytes each" if holes else "no `$` in it"
    return f"can give a TXT of {size:,} bytes in {zone.name} ({detail}); the limit is {MAX_TXT_BYTES} bytes"


def template_excess(zone: ZoneConfig) -> str | None:
    """Why the zone's template alone (an empty reason) is too long, or None."""
    return _excess(zone, zone.code, "")


def reason_excess(zone: ZoneConfig, code: int, reason: str) -> str | None:
    """Why this reason through the zone's template is too long, or None.

    None as well when the template alone is too long: zones.yaml gets that problem, once.
    """
    if template_excess(zone) is not None:
        return None
    return _excess(zone, code, reason)
