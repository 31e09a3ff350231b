"""zones.yaml `acl` rules -> one model.AclRule per network, every problem located.

A rule names its client networks inline (`networks: [...]`) or in a file under lists/
(`file: acl/open-resolvers.txt`: one network or address per line, `#` comments, blank
lines), and an action; `answer` alone takes a `code` (in 127.255.255.0/24: anything else
reads as a listing to a mail server and makes it reject mail) and a `txt` whose only
placeholder is {client}. Within one ACL a network may appear once (twice with another
action is an error naming both places; with the same action, a warning). The semantics
the server gives the rules are in docs/design.md, "Who may query".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from publisher import codes, errorcodes
from publisher.addresses import AddressError, Network, format_v4, parse_network, parse_v4, unmapped_network
from publisher.errors import Location, Problem, Severity
from publisher.lists.schema import did_you_mean
from publisher.lists.tree import Tree, TreeError
from publisher.lists.txt_limit import placeholder_problem
from publisher.lists.yamlmarks import Marks, Path, decode_text
from publisher.model import MAX_TXT_BYTES, SUBST, AclRule, glob_matches, longest_txt

#: Bytes of the longest client address that can stand for {client} (an IPv6 address).
CLIENT_BYTES = 39
#: Bad lines reported per ACL file; the rest are counted in one problem.
MAX_FILE_PROBLEMS = 20
_NETWORK_FIX = "write one IPv4 or IPv6 network (192.0.2.0/24, 2001:db8::/32) or address per line; '#' starts a comment"


def txt_problem(txt: str) -> str | None:
    """Why an ACL answer's TXT cannot be used, or None: {client} is its only placeholder."""
    return placeholder_problem(txt, ("client",), "an ACL answer")


def longest_acl_txt(txt: str) -> int:
    """Bytes of an ACL answer's TXT once the longest client address fills each {client}."""
    return longest_txt(txt.replace("{client}", SUBST), CLIENT_BYTES)


