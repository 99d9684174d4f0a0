"""CommerceML 2 documents as 1C's "exchange with a site" writes them, read as a stream.

Two passes over the file, both with bounded memory whatever its size:

1. `document_check`: a bare expat pass (no tree, no Python call per element) that proves the
   file is well-formed XML whose root is `КоммерческаяИнформация`, and refuses any DTD (so no
   entity can be declared: no XML bomb, no external entity). A file cut short, malformed, or
   carrying a DOCTYPE fails here, before anything is written.
2. `document_read`: lxml's iterparse (entities not resolved, no network, no DTD loaded; the
   first pass refused any DTD already) yields what the document says, one record at a time; each
   finished record is removed from the tree so memory stays flat:
   - `Warehouse(id, name)` from any `Склады/Склад` (`ПакетПредложений/Склады` in offers.xml,
     `Классификатор/Склады` in import.xml);
   - `CatalogItem` from `Каталог/Товары/Товар` (import.xml: Ид, Артикул, Штрихкод, Наименование);
   - `OfferRecord` from `ПакетПредложений/Предложения/Предложение` (offers.xml; rests.xml too),
     with its stock per warehouse in any of the three shapes seen in the wild:
       2.07+   `<Склад ИдСклада="…" КоличествоНаСкладе="…"/>` inside the offer;
       2.05    `<КоличествоНаСкладах><КоличествоНаСкладе><ИдСклада/><Количество/>…`;
       modules `<Остатки><Остаток><Склад><Ид/><Количество/></Склад></Остаток></Остатки>`;
     and the offer's total `Количество` (used when no warehouse figure is given);
   - `Package(only_changes)` when `ПакетПредложений` (or `Каталог`) opens: its
     `СодержитТолькоИзменения` says whether the document is complete.
Element names are compared without their namespace (2.08 declares `urn:1C.ru:commerceml_2`).
"""
from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import BinaryIO, Iterator
from xml.parsers import expat

from lxml import etree

ROOT = "КоммерческаяИнформация"
READ_CHUNK = 1 << 20


class DocumentError(ValueError):
    """The file is not a CommerceML document we can read (nothing of it is applied)."""


@dataclass(frozen=True)
class Warehouse:
    id: str
    name: str


@dataclass(frozen=True)
class CatalogItem:
    id: str
    sku: str
    barcode: str
    name: str


@dataclass
class OfferRecord:
    id: str
    sku: str = ""
    barcodes: list[str] = field(default_factory=list)
    name: str = ""
    total: Decimal | None = None
    by_warehouse: dict[str, Decimal] = field(default_factory=dict)   # 1C warehouse id -> quantity
    problem: str = ""


@dataclass(frozen=True)
class Package:
    kind: str                # "offers" or "catalog"
    only_changes: bool | None


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def quantity(text: str | None) -> Decimal | None:
    """1C's decimal (`5`, `5.000`, `5,5`, `1 234`); None when it is not a number."""
    if text is None:
        return None
    cleaned = text.strip().replace("\u00a0", "").replace(" ", "").replace(",", ".")
    if not cleaned:
        return None
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


# ------------------------------------------------------------------------------------------------
# Pass 1: well-formed, the right root, no DTD
# ------------------------------------------------------------------------------------------------
def _refuse_dtd(*args) -> None:
    raise DocumentError("the document declares a DTD (DOCTYPE/ENTITY), which is refused")


def document_check(stream: BinaryIO) -> None:
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.UnparsedEntityDeclHandler = _refuse_dtd
    parser.ExternalEntityRefHandler = _refuse_dtd
    seen_root: list[str] = []

    def first_element(name, attrs):
        seen_root.append(_local(name))
        parser.StartElementHandler = None   # one call only: the rest parses without Python calls

    parser.StartElementHandler = first_element
    try:
        while True:
            chunk = stream.read(READ_CHUNK)
            if not chunk:
                break
            parser.Parse(chunk, False)
        parser.Parse(b"", True)
    except expat.ExpatError as exc:
        raise DocumentError(f"the file is not well-formed XML: {expat.errors.messages.get(exc.code, exc)} "
                            f"at line {exc.lineno}, column {exc.offset}") from None
    if not seen_root:
        raise DocumentError("the file is empty")
    if seen_root[0] != ROOT:
        raise DocumentError(f"the root element is {seen_root[0]!r}, not {ROOT}")


# ------------------------------------------------------------------------------------------------
# Pass 2: what the document says
# ------------------------------------------------------------------------------------------------
def _text(elem) -> str:
    return (elem.text or "").strip()


