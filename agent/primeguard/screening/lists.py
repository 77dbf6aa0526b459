"""Reading sanctions lists from files: OFAC's SDN advanced XML (the digital currency address
features) and a plain CSV. Bad input is an :class:`InputError` naming the file (and line for CSV);
nothing is returned half-read.

The XML is parsed with the standard library only after refusing anything that could make the
parser fetch or expand: a document type declaration or an entity declaration is refused outright,
the text must be UTF-8, and the file size is capped.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from primeguard.domain.errors import InputError

MAX_BYTES = 256 * 1024 * 1024
MAX_ADDRESSES = 1_000_000
FEATURE_PREFIX = "Digital Currency Address - "
_EVM = re.compile(r"^0x[0-9a-fA-F]{40}$")
_FORBIDDEN = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ParsedList:
    """What a file holds: its format, its date (if it says), its digest, and (address, label) pairs."""

    fmt: str
    source_date: str | None
    sha256: str
    addresses: tuple[tuple[str, str | None], ...]


def _read(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise InputError(f"{path}: {size} bytes is more than the {MAX_BYTES} a list may have")
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_sdn_xml(path: Path, data: bytes | None = None) -> ParsedList:
    """Digital currency addresses of OFAC's SDN advanced XML (``sdn_advanced.xml``), any namespace.

    Raises:
        InputError: unreadable, too big, not UTF-8, a DTD or entity declaration, malformed XML,
            not an SDN advanced document, or a digital currency feature without an address.
    """
    raw = _read(path) if data is None else data
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    m = _FORBIDDEN.search(text)
    if m:
        line = text.count("\n", 0, m.start()) + 1
        raise InputError(f"{path}:{line}: document type / entity declarations are refused")
    try:
        root = ET.fromstring(text)  # noqa: S314 - no DTD or entity can be present (checked above)
    except ET.ParseError as exc:
        line = getattr(exc, "position", (None,))[0]
        raise InputError(f"{path}:{line or '?'}: malformed XML ({exc})") from None
    if _local(root.tag) != "Sanctions":
        raise InputError(f"{path}: not an SDN advanced XML document (root <{_local(root.tag)}>)")
    kinds: dict[str, str] = {}
    for el in root.iter():
        if _local(el.tag) == "FeatureType" and (el.text or "").startswith(FEATURE_PREFIX):
            kinds[el.get("ID", "")] = (el.text or "")[len(FEATURE_PREFIX):].strip()
    date = None
    for el in root.iter():
        if _local(el.tag) == "DateOfIssue":
            parts = {_local(c.tag): (c.text or "").strip() for c in el}
            try:
                date = f"{int(parts['Year']):04d}-{int(parts['Month']):02d}-{int(parts['Day']):02d}"
            except (KeyError, ValueError):
                date = None
            break
    out: list[tuple[str, str | None]] = []
    for party in root.iter():
        if _local(party.tag) != "DistinctParty":
            continue
        fixed = party.get("FixedRef")
        for feat in party.iter():
            if _local(feat.tag) != "Feature" or feat.get("FeatureTypeID") not in kinds:
                continue
            currency = kinds[feat.get("FeatureTypeID", "")]
            values = [(d.text or "").strip() for d in feat.iter() if _local(d.tag) == "VersionDetail"]
            values = [v for v in values if v]
            if not values:
                raise InputError(f"{path}: party {fixed}: a {FEATURE_PREFIX}{currency} feature has no address")
            out += [(v, f"SDN {fixed} {currency}") for v in values]
            if len(out) > MAX_ADDRESSES:
                raise InputError(f"{path}: more than {MAX_ADDRESSES} addresses")
    return ParsedList("sdn_xml", date, hashlib.sha256(raw).hexdigest(), tuple(out))


def parse_csv(path: Path, data: bytes | None = None) -> ParsedList:
    """A CSV with a header naming an ``address`` column (optional ``label``). EVM addresses must be
    40 hex digits; other rows are kept as written (other chains' formats).

    Raises:
        InputError: ``FILE:LINE`` for a missing column, an empty or malformed EVM address.
    """
    raw = _read(path) if data is None else data
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    if "address" not in fields:
        raise InputError(f"{path}:1: the header must name an 'address' column")
    out: list[tuple[str, str | None]] = []
    for row in reader:
        line = reader.line_num
        norm = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items() if isinstance(v, str)}
        addr = norm.get("address", "")
        if not addr:
            raise InputError(f"{path}:{line}: empty address")
        if addr[:2].lower() == "0x" and not _EVM.match(addr):
            raise InputError(f"{path}:{line}: {addr[:60]!r} is not a 20-byte hex address")
        out.append((addr, norm.get("label") or None))
        if len(out) > MAX_ADDRESSES:
            raise InputError(f"{path}: more than {MAX_ADDRESSES} addresses")
    return ParsedList("csv", None, hashlib.sha256(raw).hexdigest(), tuple(out))


def parse_list_file(path: Path) -> ParsedList:
    """By extension: ``.xml`` is SDN advanced XML, ``.csv`` a CSV."""
    suffix = path.suffix.lower()
    if suffix == ".xml":
        return parse_sdn_xml(path)
    if suffix == ".csv":
        return parse_csv(path)
    raise InputError(f"{path}: unknown list format (give an SDN advanced .xml or a .csv)")


__all__ = ["ParsedList", "parse_csv", "parse_list_file", "parse_sdn_xml"]
