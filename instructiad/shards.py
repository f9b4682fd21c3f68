"""Writing records to Parquet shards as they fill, so memory stays flat."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from instructiad.features import FEATURES
from instructiad.manifest import sha256_file

SCHEMA = FEATURES.arrow_schema  # carries the Features in its "huggingface" metadata
ROWS_PER_GROUP = 100  # as `datasets` does for image data: small row groups stream well
MAX_GROUP_BYTES = 64 * 2**20
DEFAULT_SHARD_BYTES = 500 * 2**20  # the Hub's usual shard size
_STATISTICS = ["id", "source", "category", "label", "defect_type"]  # not for image bytes


def _leaf_columns(schema: pa.Schema) -> list[str]:
    """Parquet column paths of every leaf of ``schema`` (e.g. ``"image.bytes"``)."""
    buffer = pa.BufferOutputStream()
    pq.write_table(schema.empty_table(), buffer)
    parquet_schema = pq.ParquetFile(pa.BufferReader(buffer.getvalue())).schema
    return [parquet_schema.column(i).path for i in range(len(parquet_schema))]


_COMPRESSION = {path: "none" if path in ("image.bytes", "mask.bytes") else "snappy" for path in _leaf_columns(SCHEMA)}
"""Image and mask bytes are compressed already; compressing them again costs time for nothing."""


class ShardWriter:
    """Writes the records of one split to ``<folder>/<split>-NNNNN-of-NNNNN.parquet``.

    Records are encoded with :data:`FEATURES`, grouped in row groups of at most
    :data:`ROWS_PER_GROUP` rows (or :data:`MAX_GROUP_BYTES`), and a new shard starts once a
    shard holds ``max_shard_bytes`` of image and mask bytes. Decisions depend only on the records, so
    the same records always give the same files.
    """

    def __init__(self, folder: Path, split: str, max_shard_bytes: int = DEFAULT_SHARD_BYTES) -> None:
        self.folder = folder
        self.split = split
        self.max_shard_bytes = max_shard_bytes
        self.num_rows = 0
        self.num_bytes = 0  # Arrow (uncompressed) bytes, as dataset_info reports them
        self._rows: list[dict] = []
        self._group_bytes = 0  # image and mask bytes buffered
        self._writer: pq.ParquetWriter | None = None
        self._shard_bytes = 0
        self._shards: list[Path] = []
        # Each finished shard is hashed on a helper thread (hashlib and file reads release
        # the GIL), overlapping with the records of the next shard.
        self._hasher = ThreadPoolExecutor(1)
        self._hashes: list[Future[str]] = []
        self.checksums: dict[Path, tuple[str, int]] = {}
        """Final shard path -> (sha256, size in bytes), filled by :meth:`close`."""
        folder.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict) -> None:
        """Add one record (a dict matching ``FEATURES``)."""
        self._rows.append(FEATURES.encode_example(record))
        self._group_bytes += len(record["image"]["bytes"]) + len((record.get("mask") or {}).get("bytes") or b"")
        room = min(MAX_GROUP_BYTES, self.max_shard_bytes - self._shard_bytes)
        if len(self._rows) >= ROWS_PER_GROUP or self._group_bytes >= room:
            self._flush()

    def close(self) -> list[Path]:
        """Write what is buffered and give the shards their final names, in order."""
        self._flush()
        self._close_shard()
        total = len(self._shards)
        final = []
        for index, path in enumerate(self._shards):
            target = path.with_name(f"{self.split}-{index:05d}-of-{total:05d}.parquet")
            sha256 = self._hashes[index].result()
            path.rename(target)
            self.checksums[target] = (sha256, target.stat().st_size)
            final.append(target)
        self._hasher.shutdown()
        return final

    def _flush(self) -> None:
        if not self._rows:
            return
        table = pa.Table.from_pylist(self._rows, schema=SCHEMA)
        if self._writer is None:
            path = self.folder / f"{self.split}-{len(self._shards):05d}.parquet.partial"
            self._writer = pq.ParquetWriter(path, SCHEMA, compression=_COMPRESSION, write_statistics=_STATISTICS)
            self._shards.append(path)
        self._writer.write_table(table, row_group_size=len(self._rows))
        self.num_rows += table.num_rows
        self.num_bytes += table.nbytes
        self._shard_bytes += self._group_bytes
        self._rows, self._group_bytes = [], 0
        if self._shard_bytes >= self.max_shard_bytes:
            self._close_shard()

    def _close_shard(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._hashes.append(self._hasher.submit(sha256_file, self._shards[-1]))
            self._writer, self._shard_bytes = None, 0
