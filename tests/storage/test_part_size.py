"""Part sizes: any file up to 1 TiB (and on to S3's 5 TiB) fits in 10,000 parts."""

from __future__ import annotations

import pytest

from winslow import defaults
from winslow.api.routes.files import MAX_UPLOAD_BYTES, part_count, part_length
from winslow.storage.objects import choose_part_size

MIB = 1024 * 1024
TIB = 1024**4
FIVE_MIB = 5 * MIB  # S3's smallest part other than the last
FIVE_GIB = 5 * 1024**3  # S3's largest part
DEFAULT_LIMIT = defaults.MULTIPART_CHUNK_BYTES * defaults.MULTIPART_MAX_PARTS


def test_one_tebibyte_fits_in_ten_thousand_parts_of_105_mib() -> None:
    part = choose_part_size(TIB)
    assert part == 105 * MIB
    assert part_count(TIB, part) == 9_987
    assert part_count(TIB + 1, choose_part_size(TIB + 1)) <= defaults.MULTIPART_MAX_PARTS


@pytest.mark.parametrize(
    "size",
    [
        0,
        1,
        FIVE_MIB,
        DEFAULT_LIMIT - 1,
        DEFAULT_LIMIT,
        DEFAULT_LIMIT + 1,
        105 * MIB * 10_000,
        105 * MIB * 10_000 + 1,
        TIB - 1,
        TIB,
        TIB + 1,
        MAX_UPLOAD_BYTES,
    ],
)
def test_every_size_fits_and_parts_are_whole_mib_within_s3_limits(size: int) -> None:
    part = choose_part_size(size)
    count = part_count(size, part)
    assert 1 <= count <= defaults.MULTIPART_MAX_PARTS
    assert part * count >= size
    assert part % MIB == 0
    assert FIVE_MIB <= part <= FIVE_GIB
    assert sum(part_length(n, part, size) for n in range(1, count + 1)) == size
    assert part_length(count, part, size) > 0 or size == 0


def test_the_default_part_holds_up_to_160_gib_then_grows_by_a_mib() -> None:
    assert choose_part_size(DEFAULT_LIMIT) == defaults.MULTIPART_CHUNK_BYTES
    assert part_count(DEFAULT_LIMIT, defaults.MULTIPART_CHUNK_BYTES) == 10_000
    assert choose_part_size(DEFAULT_LIMIT + 1) == defaults.MULTIPART_CHUNK_BYTES + MIB


def test_the_part_is_the_smallest_whole_mib_that_fits() -> None:
    for size in (TIB, TIB + 1, 3 * TIB + 12345, MAX_UPLOAD_BYTES):
        part = choose_part_size(size)
        assert part_count(size, part - MIB) > defaults.MULTIPART_MAX_PARTS


def test_negative_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        choose_part_size(-1)


def test_an_empty_file_is_one_empty_part() -> None:
    assert part_count(0, choose_part_size(0)) == 1
    assert part_length(1, choose_part_size(0), 0) == 0
