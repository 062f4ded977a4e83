"""The landing sensor builds its S3 client once, not on every tick (issue #12: building a
boto3 client cost more than listing a few new objects)."""

from __future__ import annotations

from typing import Any

import pytest
from dagster_aws.s3 import S3Resource

from spotify_dagster.defs.landing import sensor


def test_ticks_share_one_client_per_resource_configuration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: list[str | None] = []

    def get_client(self: S3Resource) -> Any:
        built.append(self.endpoint_url)
        return object()

    monkeypatch.setattr(S3Resource, "get_client", get_client)
    monkeypatch.setattr(sensor, "_CLIENTS", {})
    one = S3Resource(endpoint_url="http://127.0.0.1:9001", region_name="us-east-1")
    same = S3Resource(endpoint_url="http://127.0.0.1:9001", region_name="us-east-1")
    other = S3Resource(endpoint_url="http://127.0.0.1:9002", region_name="us-east-1")
    first = sensor.tick_client(one)
    assert sensor.tick_client(one) is first
    assert sensor.tick_client(same) is first  # a new tick builds its resource anew
    assert sensor.tick_client(other) is not first  # another endpoint: its own client
    assert built == ["http://127.0.0.1:9001", "http://127.0.0.1:9002"]