def _offer(elem) -> OfferRecord:
    record = OfferRecord(id="")
    for child in elem:
        tag = _local(child.tag)
        if tag == "Ид":
            record.id = _text(child)
        elif tag == "Артикул":
            record.sku = _text(child)
        elif tag == "Наименование":
            record.name = _text(child)[:255]
        elif tag == "Штрихкод":
            if _text(child):
                record.barcodes.append(_text(child))
        elif tag == "Количество":
            record.total = _figure(record, quantity(child.text), "Количество")
        elif tag == "Склад":                                   # 2.07+
            _add(record, child.get("ИдСклада"), child.get("КоличествоНаСкладе"))
        elif tag == "КоличествоНаСкладах":                     # 2.05
            for entry in child:
                wid = qty = None
                for part in entry:
                    ptag = _local(part.tag)
                    if ptag == "ИдСклада":
                        wid = _text(part)
                    elif ptag == "Количество":
                        qty = part.text
                _add(record, wid, qty)
        elif tag == "Остатки":                                 # exchange modules' shape
            for rest in child:
                for part in rest:
                    ptag = _local(part.tag)
                    if ptag == "Склад":
                        wid = qty = None
                        for sub in part:
                            stag = _local(sub.tag)
                            if stag == "Ид":
                                wid = _text(sub)
                            elif stag == "Количество":
                                qty = sub.text
                        _add(record, wid, qty)
                    elif ptag == "Количество" and record.total is None:
                        record.total = _figure(record, quantity(part.text), "Остаток/Количество")
    return record


def _figure(record: OfferRecord, value: Decimal | None, what: str) -> Decimal | None:
    if value is None:
        record.problem = record.problem or f"{what} is not a number"
    return value


def _add(record: OfferRecord, warehouse_id: str | None, text: str | None) -> None:
    warehouse_id = (warehouse_id or "").strip()
    if not warehouse_id:
        record.problem = record.problem or "a warehouse figure without the warehouse id"
        return
    value = _figure(record, quantity(text), f"the quantity in warehouse {warehouse_id}")
    if value is not None:
        record.by_warehouse[warehouse_id] = record.by_warehouse.get(warehouse_id, Decimal(0)) + value


#: the elements the reader stops at, in any namespace (lxml filters them in C)
_WATCHED = tuple("{*}" + t for t in ("ПакетПредложений", "Каталог", "Предложение", "Товар", "Склад"))


def document_read(stream: BinaryIO) -> Iterator[Warehouse | CatalogItem | OfferRecord | Package]:
    context = etree.iterparse(stream, events=("start", "end"), tag=_WATCHED, resolve_entities=False,
                              no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False,
                              remove_comments=True, remove_pis=True)
    for event, elem in context:
        tag = _local(elem.tag)
        if event == "start":
            if tag in ("ПакетПредложений", "Каталог"):
                flag = elem.get("СодержитТолькоИзменения")
                only = None if flag is None else flag.strip().lower() in ("true", "1", "истина")
                yield Package("offers" if tag == "ПакетПредложений" else "catalog", only)
            continue
        parent = elem.getparent()
        parent_tag = _local(parent.tag) if parent is not None else ""
        if tag == "Предложение" and parent_tag == "Предложения":
            yield _offer(elem)
        elif tag == "Товар" and parent_tag == "Товары":
            item = {"Ид": "", "Артикул": "", "Штрихкод": "", "Наименование": ""}
            for child in elem:
                ctag = _local(child.tag)
                if ctag in item and not item[ctag]:
                    item[ctag] = _text(child)
            if item["Ид"]:
                yield CatalogItem(item["Ид"], item["Артикул"], item["Штрихкод"], item["Наименование"][:255])
        elif tag == "Склад" and parent_tag == "Склады":
            wid = name = ""
            for child in elem:
                ctag = _local(child.tag)
                if ctag == "Ид":
                    wid = _text(child)
                elif ctag == "Наименование":
                    name = _text(child)
            if wid:
                yield Warehouse(wid, name or wid)
        else:
            continue   # a Склад inside an offer: read with its offer
        # A finished record: drop it, and what came before it, so memory stays flat.
        elem.clear(keep_tail=False)
        while elem.getprevious() is not None:
            del parent[0]


_END = object()


def read_ahead(records: Iterator, *, chunk: int = 500, depth: int = 8) -> Iterator:
    """Iterate `records` (a `document_read`) from a reader thread: parsing overlaps the caller's
    database waits. At most `depth` chunks of `chunk` records wait in between (bounded memory);
    an error in the reader is raised here, and leaving early stops the reader."""
    pipe: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def reader() -> None:
        batch: list = []
        try:
            for record in records:
                batch.append(record)
                if len(batch) >= chunk:
                    while not stop.is_set():
                        try:
                            pipe.put(batch, timeout=0.5)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
                    batch = []
            pipe.put(batch)
            pipe.put(_END)
        except BaseException as exc:  # handed to the consumer, raised there
            pipe.put(exc)

    thread = threading.Thread(target=reader, name="commerceml-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = pipe.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield from item
    finally:
        stop.set()
        while thread.is_alive():   # let a reader blocked on a full pipe see `stop`
            try:
                pipe.get(timeout=0.1)
            except queue.Empty:
                pass
        thread.join()
