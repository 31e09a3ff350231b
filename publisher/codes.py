"""Problem codes: the stable rule id of every `Problem` and guard-rail `Violation`.

A code is printed in brackets after each problem (`... [host-bits]`); tests,
scripts and people key on it, so a value never changes once released. These are
rule ids, not DNS return codes (127.0.0.X), which live in `addresses`.
"""

from __future__ import annotations

# --- reading files ---------------------------------------------------------------------

#: A file could not be read (permissions, a FIFO, a vanished file).
READ_ERROR = "read-error"
#: The file is not UTF-8 (latin-1 bytes, UTF-16).
NOT_UTF8 = "not-utf8"
#: YAML the parser refuses, or a document that may not be expanded (too deep, alias bomb).
YAML_SYNTAX = "yaml-syntax"
#: A mapping key that is a list or mapping.
BAD_KEY = "bad-key"
#: The same key twice in one mapping (YAML would keep the last silently).
DUPLICATE_KEY = "duplicate-key"
#: The document (or the part of it) is not the mapping the schema wants.
NOT_A_MAPPING = "not-a-mapping"

# --- shape (the JSON schemas) ----------------------------------------------------------

#: A key the schema does not know (often a typo).
UNKNOWN_KEY = "unknown-key"
#: A required key is missing.
MISSING_KEY = "missing-key"
#: A value of the wrong type (text where a number belongs, ...).
WRONG_TYPE = "wrong-type"
#: A value outside what the schema allows (enum, bounds, empty, pattern); also a bulk `:A:TXT` that is not one.
BAD_VALUE = "bad-value"
#: A text or list longer than the schema allows.
TOO_LONG = "too-long"
#: Any other schema violation, with jsonschema's own message.
SCHEMA = "schema"

# --- zones.yaml ------------------------------------------------------------------------

#: There is no zones.yaml in the lists folder.
MISSING_CONFIG = "missing-config"
#: Two zones with one name.
DUPLICATE_ZONE = "duplicate-zone"
#: A TXT template with an unknown placeholder or an unmatched brace.
BAD_TEMPLATE = "bad-template"
#: A TXT (template, reason or bulk text) longer than model.MAX_TXT_BYTES once the longest
#: queried address or name fills its `$` / {ip} / {domain}.
TXT_TOO_LONG = "txt-too-long"
#: A source glob that leaves the lists folder.
BAD_GLOB = "bad-glob"
#: A zone name, SOA name or name-server name that is not a host name (or is a wildcard).
BAD_NAME = "bad-name"
#: A `listen` entry that is not ADDRESS:PORT.
BAD_LISTEN = "bad-listen"
#: `protect` on a zone that cannot have it, or naming a zone that cannot be protected.
BAD_PROTECT = "bad-protect"
#: An `acl` rule that cannot be used: neither or both of `networks` and `file`, `code` or `txt`
#: with an action other than `answer`, a code outside 127.255.255.0/24, a `file` outside lists/.
BAD_ACL = "bad-acl"
#: An `acl` rule's `file` that is not in the lists folder.
ACL_FILE_MISSING = "acl-file-missing"
#: An `acl` rule's `file` that a zone's `sources` or `excludes` glob also matches (its networks
#: would be published as listings).
ACL_FILE_IS_SOURCE = "acl-file-is-source"
#: One network twice in one ACL with different actions (which one would win is not written down).
ACL_CONFLICT = "acl-conflict"
#: One network twice in one ACL with the same action (a warning: the second changes nothing).
ACL_DUPLICATE = "acl-duplicate"
#: A zone's `web: requests` file that confirmed requests could not edit: outside lists/; in a block
#: zone not one of its `excludes` files; in an allow zone not one of its `sources`, or an excludes file.
BAD_REQUESTS_FILE = "bad-requests-file"

# --- partners declared by SPF (publisher refresh-spf) ------------------------------------

