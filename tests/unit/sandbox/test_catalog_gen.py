"""The generated catalog: deterministic, the promised shape, and cheap at 100k products."""
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from integrations.sandbox.catalog_gen import (
    ARCHIVED, NO_ARTICLE, NULL_STORE, PRODUCT, STORE, VARIANT, Catalog, IdCodec, ean13, format_msk, generate,
    is_uuid, parse_msk,
)

REPO = Path(__file__).resolve().parents[3]


def fingerprint(cat: Catalog) -> tuple:
    return (
        [cat.id_of(PRODUCT, i) for i in range(cat.n_products)],
        [cat.p_name(i) for i in range(cat.n_products)],
        [cat.p_external_code(i) for i in range(cat.n_products)],
        list(cat.p_price), list(cat.p_updated), bytes(cat.p_flags),
        [cat.v_code(j) for j in range(cat.n_variants)],
        list(cat.stock_tables[PRODUCT].stock), list(cat.stock_tables[VARIANT].reserve),
        sorted(cat.null_reserve.items()),
    )


def test_same_seed_gives_the_same_catalog():
    assert fingerprint(generate(300, seed=7)) == fingerprint(generate(300, seed=7))


def test_other_seed_gives_another_catalog():
    a, b = generate(300, seed=1), generate(300, seed=2)
    assert a.id_of(PRODUCT, 0) != b.id_of(PRODUCT, 0)
    assert list(a.p_price) != list(b.p_price)


def test_default_shape():
    cat = generate()  # the management command's demo catalog
    summary = cat.summary()
    assert summary["products"] == 2000
    assert summary["products_with_variants"] == 500
    assert 1000 <= summary["variants"] <= 2000            # 2..4 each, 3 on average
    assert 30 <= summary["folders"] <= 50
    assert [s.name for s in cat.stores] == ["Основной склад", "Склад Москва", "Склад СПб"]
    assert 0 < summary["archived_products"] < 100
    # nested folders, with pathName of the parents
    depths = {f.full_path.count("/") for f in cat.folders}
    assert depths == {0, 1, 2}
    # some products have no article (their code is then the SKU)
    no_article = [i for i in range(cat.n_products) if cat.p_flags[i] & NO_ARTICLE]
    assert no_article and cat.p_article(no_article[0]) == "" and cat.p_sku(no_article[0]) == cat.p_code(no_article[0])
    # a couple of reserves without a store
    assert len(cat.null_reserve) >= 2


def test_codes_are_unique_and_barcodes_valid():
    cat = generate(1000)
    skus = [cat.p_sku(i) for i in range(cat.n_products) if not cat.p_vcount[i]]
    skus += [cat.v_code(j) for j in range(cat.n_variants)]
    assert len(skus) == len(set(skus))
    ext = [cat.p_external_code(i) for i in range(cat.n_products)]
    assert len(set(ext)) == len(ext)
    code = cat.p_barcode(5)
    assert len(code) == 13 and ean13(code[:12]) == code


def test_variant_names_and_price_fallback():
    cat = generate(300)
    j = next(j for j in range(cat.n_variants) if cat.v_price[j] == 0)
    p = cat.v_product[j]
    assert cat.v_name(j).startswith(cat.p_name(p) + " (")
    assert cat.v_effective_price(j) == cat.p_price[p]


def test_ids_round_trip_and_ui_ids_differ():
    cat = generate(100)
    pid = cat.id_of(PRODUCT, 42)
    assert is_uuid(pid)
    assert cat.decode(pid) == (PRODUCT, 42, False)
    ui = cat.ui_id_of(PRODUCT, 42)
    assert ui != pid and cat.decode(ui) == (PRODUCT, 42, True)
    assert cat.resolve(cat.id_of(STORE, 1)) == (STORE, 1)
    assert cat.resolve("00000000-0000-0000-0000-000000000000") is None
    codec = IdCodec(1, PRODUCT)
    assert all(codec.decode(codec.encode(i)) == i for i in (0, 1, 99_999, 2**40))


def test_msk_dates():
    ms = parse_msk("2026-11-20 10:45:16.123")
    assert format_msk(ms) == "2026-11-20 10:45:16.123"
    assert parse_msk("2026-11-20 10:45") == parse_msk("2026-11-20 10:45:00")
    assert parse_msk("2026-11-20 10:45:16.1") == ms - 23
    for bad in ("2026-11-20", "2026-13-01 00:00:00", "20.11.2026 10:00", "2026-11-20T10:45:16"):
        with pytest.raises(ValueError):
            parse_msk(bad)


def test_mutations_bump_updated_and_version():
    cat = generate(100)
    i = next(i for i in range(100) if not cat.p_flags[i] & ARCHIVED)
    before, version = cat.p_updated[i], cat.version
    cat.update_product(i, name="Новое имя", salePrice=123400)
    assert cat.p_name(i) == "Новое имя" and cat.p_price[i] == 123400
    assert cat.p_updated[i] > before and cat.version > version
    touched = cat.touch_products(5)
    assert len(set(touched)) == 5
    with pytest.raises(ValueError):
        cat.update_product(i, colour="red")


def test_set_stock_records_a_change():
    cat = generate(50)
    i = next(i for i in range(50) if not cat.p_vcount[i])
    cat.set_stock(PRODUCT, i, 0, stock=7, reserve=2)
    assert cat.cell(PRODUCT, i, 0) == (7.0, 2.0, 0.0, True)
    assert (PRODUCT, i, 0) in cat.changes
    cat.set_stock(PRODUCT, i, NULL_STORE, reserve=3)
    assert cat.cell(PRODUCT, i, NULL_STORE)[1] == 3.0


def test_100k_products_generate_small():
    """Measured in a fresh interpreter so the peak RSS is the sandbox's alone. A generous bound:
    the numbers are printed for the record (generation time belongs to the benchmarks); the
    assert only catches an order-of-magnitude regression in memory."""
    script = textwrap.dedent("""
        import json, resource, time
        t = time.perf_counter()
        from integrations.sandbox.moysklad import MoySkladEmulator
        em = MoySkladEmulator(products=100_000, variant_share=0.2, variants_per_product=3, rate_limit=False)
        gen = time.perf_counter() - t
        # the heaviest single answer: every stock cell of every item
        rows = em._stock_full(True, "stock", False, None, None)
        body = ("[" + ",".join(rows) + "]").encode()
        print(json.dumps({"summary": em.catalog.summary(), "seconds": gen, "rows": len(rows),
                          "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print("100k products:", result)
    assert result["summary"]["products"] == 100_000
    assert 55_000 <= result["summary"]["variants"] <= 65_000
    assert result["rows"] > 100_000
    assert result["maxrss_mb"] < 512
