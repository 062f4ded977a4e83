"""The landing sensor builds its S3 client once, not on every tick (issue #12: building a
boto3 client cost more than listing a few new objects)."""

from __future__ import annotations

from typing import Any

import dagster as dg
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


@pytest.mark.integration
def test_ticks_evaluated_by_dagster_build_no_client_of_their_own(
    landing: Any, instance: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through Dagster's sensor evaluation, as the code server runs it: the resource is
    built for every tick, and dagster-aws's S3Resource made a boto3 client each time
    (three ticks, four clients) before the sensor asked for its cached one."""
    from dagster_aws.s3 import resources as aws_resources

    from spotify_dagster.defs.resources import build_resources
    from spotify_dagster.environment import Environment

    made: list[str | None] = []
    real = aws_resources.construct_s3_client

    def counted(*args: Any, **kwargs: Any) -> Any:
        made.append(kwargs.get("endpoint_url"))
        return real(*args, **kwargs)

    monkeypatch.setattr(aws_resources, "construct_s3_client", counted)
    monkeypatch.setattr(sensor, "_CLIENTS", {})
    resources = {"s3": build_resources(Environment.from_env())["s3"]}
    tick = sensor.build_landing_sensor(Environment.from_env())
    landing.land(0, 0, 5)
    cursor = None
    for _ in range(3):
        result = tick(
            dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources)
        )
        cursor = result.cursor
    assert cursor is not None and "partition=0" in cursor
    assert len(made) == 1, made
