"""Object-store emulators for tests, on 127.0.0.1 with free ports, one per test session:
moto's ThreadedMotoServer (S3) and gcp-storage-emulator (GCS), both from the package index.

The clients find them through their own environment variables (``AWS_ENDPOINT_URL``,
``STORAGE_EMULATOR_HOST``), set for the session, so subprocesses (the CLI, build workers)
reach them too. Import the fixtures into a test module:
``from tests.storage_fixtures import gcs_bucket, s3_bucket  # noqa: F401``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest

S3_BUCKET = "iad-bucket"
GCS_BUCKET = "iad-gbucket"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _serving(server: Any, env: dict[str, str]) -> Iterator[None]:
    """Run ``server`` with ``env`` set (and restored afterwards)."""
    old = {k: os.environ.get(k) for k in env}
    server.start()
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()


@pytest.fixture(scope="session")
def s3_bucket() -> Iterator[str]:
    """``s3://iad-bucket`` on a moto server at 127.0.0.1 (session-wide)."""
    pytest.importorskip("s3fs")
    moto_server = pytest.importorskip("moto.server")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    with _serving(server, env):
        import boto3

        boto3.client("s3").create_bucket(Bucket=S3_BUCKET)
        yield f"s3://{S3_BUCKET}"


@pytest.fixture(scope="session")
def gcs_bucket() -> Iterator[str]:
    """``gs://iad-gbucket`` on gcp-storage-emulator at 127.0.0.1 (session-wide)."""
    pytest.importorskip("gcsfs")
    emulator = pytest.importorskip("gcp_storage_emulator.server")
    logging.getLogger("gcp_storage_emulator").setLevel(logging.ERROR)
    port = free_port()
    server = emulator.create_server("127.0.0.1", port, in_memory=True, default_bucket=GCS_BUCKET)
    # gcsfs probes for hierarchical-namespace buckets, which the emulator does not answer:
    # without this each bucket call stalls for 60 s.
    env = {
        "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}",
        "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
    }
    with _serving(server, env):
        yield f"gs://{GCS_BUCKET}"
