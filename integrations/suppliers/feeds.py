"""Supplier feeds: download to disk, then parse as a stream.

A feed is first copied to a temporary file as it arrives (a chunk at a time, never whole in
memory); only a download that completed (status 200, the declared length, no broken transfer) is
parsed. Parsers yield `Record`s one at a time and report bad rows through `reject` (counted, the
rest applies). The records of a read go to a `Spool` (a temporary file again), so nothing is
written to stock until the whole read is known to be good: a feed that fails to download, ends
early or does not parse changes nothing.

* CSV: a header row; the SKU and stock columns by name; `;` or `,` (from the header when not set);
  UTF-8 with or without BOM, else Windows-1251 (decided over the whole file when not set).
* YML (`yml_catalog/shop/offers/offer`): `defusedxml`'s iterparse over the C expat parser, entity
  declarations and external references refused (an entity-expansion bomb fails at its declaration,
  before any expansion); each offer element is dropped once read.
"""
from __future__ import annotations

import codecs
import csv
import io
import os
import re
import tempfile
from dataclasses import dataclass
from typing import Callable, Iterator, NamedTuple

import httpx
from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from integrations.http.errors import RejectedError, UpstreamUnavailableError
from integrations.http.outbound import guarded_client

CHUNK = 1 << 16
#: a stock figure above this is a data error (a row rejected), not a warehouse
MAX_STOCK = 1_000_000_000
_WHOLE = re.compile(r"\s*(\d{1,10})(?:[.,]0*)?\s*")
_BAD_SKU = re.compile(r"[\t\r\n\x00]")

Reject = Callable[[str, str], None]


class Record(NamedTuple):
    sku: str
    stock: int
    barcodes: tuple[str, ...] = ()
    name: str = ""


class FeedError(Exception):
    """The feed cannot be read as a whole (download failed or ended early, not parseable)."""


class FeedUnavailable(FeedError, UpstreamUnavailableError):
    """Transport trouble: worth retrying later."""


