"""A small HTTP client for the Reply simulator and the fixtures that start simulators, for the simulator's tests."""

from __future__ import annotations

from typing import Any

import urllib3

from local.stand_ins.reply_simulator import ReplySimulator

KEY = "test-key"  # the legacy key the simulators start with: user 1's, the default workspace's owner


class Api:
    """A small HTTP client bound to one simulator."""

    def __init__(self, simulator: ReplySimulator, http: urllib3.PoolManager) -> None:
        self.simulator = simulator
        self.http = http

    def call(
        self,
        method: str,
        path: str,
        *,
        key: str | None = KEY,
        json_body: Any = None,
        raw_body: bytes | None = None,
        headers: dict[str, str] | None = None,
        fields: dict[str, str] | None = None,
        user_id: str | int | None = None,
        email: str | None = None,
    ) -> urllib3.BaseHTTPResponse:
        """Send one request; the API key goes in a bearer Authorization header, `user_id` and `email` (the user a
        Master key acts as) in X-User-Id and X-User-Email."""
        all_headers = {"Authorization": "Bearer " + key} if key is not None else {}
        if user_id is not None:
            all_headers["X-User-Id"] = str(user_id)
        if email is not None:
            all_headers["X-User-Email"] = email
        all_headers.update(headers or {})
        return self.http.request(
            method,
            self.simulator.base_url + path,
            headers=all_headers,
            json=json_body,
            body=raw_body,
            fields=fields,
        )

    def archive(self, sequence_id: int | str, **kwargs: Any) -> urllib3.BaseHTTPResponse:
        """POST /v3/sequences/{id}/archive."""
        return self.call("POST", "/v3/sequences/" + str(sequence_id) + "/archive", **kwargs)

    def pause(self, sequence_id: int | str, **kwargs: Any) -> urllib3.BaseHTTPResponse:
        """POST /v3/sequences/{id}/pause."""
        return self.call("POST", "/v3/sequences/" + str(sequence_id) + "/pause", **kwargs)

    def bulk_archive(self, ids: Any, **kwargs: Any) -> urllib3.BaseHTTPResponse:
        """POST /v3/sequences/archive with {"ids": ids}."""
        return self.call("POST", "/v3/sequences/archive", json_body={"ids": ids}, **kwargs)

    def get(self, sequence_id: int | str, **kwargs: Any) -> urllib3.BaseHTTPResponse:
        """GET /v3/sequences/{id}."""
        return self.call("GET", "/v3/sequences/" + str(sequence_id), **kwargs)

    def list_sequences(self, **query: str) -> urllib3.BaseHTTPResponse:
        """GET /v3/sequences with query parameters."""
        return self.call("GET", "/v3/sequences", fields=query)

    def admin(self, method: str, path: str, json_body: Any = None) -> urllib3.BaseHTTPResponse:
        """Call a /__sim admin endpoint (no key)."""
        return self.call(method, "/__sim" + path, key=None, json_body=json_body)
