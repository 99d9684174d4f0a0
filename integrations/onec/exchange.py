"""`/1c/exchange/`: the CommerceML 2 "exchange with a site" as 1C drives it (1C is the client).

    type=catalog|sale & mode=checkauth   HTTP Basic ONEC_EXCHANGE_LOGIN:ONEC_EXCHANGE_PASSWORD
                                         -> "success\\n<cookie name>\\n<cookie value>"
    mode=init                            -> "zip=no\\nfile_limit=<bytes per file request>"
    mode=file&filename=F (POST)          the bytes of F, appended chunk by chunk -> "success"
    mode=import&filename=F               -> "progress" while the worker applies F, then
                                            "success" or "failure\\n<reason>"
    type=sale&mode=query                 -> an empty CommerceML document (no orders to give)
    type=sale&mode=success|file          -> "success"
    type=catalog&mode=deactivate|complete  -> "success" (newer modules end a catalog exchange so)

Every call after `checkauth` must carry the session cookie it returned (a digest of it is all we
store). Answers are plain text as 1C expects; refusals carry the reason on the second line with a
4xx status: 401 (not configured, wrong password, no or unknown cookie), 413 (over the size limits),
400 (an unknown mode, a file never uploaded). A refused call changes nothing.

Only `.xml` files are kept (on disk, per session, under var/); pictures 1C may send are
acknowledged and dropped. `init` starts the session's files afresh, as 1C expects.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from .exchange_files import clean_name, session_remove, upload_path
from .exchange_import import import_signal
from .models import ExchangeSession, ExchangeUpload

log = logging.getLogger("syncsite.onec.exchange")
State = ExchangeUpload.State

COOKIE_NAME = "syncsite_1c"
#: a session unused this long is over (1C opens a new one every exchange)
SESSION_IDLE = timedelta(hours=6)
READ_BLOCK = 1 << 16
EMPTY_ORDERS = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                '<КоммерческаяИнформация xmlns="urn:1C.ru:commerceml_2" ВерсияСхемы="2.08" '
                'ДатаФормирования="{now}"/>\n')


def _text(body: str, status: int = 200) -> HttpResponse:
    return HttpResponse(body, status=status, content_type="text/plain; charset=utf-8")


def _failure(reason: str, status: int = 200) -> HttpResponse:
    return _text(f"failure\n{reason}", status)


def _unauthorized(reason: str) -> HttpResponse:
    response = _failure(reason, 401)
    response["WWW-Authenticate"] = 'Basic realm="1c-exchange", charset="UTF-8"'
    return response


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


def configured() -> bool:
    conf = settings.ONEC
    return bool(conf.get("EXCHANGE_LOGIN") and conf.get("EXCHANGE_PASSWORD"))


def basic_ok(header: str) -> bool:
    """HTTP Basic against the exchange's login and password, each compared in constant time."""
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        raw = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        decoded = raw.decode("cp1251", "replace")  # older 1C builds send the credentials in Windows-1251
    login, sep, password = decoded.partition(":")
    conf = settings.ONEC
    ok_login = hmac.compare_digest(_digest(login), _digest(conf.get("EXCHANGE_LOGIN") or ""))
    ok_password = hmac.compare_digest(_digest(password), _digest(conf.get("EXCHANGE_PASSWORD") or ""))
    return bool(sep) and ok_login and ok_password


def _session(request: HttpRequest) -> ExchangeSession | None:
    value = request.COOKIES.get(COOKIE_NAME, "")
    if not value or len(value) > 200:
        return None
    digest = hashlib.sha256(value.encode()).hexdigest()
    session = ExchangeSession.objects.filter(cookie_digest=digest).first()
    if session is None or session.seen_at < timezone.now() - SESSION_IDLE:
        return None
    ExchangeSession.objects.filter(pk=session.pk).update(seen_at=timezone.now())
    return session


@csrf_exempt
def onec_exchange(request: HttpRequest) -> HttpResponse:
    kind = (request.GET.get("type") or "").lower()
    mode = (request.GET.get("mode") or "").lower()
    if not configured():
        return _unauthorized("the exchange is not configured: set ONEC_EXCHANGE_LOGIN and ONEC_EXCHANGE_PASSWORD")
    if kind not in ("catalog", "sale"):
        return _failure("type must be catalog or sale", 400)
    if mode == "checkauth":
        return _checkauth(request, kind)
    session = _session(request)
    if session is None:
        log.warning("onec.exchange.no-session mode=%s from=%s", mode, request.META.get("REMOTE_ADDR"))
        return _unauthorized(f"no exchange session: call mode=checkauth first and send its {COOKIE_NAME} cookie")
    if mode == "init":
        return _init(session)
    if kind == "sale":
        if mode == "query":
            body = EMPTY_ORDERS.format(now=timezone.localtime().replace(microsecond=0).isoformat())
            return HttpResponse(body, content_type="application/xml; charset=utf-8")
        if mode == "file":
            _drain(request)
            return _text("success")
        if mode in ("success", "import"):
            return _text("success")
        return _failure(f"unknown mode {mode[:40]!r}", 400)
    if mode == "file":
        return _file(request, session)
    if mode == "import":
        return _import(request, session)
    if mode in ("deactivate", "complete"):
        # Newer exchange modules close a catalog exchange with these: nothing to do for stock
        # (a complete offers package already zeroed what it no longer lists).
        return _text("success")
    return _failure(f"unknown mode {mode[:40]!r}", 400)


