"""The Russian catalog: every message of ours is translated, and the committed django.mo (what
Django reads; a fresh machine may have no gettext to compile it) says what django.po says."""
import ast
import gettext
import re
from pathlib import Path

from django.conf import settings

LOCALE = Path(settings.BASE_DIR) / "locale" / "ru" / "LC_MESSAGES"


def _unquote(chunks: list[str]) -> str:
    return "".join(ast.literal_eval(f'"{c}"') for c in chunks)


def po_entries(path: Path) -> list[dict]:
    """Minimal .po reader: [{"msgid", "msgid_plural"?, "msgstr": [..]}] (header and obsolete skipped)."""
    entries = []
    for block in path.read_text(encoding="utf-8").split("\n\n"):
        lines = [ln for ln in block.splitlines() if ln and not ln.startswith("#")]
        entry: dict = {"msgstr": []}
        key = None
        for line in lines:
            m = re.match(r'^(msgid|msgid_plural|msgstr(?:\[\d\])?) "(.*)"$', line)
            if m:
                key = m.group(1)
                entry.setdefault(key, []).append(m.group(2)) if not key.startswith("msgstr") else entry["msgstr"].append([m.group(2)])
            elif line.startswith('"') and key:
                (entry["msgstr"][-1] if key.startswith("msgstr") else entry[key]).append(line[1:-1])
        if entry.get("msgid") and _unquote(entry["msgid"]):
            entries.append({"msgid": _unquote(entry["msgid"]),
                            "msgid_plural": _unquote(entry["msgid_plural"]) if "msgid_plural" in entry else None,
                            "msgstr": [_unquote(s) for s in entry["msgstr"]]})
    return entries


def test_every_message_is_translated_and_the_mo_is_current():
    entries = po_entries(LOCALE / "django.po")
    assert len(entries) > 200
    with open(LOCALE / "django.mo", "rb") as fh:
        mo = gettext.GNUTranslations(fh)
    for e in entries:
        assert all(e["msgstr"]), f"untranslated: {e['msgid']!r}"
        if e["msgid_plural"] is None:
            assert mo.gettext(e["msgid"]) == e["msgstr"][0], f"django.mo is stale for {e['msgid']!r}: make messages"
        else:
            for n, form in ((1, 0), (3, 1), (5, 2)):
                assert mo.ngettext(e["msgid"], e["msgid_plural"], n) == e["msgstr"][form], e["msgid"]


def test_placeholders_survive_translation():
    for e in po_entries(LOCALE / "django.po"):
        wanted = sorted(set(re.findall(r"%\((\w+)\)", e["msgid"])))
        for text in e["msgstr"]:
            assert sorted(set(re.findall(r"%\((\w+)\)", text))) == wanted, e["msgid"]


def test_make_run_defaults_to_russian(monkeypatch):
    """`make run` sets LANGUAGE_CODE=ru for every process it starts (unless already set)."""
    import inspect

    from syncsite import devstack

    assert 'env.setdefault("LANGUAGE_CODE", "ru")' in inspect.getsource(devstack.main)
