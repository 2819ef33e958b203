"""A local S3-compatible server (moto's server mode) for the S3 tests.

Import the fixture into a test module with
``from s3_fixture import s3_server_fixture  # noqa: F401``.  It starts
``moto.server.ThreadedMotoServer`` on a free localhost port (once per test
session), sets fake AWS credentials, and creates a fresh bucket per test.
No real network is used: every client gets the localhost endpoint, either
through ``storage_options`` or through ``AWS_ENDPOINT_URL`` where a test sets it.
"""

from __future__ import annotations

import socket
import uuid

import attrs
import pytest

FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


@attrs.frozen
class S3Server:
    endpoint: str
    bucket: str

    @property
    def storage_options(self) -> dict:
        """fsspec/s3fs options reaching this server."""
        return {"client_kwargs": {"endpoint_url": self.endpoint}}

    def fs(self):
        import s3fs

        return s3fs.S3FileSystem(client_kwargs={"endpoint_url": self.endpoint}, skip_instance_cache=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_SERVER: dict = {}


def moto_endpoint() -> str:
    """Start the moto server once per process (stopped at exit); its URL."""
    if "url" not in _SERVER:
        import atexit
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no per-request log lines

        port = _free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        atexit.register(server.stop)
        _SERVER.update(url=f"http://127.0.0.1:{port}", server=server)
    return _SERVER["url"]


@pytest.fixture(name="s3_server")
def s3_server_fixture(monkeypatch: pytest.MonkeyPatch) -> S3Server:
    endpoint = moto_endpoint()
    for k, v in FAKE_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    import boto3

    bucket = f"tao-automl-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    return S3Server(endpoint=endpoint, bucket=bucket)