#: A zone's `spf:` that cannot work: on a block or domain zone, a `dir` outside lists/ or
#: not read by the zone's sources, a bad duration, provider name or code.
BAD_SPF_SETTINGS = "bad-spf-settings"
#: A zone's `email:` that cannot work (on a zone not of kind email, a bad suffix, alias or
#: domain list), or a setting an email zone cannot have (`protect`, `spf:`, request files).
BAD_EMAIL_SETTINGS = "bad-email-settings"
#: A `- spf: DOMAIN` entry where partners cannot be declared (a block or domain zone, an allow
#: zone without `spf:` settings, an excludes file), or with a bad domain or filter.
BAD_PARTNER = "bad-partner"
#: The same partner declared twice in one zone.
DUPLICATE_PARTNER = "duplicate-partner"
#: A generated file whose entries no longer match the digest refresh-spf wrote: edited by hand.
GENERATED_EDITED = "generated-edited"
#: A `generated:` header outside the zone's spf folder, a file in that folder without one, or
#: one whose partner is not its file name.
GENERATED_MISPLACED = "generated-misplaced"
#: (warning) A generated file of a partner the zone no longer declares: refresh-spf removes it.
GENERATED_UNDECLARED = "generated-undeclared"
#: (warning) A declared partner without its generated file yet: run `publisher refresh-spf`.
SPF_NOT_REFRESHED = "spf-not-refreshed"
#: One TSIG key named twice in a zone's `allow_transfer`.
DUPLICATE_TRANSFER_KEY = "duplicate-transfer-key"
#: A source glob that matches no file.
GLOB_NO_MATCH = "glob-no-match"
#: A list file no zone's sources match (a warning: it is not published).
UNUSED_FILE = "unused-file"

# --- one entry -------------------------------------------------------------------------

#: A malformed address, prefix or range.
BAD_ADDRESS = "bad-address"
#: A prefix with bits set below its length (192.0.2.7/24).
HOST_BITS = "host-bits"
#: A malformed domain name.
BAD_DOMAIN = "bad-domain"
#: An email address an email zone cannot list: not RFC 5321 (a quoted or non-ASCII local part,
#: an address literal, no domain, too long).
BAD_EMAIL = "bad-email"
#: An email address in a reason or bulk text of an email zone: it would go into TXT answers in plain text (a warning).
ADDRESS_IN_TEXT = "address-in-text"
#: A ready hash of another algorithm or length than the email zone's (40 hex digits in an md5 zone).
BAD_HASH = "bad-hash"
#: A return code that is malformed or not allowed (outside 127.0.0.0/8, 127.0.0.1, 127.255.255.x).
BAD_CODE = "bad-code"
#: An `expires` or `added` that is not a date.
BAD_DATE = "bad-date"
#: An address in a domain zone, or a domain in an ip zone.
WRONG_FAMILY = "wrong-family"
#: An allowlist entry without an `owner`.
MISSING_OWNER = "missing-owner"
#: A list file that is neither curated (.yaml) nor bulk (.txt).
UNKNOWN_FORMAT = "unknown-format"
#: An IPv4-mapped IPv6 entry (::ffff:a.b.c.d): those names answer from the IPv4 entries.
V4_MAPPED = "v4-mapped"
#: An entry that lists the RFC 5782 test point that must never be listed (127.0.0.1, `invalid`).
LISTS_TEST_POINT = "lists-test-point"
#: An exclusion that would delist the RFC 5782 test point that is always listed (127.0.0.2, `test`).
DELISTS_TEST_POINT = "delists-test-point"
#: A prefix broader than the zone's max_prefix, without `allow_broad`.
BROAD_PREFIX = "broad-prefix"
#: A wildcard on a public suffix or above (`.com`, `*.co.uk`, `*.github.io`), or a single-label
#: name (`localhost`), without `allow_broad`: the domain counterpart of broad-prefix.
BROAD_DOMAIN = "broad-domain"
#: A domain that IDNA 2008 (UTS 46) maps to another name than the one written, beyond letter
#: case (fullwidth letters, `。`, a soft hyphen); a warning with `allow_confusable`.
CONFUSABLE_DOMAIN = "confusable-domain"
#: `allow_broad: true` or `allow_confusable: true` without a `reason` saying why.
MISSING_REASON = "missing-reason"

