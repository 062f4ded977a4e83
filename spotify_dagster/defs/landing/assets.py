"""The hops before Bronze, shown in the asset graph so lineage starts at Kafka.

Dagster does not materialize these (the producer and the consumer service do); they are
external assets, and the sensor records what it sees of the bucket as observations.
"""

import dagster as dg

from spotify_dagster.environment import Environment

KAFKA_TOPIC = dg.AssetKey(["landing", "kafka_plays"])
LANDED_OBJECTS = dg.AssetKey(["landing", "landed_objects"])
OWNERS = ["team:data-platform"]


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=build_landing_specs(Environment.from_env()))


def build_landing_specs(env: Environment) -> list[dg.AssetSpec]:
    return [
        dg.AssetSpec(
            KAFKA_TOPIC,
            group_name="landing",
            kinds={"kafka"},
            owners=OWNERS,
            description=f"Kafka topic `{env.kafka_topic}`: one JSON play event per message, "
            "keyed by user_id, produced by `streaming.producer`.",
        ),
        dg.AssetSpec(
            LANDED_OBJECTS,
            deps=[KAFKA_TOPIC],
            group_name="landing",
            kinds={"s3"},
            owners=OWNERS,
            description=f"Gzip NDJSON objects in s3://{env.s3_bucket}/{env.landing_root}/ "
            f"and /{env.quarantine_root}/, written by `streaming.consumer` per partition "
            "batch under deterministic keys.",
        ),
    ]
