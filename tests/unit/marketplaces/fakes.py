"""A respx-backed stand-in for the three marketplaces: records what each was told and answers
like the real APIs (per-item results, unknown keys, canned failures)."""
from __future__ import annotations

import json
from collections import defaultdict

import httpx
import respx

from .conftest import OZON, WB, WB_CONTENT, YM


class FakeMarketplaces:
    def __init__(self, mock: respx.MockRouter):
        self.ozon_unknown: set[str] = set()
        self.ozon_too_frequent: set[str] = set()
        self.wb_unknown: set[int] = set()
        self.ym_unknown: set[str] = set()
        self.cards: list[dict] = []
        self.fail: dict[str, list[httpx.Response]] = defaultdict(list)  # canned answers, first come first out
        self.ozon: dict[tuple[str, int], int] = {}
        self.wb: dict[tuple[int, int], int] = {}
        self.ym: dict[tuple[str, int], int] = {}
        self.calls: dict[str, list[list]] = defaultdict(list)  # system -> batches as sent
        mock.post(f"{OZON}/v2/products/stocks").mock(side_effect=self._ozon)
        mock.put(url__regex=rf"{WB}/api/v3/stocks/(?P<wh>\d+)").mock(side_effect=self._wb)
        mock.post(f"{WB_CONTENT}/content/v2/get/cards/list").mock(side_effect=self._cards)
        mock.post(f"{YM}/v3/businesses/10/offers/stocks/update").mock(side_effect=self._ym)

    def _canned(self, system):
        return self.fail[system].pop(0) if self.fail[system] else None

    def _ozon(self, request):
        items = json.loads(request.content)["stocks"]
        self.calls["ozon"].append(items)
        if (canned := self._canned("ozon")) is not None:
            return canned
        result = []
        for item in items:
            key, wh = item["offer_id"], item["warehouse_id"]
            if key in self.ozon_unknown:
                result.append({"offer_id": key, "warehouse_id": wh, "updated": False,
                               "errors": [{"code": "offer_id_not_found", "message": "Product not found"}]})
            elif key in self.ozon_too_frequent:
                result.append({"offer_id": key, "warehouse_id": wh, "updated": False,
                               "errors": [{"code": "TOO_MANY_REQUESTS", "message": "Stock is updated too frequently"}]})
            else:
                self.ozon[(key, wh)] = item["stock"]
                result.append({"offer_id": key, "warehouse_id": wh, "updated": True, "errors": []})
        return httpx.Response(200, json={"result": result})

    def _wb(self, request, wh):
        items = json.loads(request.content)["stocks"]
        self.calls["wildberries"].append(items)
        if (canned := self._canned("wildberries")) is not None:
            return canned
        bad = [i for i in items if i["chrtId"] in self.wb_unknown]
        if bad:
            return httpx.Response(409, json=[{"code": "NotFound", "message": "Not found",
                                              "data": [{"sku": "", **i} for i in bad]}])
        for i in items:
            self.wb[(int(wh), i["chrtId"])] = i["amount"]
        return httpx.Response(204)

    def _cards(self, request):
        cursor = json.loads(request.content)["settings"]["cursor"]
        self.calls["wildberries-content"].append([cursor])
        ordered = sorted(self.cards, key=lambda c: (c["updatedAt"], c["nmID"]))
        if "nmID" in cursor:
            ordered = [c for c in ordered if (c["updatedAt"], c["nmID"]) > (cursor["updatedAt"], cursor["nmID"])]
        elif "updatedAt" in cursor:
            ordered = [c for c in ordered if c["updatedAt"] >= cursor["updatedAt"]]
        page = ordered[:cursor["limit"]]
        last = page[-1] if page else {"updatedAt": cursor.get("updatedAt", ""), "nmID": cursor.get("nmID", 0)}
        return httpx.Response(200, json={"cards": page, "cursor": {"updatedAt": last["updatedAt"],
                                                                   "nmID": last["nmID"], "total": len(page)}})

    def _ym(self, request):
        items = json.loads(request.content)["skuItems"]
        self.calls["yandex_market"].append(items)
        if (canned := self._canned("yandex_market")) is not None:
            return canned
        bad = [i for i in items if i["sku"] in self.ym_unknown]
        if bad:
            return httpx.Response(400, json={"status": "ERROR", "errors": [
                {"code": "OFFER_NOT_FOUND", "message": f"offer {i['sku']} not found", "sku": i["sku"]} for i in bad]})
        for i in items:
            self.ym[(i["sku"], i["partnerWarehouseId"])] = i["count"]
        return httpx.Response(200, json={"status": "OK"})

    def calls_to(self, system: str) -> int:
        return len(self.calls[system])

    def reset_calls(self) -> None:
        self.calls.clear()