# --- bulk files ------------------------------------------------------------------------

#: A bulk file of 0 bytes (a failed download?).
EMPTY_FILE = "empty-file"
#: An rbldnsd special line ($SOA, $NS, $TTL, ...) that zones.yaml overrides (a warning).
BULK_SPECIAL = "bulk-special"
#: An rbldnsd feature the publisher does not support ($DATASET).
BULK_UNSUPPORTED = "bulk-unsupported"
#: A line longer than any entry needs.
LINE_TOO_LONG = "line-too-long"
#: A control character on a line (a binary or UTF-16 file?).
CONTROL_CHARACTER = "control-character"
#: Bad lines past the per-file limit, counted in one problem.
TOO_MANY_PROBLEMS = "too-many-problems"
#: Repeated and overlapping entries in a feed, one warning per file.
BULK_REPEATS = "bulk-repeats"

# --- across entries and files ----------------------------------------------------------

#: An entry listed (or excluded) twice in the curated files of a zone.
DUPLICATE = "duplicate"
#: One entry both listed and excluded in one file.
CONFLICT = "conflict"
#: An entry whose `expires` has passed (a warning: it is no longer published).
EXPIRED = "expired"
#: An exclusion inside no listing of its file (a warning: it changes nothing).
USELESS_EXCLUSION = "useless-exclusion"
#: A zone without entries; a guard rail at publish (`--force` may override it).
EMPTY_ZONE = "empty-zone"
#: A blocklist entry covering an address of a protected allowlist; a guard rail at publish.
COVERS_PROTECTED = "covers-protected"

# --- guard rails at publish (Violation.rule; COVERS_PROTECTED is one too) ---------------

#: A zone would lose more than its max_removed_share.
SHRINK = "shrink"
#: A zone would grow by more than its max_growth_factor.
GROWTH = "growth"
#: A zone would become empty (only the RFC 5782 test points), or has no entries (EMPTY_ZONE).
EMPTY = "empty"
#: A published zone is no longer in zones.yaml.
DROPPED = "dropped"
#: Entries removed from an allowlist: the addresses they protected lose their protection.
ALLOWLIST_REMOVAL = "allowlist-removal"

# --- import of rbldnsd data files ------------------------------------------------------

#: The dataset type was guessed from the data (a note).
IMPORT_GUESSED_TYPE = "import-guessed-type"
#: A dataset type or output file kind the importer cannot handle.
IMPORT_UNSUPPORTED = "import-unsupported"
#: Lines (or a dataset serving no subzone) not imported, that rbldnsd ignores too (a warning).
IMPORT_SKIPPED = "import-skipped"
#: Something rbldnsd serves that the imported lists cannot say (an error).
IMPORT_LOST = "import-lost"
#: A zone of which nothing is listed; no files written.
IMPORT_EMPTY = "import-empty"
#: A written file does not validate, or the imported lists answer differently from rbldnsd.
IMPORT_DIFFERS = "import-differs"
#: A wildcard's TXT with `$`: rbldnsd puts the wildcard's name there, the publisher the queried one.
IMPORT_WILDCARD_TXT = "import-wildcard-txt"
#: An rbldnsd special line ($SOA, $TTL, $TIMESTAMP, ...) not kept in the list file.
IMPORT_SPECIAL = "import-special"
#: Imported allowlist entries get the owner `unknown`; set the real one.
IMPORT_OWNER = "import-owner"
#: rbldnsd answers the RFC 5782 test point differently from the publisher.
IMPORT_TEST_POINT = "import-test-point"
#: IPv6 ranges over ::ffff:0:0/96, whose names the publisher answers from the IPv4 entries.
IMPORT_V4_MAPPED = "import-v4-mapped"

# --- files of another format read as rbldnsd syntax ------------------------------------

#: A bulk line that looks like a column file's (`start<TAB>end<TAB>...`): its first column is listed alone.
COLUMN_FILE = "column-file"
#: A bulk line that looks like a hosts file's (`0.0.0.0 name`): refused, with how to convert the file.
HOSTS_FILE = "hosts-file"
