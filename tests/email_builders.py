"""Email zones built by hand, as the curated reader and the compiler give them: SourceData rows
named `<label>[.<suffix>]` (emails.address_name) whose EntryMeta keeps the address as written,
and a CompiledZone whose dom_exact maps those names (and the test point) to answers."""

from __future__ import annotations

from publisher.compile.zone import Answer, CompiledZone, ZoneInfo
from publisher.emails import EmailSettings, address_name
from publisher.model import EntryMeta, Soa, SourceData, Value, ZoneConfig, render_txt

ZONE = "hbl.example.test"
CODE = 0x7F000002
TXT = "Listed in {zone}: {reason}"


def email_config(name: str = ZONE, settings: EmailSettings | None = None, role: str = "block") -> ZoneConfig:
    return ZoneConfig(
        name,
        "email",
        role,  # type: ignore[arg-type]
        ("hbl/*.yaml",),
        CODE,
        TXT,
        email=settings or EmailSettings(suffix="_email"),
    )


def email_source(
    path: str, entries: list[tuple[int, str, str]], settings: EmailSettings, *, curated: bool = True
) -> SourceData:
    """(line, address as written, reason) per entry."""
    src = SourceData(path)
    for line, text, reason in entries:
        value = src.add_value(Value(CODE, reason))
        _, name = address_name(text, settings)
        src.add_domain(name, False, value, line)
        if curated:
            src.entries[line] = EntryMeta(line=line, col=5, text=text, value=value)
    return src


def email_zone(cfg: ZoneConfig, sources: list[SourceData], serial: int = 1) -> CompiledZone:
    """The compiled zone: the first source listing a name decides it; the test point listed."""
    assert cfg.email is not None
    answers: list[Answer] = []
    exact: dict[str, int] = {}

    def answer(reason: str) -> int:
        answers.append(Answer((cfg.code,), (render_txt(cfg.txt, code=cfg.code, reason=reason, zone=cfg.name),)))
        return len(answers) - 1

    exact[cfg.email.name_of("test")] = answer("RFC 5782 test point")
    for src in sources:
        for row in src.rows(0):
            exact.setdefault(row.name, answer(src.values[row.value].reason))
    info = ZoneInfo(cfg.name, "email", cfg.role, 2100, Soa("ns1.example.test", "hostmaster.example.test"), (), serial)
    labels = cfg.email.suffix.split(".") if cfg.email.suffix else []
    ents = frozenset(".".join(labels[i:]) for i in range(len(labels)))  # `a.b`: a.b and b
    return CompiledZone(info, tuple(answers), dom_exact=exact, dom_ents=ents)