def whole_number(value) -> int | None:
    """A stock figure as a whole number >= 0, or None. Accepts 5, "5", " 5 ", "5.0", "5,000"
    as 5 only when the fraction is zero; refuses "-1", "2.5", "", "abc", booleans and huge values."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= MAX_STOCK else None
    if isinstance(value, float):
        return int(value) if value.is_integer() and 0 <= value <= MAX_STOCK else None
    if isinstance(value, str):
        match = _WHOLE.fullmatch(value)
        if match:
            number = int(match.group(1))
            return number if number <= MAX_STOCK else None
    return None


def clean_sku(value) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or len(value) > 255 or _BAD_SKU.search(value):
        return None
    return value


# ------------------------------------------------------------------------------------------------
# Download
# ------------------------------------------------------------------------------------------------
def download(url: str, *, headers: dict | None = None, timeout: float = 120.0,
             client: httpx.Client | None = None) -> tempfile._TemporaryFileWrapper:
    """GET `url` into a temporary file (binary, rewound). Raises FeedUnavailable when the
    transfer fails or ends early, RejectedError for a 4xx; OutboundRefused for an internal URL."""
    own = client is None
    client = client or guarded_client(timeout=timeout, follow_redirects=True, headers=headers)
    out = tempfile.TemporaryFile(prefix="supplier-feed-")
    try:
        with client.stream("GET", url, headers=headers) as response:
            if response.status_code >= 500 or response.status_code == 429:
                raise FeedUnavailable(f"feed {url}: HTTP {response.status_code}", status=response.status_code, url=url)
            if response.status_code != 200:
                raise RejectedError(f"feed {url}: HTTP {response.status_code}", status=response.status_code, url=url)
            declared = response.headers.get("Content-Length")
            size = 0
            for chunk in response.iter_raw(CHUNK) if _identity(response) else response.iter_bytes(CHUNK):
                out.write(chunk)
                size += len(chunk)
            if declared is not None and _identity(response) and declared.isdigit() and int(declared) != size:
                raise FeedUnavailable(f"feed {url}: ended early ({size} of {declared} bytes)", url=url)
    except httpx.HTTPError as exc:
        out.close()
        raise FeedUnavailable(f"feed {url}: {exc.__class__.__name__}: {exc}", url=url) from exc
    except BaseException:
        out.close()
        raise
    finally:
        if own:
            client.close()
    out.seek(0)
    return out


def _identity(response: httpx.Response) -> bool:
    return response.headers.get("Content-Encoding", "identity").lower() in ("", "identity")


# ------------------------------------------------------------------------------------------------
# CSV
# ------------------------------------------------------------------------------------------------
def detect_encoding(raw: io.BufferedIOBase) -> str:
    """utf-8-sig when the bytes start with a BOM or the whole file is valid UTF-8, else cp1251.
    Reads the file once in chunks and rewinds it."""
    raw.seek(0)
    head = raw.read(3)
    if head == codecs.BOM_UTF8:
        raw.seek(0)
        return "utf-8-sig"
    decoder = codecs.getincrementaldecoder("utf-8")()
    data = head
    try:
        while data:
            decoder.decode(data)
            data = raw.read(CHUNK)
        decoder.decode(b"", final=True)
        encoding = "utf-8-sig"
    except UnicodeDecodeError:
        encoding = "cp1251"
    raw.seek(0)
    return encoding


def parse_csv(raw: io.BufferedIOBase, *, sku_column: str = "sku", stock_column: str = "stock",
              delimiter: str = "", encoding: str = "", reject: Reject) -> Iterator[Record]:
    enc = (encoding or "").lower().replace("_", "-")
    if enc in ("", "auto"):
        enc = detect_encoding(raw)
    elif enc in ("utf-8", "utf8"):
        enc = "utf-8-sig"
    elif enc in ("windows-1251", "cp-1251"):
        enc = "cp1251"
    raw.seek(0)
    text = io.TextIOWrapper(raw, encoding=enc, errors="strict", newline="")
    try:
        header_line = text.readline()
        if not header_line.strip():
            raise FeedError("the CSV has no header row")
        delim = delimiter or (";" if header_line.count(";") >= header_line.count(",") else ",")
        header = [h.strip().lower() for h in next(csv.reader([header_line], delimiter=delim))]
        try:
            sku_i, stock_i = header.index(sku_column.strip().lower()), header.index(stock_column.strip().lower())
        except ValueError:
            raise FeedError(f"the CSV header lacks {sku_column!r} or {stock_column!r} (has {header[:20]})") from None
        width = max(sku_i, stock_i)
        line = 1
        for row in csv.reader(text, delimiter=delim):
            line += 1
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) <= width:
                reject(f"line {line}", "too few columns")
                continue
            sku = clean_sku(row[sku_i])
            if sku is None:
                reject(f"line {line}", "no SKU")
                continue
            stock = whole_number(row[stock_i])
            if stock is None:
                reject(f"line {line} {sku}", f"stock {row[stock_i][:40]!r} is not a whole number >= 0")
                continue
            yield Record(sku, stock)
    except UnicodeDecodeError as exc:
        raise FeedError(f"the CSV is not {enc}: {exc}") from exc
    except csv.Error as exc:
        raise FeedError(f"the CSV is malformed: {exc}") from exc
    finally:
        text.detach()


# ------------------------------------------------------------------------------------------------
# YML
# ------------------------------------------------------------------------------------------------
def parse_yml(raw: io.BufferedIOBase, *, sku_source: str = "vendorCode", in_stock_quantity: int = 1,
              reject: Reject) -> Iterator[Record]:
    raw.seek(0)
    offers_parent = None
    depth_path: list[str] = []
    seen_root = False
    try:
        for event, elem in SafeET.iterparse(raw, events=("start", "end"), forbid_dtd=False,
                                            forbid_entities=True, forbid_external=True):
            if event == "start":
                depth_path.append(elem.tag)
                if not seen_root:
                    seen_root = True
                    if elem.tag != "yml_catalog":
                        raise FeedError(f"not a YML feed: the root is <{elem.tag}>, not <yml_catalog>")
                if elem.tag == "offers":
                    offers_parent = elem
                continue
            depth_path.pop()
            if elem.tag != "offer" or not depth_path or depth_path[-1] != "offers":
                continue
            record = _yml_offer(elem, sku_source=sku_source, in_stock_quantity=in_stock_quantity, reject=reject)
            if offers_parent is not None:
                offers_parent.clear()  # read offers are dropped: memory stays flat
            if record is not None:
                yield record
    except DefusedXmlException as exc:
        raise FeedError(f"the YML feed declares entities or external references: refused ({exc.__class__.__name__})") from exc
    except SafeET.ParseError as exc:
        raise FeedError(f"the YML feed is not well-formed XML (or ends early): {exc}") from exc


def _yml_offer(elem, *, sku_source: str, in_stock_quantity: int, reject: Reject) -> Record | None:
    offer_id = (elem.get("id") or "").strip()
    if sku_source == "id":
        sku = clean_sku(offer_id)
    else:
        sku = clean_sku(elem.findtext("vendorCode") or "")
    if sku is None:
        reject(f"offer {offer_id[:80] or '?'}", f"no SKU ({sku_source})")
        return None
    count = elem.find("count")
    if count is not None:
        stock = whole_number(count.text or "")
        if stock is None:
            reject(f"offer {sku}", f"count {(count.text or '')[:40]!r} is not a whole number >= 0")
            return None
    else:
        stock = 0 if (elem.get("available") or "true").strip().lower() == "false" else in_stock_quantity
    barcodes = tuple(b for b in (clean_sku(x.text or "") for x in elem.findall("barcode")) if b)
    name = " ".join((elem.findtext("name") or "").split())[:255]
    return Record(sku, stock, barcodes, name)


# ------------------------------------------------------------------------------------------------
# Spool: the validated records of one read, on disk
# ------------------------------------------------------------------------------------------------
@dataclass
class Spool:
    """Records written as they are read and read back in batches once the read is complete."""

    def __post_init__(self):
        self._file = tempfile.TemporaryFile(mode="w+", encoding="utf-8", prefix="supplier-spool-")
        self.count = 0

    def add(self, record: Record) -> None:
        name = record.name.replace("\t", " ").replace("\n", " ").replace("\r", " ")
        self._file.write(f"{record.sku}\t{record.stock}\t{','.join(record.barcodes)}\t{name}\n")
        self.count += 1

    def batches(self, size: int) -> Iterator[list[Record]]:
        self._file.flush()
        self._file.seek(0)
        batch: list[Record] = []
        for line in self._file:
            sku, stock, barcodes, name = line.rstrip("\n").split("\t", 3)
            batch.append(Record(sku, int(stock), tuple(b for b in barcodes.split(",") if b), name))
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch

    def close(self) -> None:
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def file_size(f) -> int:
    return os.fstat(f.fileno()).st_size
