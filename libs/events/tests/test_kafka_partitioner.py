"""The relays' partitioner puts every key where Kafka's default partitioner does."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner

from atlas_events.kafka import KeyPartitioner


def test_keys_land_on_the_default_partitioners_partition_even_once_forgotten() -> None:
    partitioner = KeyPartitioner(size=50)  # small: the memory is cleared along the way
    keys = [f"MUT-{i % 70}:logement".encode() for i in range(400)] + [b"", "é".encode()]
    for count in (1, 3, 6, 12):
        partitions = list(range(count))
        for key in keys:
            expected = DefaultPartitioner()(key, partitions, partitions)
            assert partitioner(key, partitions, partitions) == expected
    assert len(partitioner._known) <= 50


def test_a_record_without_key_goes_to_an_available_partition() -> None:
    partitioner = KeyPartitioner()
    chosen = {partitioner(None, [0, 1, 2, 3], [1, 3]) for _ in range(50)}
    assert chosen <= {1, 3}
    assert partitioner._known == {}
