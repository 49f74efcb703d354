"""Checks of a records directory: every record read (CRC), decoded against the schema,
counted, and every shard's sha256 compared with the manifest. Generic: no dataset knowledge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tfrecords_tools.reader import ShardError, iter_records, read_manifest, shard_files
from tfrecords_tools.schema import Schema, SchemaError
from tfrecords_tools.writer import TMP_SUFFIX, sha256_file


@dataclass
class ShardCheck:
    """The outcome for one shard: ``errors`` empty when it is sound."""

    name: str
    records: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class VerifyReport:
    """All shard checks plus directory-level problems (missing/extra/temporary shards)."""

    records_dir: Path
    shards: list[ShardCheck] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and all(not s.errors for s in self.shards)

    @property
    def total_records(self) -> int:
        return sum(s.records for s in self.shards)

    def problems(self) -> list[str]:
        """One line per problem, each naming the shard (or file) concerned."""
        out = list(self.errors)
        for s in self.shards:
            out.extend(f"{s.name}: {e}" for e in s.errors)
        return out


def check_shard(path: Path, schema: Schema, expected: dict | None) -> ShardCheck:
    """Read and decode every record of ``path``; compare count and sha256 with ``expected``."""
    check = ShardCheck(path.name)
    try:
        for k, raw in enumerate(iter_records(path)):
            try:
                schema.decode(raw)
            except (SchemaError, ValueError) as exc:
                check.errors.append(f"record {k}: {exc}")
                break
            check.records += 1
    except ShardError as exc:  # DataLossError and friends, turned into one line
        check.errors.append(f"unreadable after {check.records} record(s): {exc.reason}")
    if expected is not None:
        if check.records != expected.get("records") and not check.errors:
            check.errors.append(f"{check.records} records, manifest says {expected.get('records')}")
        want = expected.get("sha256")
        if want and sha256_file(path) != want:
            check.errors.append("sha256 differs from the manifest (file changed or corrupted)")
    return check


def first_bad_shard(files: list[Path], schema: Schema) -> str | None:
    """One line naming the first of ``files`` that cannot be read and decoded, else None.

    For diagnosing a failed tf.data read (its DataLossError does not name the shard)."""
    for path in files:
        check = check_shard(path, schema, None)
        if check.errors:
            return (f"{path}: corrupt shard ({check.errors[0]}); check the directory with "
                    f"`tfrecords-tools verify {path.parent}`")
    return None


def verify_dir(records_dir: str | Path) -> VerifyReport:
    """Verify a records directory written with a manifest (``schema`` + ``shards`` keys)."""
    from tqdm import tqdm

    root = Path(records_dir)
    report = VerifyReport(root)
    try:
        manifest = read_manifest(root)
        schema = Schema.from_json(manifest["schema"])
    except (FileNotFoundError, ValueError, KeyError) as exc:
        report.errors.append(f"{root}: {exc}")
        return report
    listed: dict[str, dict] = manifest.get("shards", {})
    on_disk = {p.name: p for p in shard_files(root)}
    for name in sorted(set(listed) - set(on_disk)):
        report.errors.append(f"{name}: listed in the manifest but missing")
    for name in sorted(set(on_disk) - set(listed)):
        report.errors.append(f"{name}: shard not listed in the manifest")
    for p in sorted(root.glob(f"*{TMP_SUFFIX}")):
        report.errors.append(f"{p.name}: leftover temporary file (interrupted write?)")
    show = None if len(on_disk) >= 4 else True  # None: a bar only on a terminal
    for name in tqdm(sorted(on_disk), desc="verify", unit="shard", disable=show):
        report.shards.append(check_shard(on_disk[name], schema, listed.get(name)))
    return report
