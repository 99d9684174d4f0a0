"""OnecClient: the shop's 1C HTTP service (`/hs/stocks/list`), HTTP Basic with a 1C user. The base
client owns timeouts, retries and error mapping."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings

from integrations.http.client import BaseClient


def is_configured() -> bool:
    conf = settings.ONEC
    return bool(conf.get("BASE_URL") and conf.get("USER"))


class OnecClient(BaseClient):
    system = "1c"

    @classmethod
    def from_settings(cls, **kwargs) -> "OnecClient":
        conf = settings.ONEC
        return cls(conf["BASE_URL"], auth=(conf["USER"], conf.get("PASSWORD") or ""),
                   timeout=float(conf.get("TIMEOUT") or 60.0), headers={"Accept": "application/json"}, **kwargs)

    def auth_hint(self, status: int) -> str:
        return ("1C refused the credentials: check ONEC_USER and ONEC_PASSWORD (a 1C user with the right to "
                "call the HTTP service)")

    def stocks_list(self, *, changed_after: datetime | None = None) -> Any:
        """`GET /hs/stocks/list?format=json[&changedAfter=ISO]` → `{"stocks": [...]}` (decoded)."""
        params = {"format": "json"}
        if changed_after is not None:
            params["changedAfter"] = changed_after.isoformat(timespec="seconds")
        return self.get_json("/hs/stocks/list", params=params)