def _checkauth(request: HttpRequest, kind: str) -> HttpResponse:
    if not basic_ok(request.META.get("HTTP_AUTHORIZATION", "")):
        log.warning("onec.exchange.bad-credentials from=%s", request.META.get("REMOTE_ADDR"))
        return _unauthorized("wrong login or password")
    value = secrets.token_urlsafe(32)
    ExchangeSession.objects.create(cookie_digest=hashlib.sha256(value.encode()).hexdigest(), exchange_type=kind,
                                   remote_addr=(request.META.get("REMOTE_ADDR") or "")[:64])
    log.info("onec.exchange.session-opened type=%s", kind)
    return _text(f"success\n{COOKIE_NAME}\n{value}")


def _init(session: ExchangeSession) -> HttpResponse:
    busy = ExchangeUpload.objects.filter(session=session, state__in=[State.QUEUED, State.IMPORTING]).exists()
    if not busy:  # a fresh start; never under an import that is still reading its file
        ExchangeUpload.objects.filter(session=session).delete()
        session_remove(session.pk)
    limit = int(settings.ONEC["EXCHANGE_FILE_LIMIT"])
    return _text(f"zip=no\nfile_limit={limit}")


def _drain(request: HttpRequest) -> int:
    total = 0
    while True:
        block = request.read(READ_BLOCK)
        if not block:
            return total
        total += len(block)


def _file(request: HttpRequest, session: ExchangeSession) -> HttpResponse:
    if request.method != "POST":
        return _failure("mode=file takes a POST with the file's bytes", 405)
    filename = request.GET.get("filename", "")
    flat = clean_name(filename)
    if flat is None:
        return _failure("filename is missing or not a plain relative name", 400)
    chunk_limit = int(settings.ONEC["EXCHANGE_FILE_LIMIT"])
    file_limit = int(settings.ONEC["EXCHANGE_MAX_FILE"])
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > chunk_limit:
        return _failure(f"a file request may carry at most {chunk_limit} bytes (file_limit)", 413)
    if not filename.lower().endswith(".xml"):
        _drain(request)  # pictures and other attachments: not used for stock
        return _text("success")
    with transaction.atomic():
        upload, _ = ExchangeUpload.objects.select_for_update().get_or_create(session=session, filename=filename[:255])
        if upload.state in (State.QUEUED, State.IMPORTING):
            return _failure(f"{filename} is being imported; start a new exchange to send it again", 409)
        path = upload_path(session.pk, filename)
        if upload.state != State.UPLOADING:  # sent again after an import: start over
            path.unlink(missing_ok=True)
            upload.size = upload.chunks = 0
            upload.state, upload.error, upload.counts = State.UPLOADING, "", {}
        path.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        too_big = False
        with path.open("ab") as out:
            while True:
                block = request.read(READ_BLOCK)
                if not block:
                    break
                written += len(block)
                if written > chunk_limit or upload.size + written > file_limit:
                    too_big = True
                    break
                out.write(block)
        if too_big:
            path.unlink(missing_ok=True)
            upload.delete()
            log.warning("onec.exchange.too-large file=%s", filename[:100])
            limit = chunk_limit if written > chunk_limit else file_limit
            return _failure(f"{filename} is over the limit of {limit} bytes; nothing of it was kept", 413)
        upload.size += written
        upload.chunks += 1
        upload.save()
    return _text("success")


def _import(request: HttpRequest, session: ExchangeSession) -> HttpResponse:
    filename = request.GET.get("filename", "")
    upload = ExchangeUpload.objects.filter(session=session, filename=filename[:255]).first()
    if upload is None:
        if filename and not filename.lower().endswith(".xml") and clean_name(filename):
            return _text("success")
        return _failure(f"{filename or 'the file'} was not uploaded in this session", 400)
    if upload.state == State.UPLOADING:
        updated = ExchangeUpload.objects.filter(pk=upload.pk, state=State.UPLOADING).update(
            state=State.QUEUED, queued_at=timezone.now())
        if updated:
            transaction.on_commit(lambda: import_signal(upload.pk), robust=True)
        upload.refresh_from_db()
    if upload.state in (State.QUEUED, State.IMPORTING):
        return _text("progress")
    if upload.state == State.DONE:
        return _text("success")
    return _failure(upload.error.splitlines()[0][:500] if upload.error else "the import failed")