class AclReader:
    """Reads the `acl` lists of one zones.yaml; problems go to the list it is given."""

    def __init__(self, tree: Tree, marks: Marks, problems: list[Problem]) -> None:
        self.tree = tree
        self.marks = marks
        self.problems = problems
        self._files: set[str] | None = None
        self._read: dict[str, list[tuple[Network, Location]]] = {}
        self._done: dict[Path, tuple[AclRule, ...]] = {}
        #: Each ACL file read, and where in zones.yaml it was first named.
        self.file_at: dict[str, Path] = {}

    def _error(
        self, location: Location, code: str, message: str, fix: str | None, related: Sequence[tuple[str, Location]] = ()
    ) -> None:
        self.problems.append(Problem(location, code, message, fix, tuple(related)))

    def _files_in_tree(self) -> set[str]:
        if self._files is None:
            self._files = set(self.tree.files())
        return self._files

    def rules(self, where: Path, raw: list[dict[str, Any]] | None) -> tuple[AclRule, ...]:
        """The ACL written at `where` (a schema-valid list of rules), one AclRule per network.

        An ACL inherited from `defaults` is read once, however many zones take it."""
        if where in self._done:
            return self._done[where]
        out: list[AclRule] = []
        seen: dict[str, AclRule] = {}  # by the network's normalised text
        for i, item in enumerate(raw or []):
            for rule in self._rule((*where, i), item):
                first = seen.get(rule.network)
                if first is None:
                    seen[rule.network] = rule
                    out.append(rule)
                elif (first.action, first.code, first.txt) != (rule.action, rule.code, rule.txt):
                    self._error(
                        rule.location,
                        codes.ACL_CONFLICT,
                        f"{rule.network} is in this ACL twice: action {rule.shown} here, "
                        f"{first.shown} in the rule first at {first.location}",
                        "keep the network in one rule only; a narrower network in another rule is fine "
                        "(the most specific one wins)",
                        (("first at", first.location),),
                    )
                else:
                    self.problems.append(
                        Problem(
                            rule.location,
                            codes.ACL_DUPLICATE,
                            f"{rule.network} is in this ACL twice (action {rule.action} both times)",
                            "remove one of the two",
                            (("first at", first.location),),
                            severity=Severity.WARNING,
                        )
                    )
        self._done[where] = tuple(out)
        return self._done[where]

    def _rule(self, at: Path, item: dict[str, Any]) -> list[AclRule]:
        action = item["action"]
        where = self.marks.location(at)
        if ("networks" in item) == ("file" in item):
            both = "networks" in item
            self._error(
                where,
                codes.BAD_ACL,
                "this acl rule has both `networks` and `file`" if both else "this acl rule names no clients",
                "give either `networks: [...]` or `file: PATH` (a file under lists/), one per rule",
            )
            return []
        code, txt = 0, ""
        if action == "answer":
            code = self._code(at, item.get("code"))
            txt = self._txt(at, item.get("txt"), code)
        else:
            for extra in ("code", "txt"):
                if extra in item:
                    self._error(
                        self.marks.location((*at, extra), key=True),
                        codes.BAD_ACL,
                        f"`{extra}` is only for `action: answer`; this rule's action is {action}",
                        f"remove `{extra}`, or make the action `answer`",
                    )
        if "networks" in item:
            networks: list[tuple[Network, Location]] = []
            for j, text in enumerate(item["networks"]):
                loc = self.marks.location((*at, "networks", j))
                net = self._network(loc, text)
                if net is not None:
                    networks.append((net, loc))
        else:
            networks = self._file((*at, "file"), str(item["file"]))
        return [AclRule(str(net), action, code, txt, loc) for net, loc in networks]

    def _code(self, at: Path, text: object) -> int:
        default = errorcodes.ACL_ANSWER.code
        if text is None:
            return default
        where = self.marks.location((*at, "code"))
        fix = f"use an error code of 127.255.255.0/24 (README, Error answers), like {format_v4(default)}"
        try:
            code = parse_v4(str(text).strip())
        except AddressError as exc:
            self._error(where, codes.BAD_CODE, f"acl `code` {exc.message}", fix)
            return default
        if not errorcodes.is_error_code(code):
            self._error(
                where,
                codes.BAD_CODE,
                f"acl `code` {text} is not in 127.255.255.0/24: a mail server reads it as a listing and rejects mail",
                fix,
            )
        return code

    def _txt(self, at: Path, text: object, code: int) -> str:
        if text is None:
            return errorcodes.BY_CODE.get(code, errorcodes.ACL_ANSWER).txt
        txt, where = str(text), self.marks.location((*at, "txt"))
        why = txt_problem(txt)
        if why:
            self._error(where, codes.BAD_TEMPLATE, f"the acl TXT {txt!r} {why}", "use only the placeholder {client}")
        elif longest_acl_txt(txt) > MAX_TXT_BYTES:
            self._error(
                where,
                codes.TXT_TOO_LONG,
                f"the acl TXT is {longest_acl_txt(txt)} bytes with the longest client address in each {{client}}, "
                f"over the {MAX_TXT_BYTES} bytes a TXT may hold",
                "shorten the text",
            )
        return txt

    def _network(self, where: Location, text: str) -> Network | None:
        got = parse_acl_network(where, text)
        if isinstance(got, Problem):
            self.problems.append(got)
            return None
        return got

    def _file(self, at: Path, path: str) -> list[tuple[Network, Location]]:
        where = self.marks.location(at)
        if path.startswith("/") or ".." in path.split("/"):
            self._error(
                where,
                codes.BAD_ACL,
                f"acl file '{path}' must stay inside lists/",
                "write it relative to lists/, like acl/open-resolvers.txt",
            )
            return []
        if path in self._read:
            return self._read[path]
        out: list[tuple[Network, Location]] = []
        self._read[path] = out
        files = self._files_in_tree()
        if path not in files:
            guess = did_you_mean(path, sorted(files))
            self._error(
                where,
                codes.ACL_FILE_MISSING,
                f"acl file '{path}' is not in the lists folder",
                (f"did you mean {guess}? Or create" if guess else "create")
                + f" lists/{path}: one network or address per line",
            )
            return out
        self.file_at[path] = at
        try:
            text, problem = decode_text(path, self.tree.read(path))
        except TreeError as exc:
            self._error(where, codes.READ_ERROR, str(exc), "check the file and its permissions")
            return out
        if problem is not None or text is None:
            self.problems.extend([problem] if problem is not None else [])
            return out
        bad = 0
        for number, line in enumerate(text.splitlines(), 1):
            body = line.split("#", 1)[0]
            token = body.strip()
            if not token:
                continue
            loc = Location(path, number, len(body) - len(body.lstrip()) + 1)
            if len(token.split()) > 1:
                got: Network | Problem = Problem(loc, codes.BAD_ADDRESS, f"'{token}' is not one network", _NETWORK_FIX)
            else:
                got = parse_acl_network(loc, token)
            if isinstance(got, Problem):
                bad += 1
                if bad <= MAX_FILE_PROBLEMS:
                    self.problems.append(got)
            else:
                out.append((got, loc))
        if bad > MAX_FILE_PROBLEMS:
            self._error(
                Location(path),
                codes.TOO_MANY_PROBLEMS,
                f"{bad - MAX_FILE_PROBLEMS} more bad lines in {path} (the first {MAX_FILE_PROBLEMS} are shown)",
                "is it the right file? An ACL file holds networks only",
            )
        return out

    def check_sources(self, zones: Iterable[tuple[str, Iterable[str], Iterable[str]]]) -> None:
        """An ACL file that a zone's `sources` or `excludes` (zone name, globs, globs) matches
        would be published as listings: an error at the `file:` naming it."""
        zones = list(zones)
        for path, at in self.file_at.items():
            for name, sources, excludes in zones:
                globs = [("sources", p) for p in sources] + [("excludes", p) for p in excludes]
                hit = next(((what, p) for what, p in globs if glob_matches(p, path)), None)
                if hit is not None:
                    self._error(
                        self.marks.location(at),
                        codes.ACL_FILE_IS_SOURCE,
                        f"acl file '{path}' is also matched by the {hit[0]} glob '{hit[1]}' of {name}: "
                        "its networks would be published as listings",
                        "keep ACL files out of every zone's globs (e.g. in lists/acl/), or narrow the glob",
                    )
                    break


def parse_acl_network(where: Location, text: str) -> Network | Problem:
    """One network of an ACL, or the problem with it (located at `where`)."""
    try:
        net = parse_network(text)
    except AddressError as exc:
        return Problem(where, exc.code, exc.message, exc.fix or _NETWORK_FIX)  # BAD_ADDRESS or HOST_BITS
    if unmapped_network(net).family != net.family:
        return Problem(
            where,
            codes.V4_MAPPED,
            f"'{text}' is an IPv4-mapped network: the server sees such a client as its IPv4 address, "
            "so this rule never matches",
            "write the IPv4 network instead",
        )
    return net
