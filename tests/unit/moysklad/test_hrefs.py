"""hrefs.href_relative / entity_ref: a link is MoySklad's only when it points exactly at the
configured base, parsed, with nothing two parsers could read differently."""
import pytest

from integrations.moysklad.hrefs import entity_ref, href_relative

pytestmark = pytest.mark.security
BASE = "https://ms.test/api/remap/1.2"
ID = "75c896d0-db16-11eb-c0a8-800d00000004"


@pytest.mark.parametrize("href,relative", [
    (f"{BASE}/entity/product/{ID}", f"/entity/product/{ID}"),
    (f"https://MS.TEST/api/remap/1.2/entity/product/{ID}", f"/entity/product/{ID}"),      # host case
    (f"https://ms.test:443/api/remap/1.2/entity/product/{ID}", f"/entity/product/{ID}"),  # default port
    (f"HTTPS://ms.test/api/remap/1.2/entity/variant/{ID}", f"/entity/variant/{ID}"),
    (f"{BASE}/entity/product?limit=1000&offset=1000", "/entity/product?limit=1000&offset=1000"),
    (f"{BASE}/report/stock/bystore/current?changedSince=2026-11-23 19:14:32",
     "/report/stock/bystore/current?changedSince=2026-11-23%2019:14:32"),                   # MoySklad's space
])
def test_links_under_the_base_are_followed(href, relative):
    assert href_relative(href, BASE) == relative


@pytest.mark.parametrize("href", [
    None, 42, "", "/entity/product/x", f"//ms.test/api/remap/1.2/entity/product/{ID}",
    f"https://evil.test/api/remap/1.2/entity/product/{ID}",
    f"https://169.254.169.254/api/remap/1.2/entity/product/{ID}",
    f"http://ms.test/api/remap/1.2/entity/product/{ID}",                   # downgraded scheme
    f"ftp://ms.test/api/remap/1.2/entity/product/{ID}",
    f"https://ms.test:8443/api/remap/1.2/entity/product/{ID}",             # another port
    f"https://ms.test:/api/remap/1.2/entity/product/{ID}",                 # an empty port
    f"https://ms.test:443x/api/remap/1.2/entity/product/{ID}",
    f"https://ms.test./api/remap/1.2/entity/product/{ID}",                 # trailing dot
    f"https://ms.test.evil.test/api/remap/1.2/entity/product/{ID}",
    f"https://ms.test@evil.test/api/remap/1.2/entity/product/{ID}",        # user info
    f"https://user:pw@ms.test/api/remap/1.2/entity/product/{ID}",
    f"https://:@ms.test/api/remap/1.2/entity/product/{ID}",
    f"https://evil.test\\@ms.test/api/remap/1.2/entity/product/{ID}",      # backslash
    f"https://ms.test\\.evil.test/api/remap/1.2/entity/product/{ID}",
    f"{BASE}/entity/product\\..\\..\\admin",
    f"{BASE}/../../admin",                                                   # climbing out
    f"{BASE}/entity/./product/{ID}",
    f"{BASE}//entity/product/{ID}",                                          # empty segment
    f"{BASE}/entity/product/%2e%2e/%2e%2e/admin",                            # encoded traversal
    f"{BASE}/entity/%2E%2E/admin",
    f"{BASE}/entity/product/..%2f..%2fadmin",
    f"{BASE}/entity/product/%252e%252e/admin",                               # double encoded
    f"{BASE}/entity/product/%5c..%5cadmin",
    f"{BASE}/entity/product/{ID}#fragment",
    f"{BASE}/entity/product/{ID}\n",                                         # urlsplit drops these
    f"{BASE}/entity/pro\tduct/{ID}",
    f"{BASE}/entity/product/{ID}\x00",
    f"{BASE}/entity/product/ {ID}",
    f"https://ms.tеst/api/remap/1.2/entity/product/{ID}",                   # Cyrillic е in the host
    f"{BASE}/entity/product/ｘ",                                             # fullwidth
    "https://ms.test/api/remap/1.2evil/entity/product",                      # prefix trick
    "https://ms.test/api/remap/1.1/entity/product",                          # another API
    f"{BASE}",                                                               # the base itself
    "https://online.moysklad.ru/app/#good/edit?id=abc",                      # a UI link (uuidHref)
    f"https://ms.test/api/remap/1.2/entity/product/{ID}" + "/x" * 3000,     # absurdly long
])
def test_everything_else_is_refused(href):
    assert href_relative(href, BASE) is None


def test_entity_ref_names_the_document_and_refuses_anything_else():
    assert entity_ref(f"{BASE}/entity/product/{ID}", BASE) == ("product", ID)
    assert entity_ref(f"{BASE}/entity/customerorder/o1", BASE) == ("customerorder", "o1")
    for href in (f"{BASE}/entity/product", f"{BASE}/entity/product/{ID}/positions",
                 f"{BASE}/entity/product/{ID}?expand=positions", f"{BASE}/report/stock/all/{ID}",
                 f"{BASE}/entity/product/x;archived=true", f"{BASE}/entity/product/x=y",
                 f"{BASE}/entity/product/" + "a" * 65, f"https://evil.test/api/remap/1.2/entity/product/{ID}"):
        assert entity_ref(href, BASE) is None, href
