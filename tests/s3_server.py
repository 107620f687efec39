"""A moto server on 127.0.0.1 (random port) for tests that need S3 (or EMR) endpoints.

Import from any test module:

    from tests.s3_server import moto_server, storage_overrides

    with moto_server() as srv:
        srv.make_bucket("b")
        cfg = compose([f"paths.data_root=s3://b/data", *storage_overrides(srv)])

The server runs in a thread of the test process, so moto's in-process backends
(``srv.emr_backend(region)``) are the ones the HTTP endpoint serves: a test can change state
that the API cannot (e.g. an EMR step finishing). Its EMR endpoint files every request under
us-east-1 whatever the client's region, so tests tell their clusters apart by name or log URI.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Iterator

ACCESS_KEY = "testing"
SECRET_KEY = "testing"
REGION = "us-east-1"


@dataclass
class MotoServer:
    endpoint_url: str
    server: Any
    region: str = REGION

    def client(self, service: str, region: str | None = None) -> Any:
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint_url,
                            region_name=region or self.region,
                            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)

    def make_bucket(self, name: str) -> str:
        self.client("s3").create_bucket(Bucket=name)
        return name

    def emr_backend(self, region: str | None = None) -> Any:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.emr.models import emr_backends

        return emr_backends[DEFAULT_ACCOUNT_ID][region or self.region]


def start() -> MotoServer:
    """Start a moto server on a free loopback port (stop it with ``srv.server.stop()``)."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return MotoServer(endpoint_url=f"http://{host}:{port}", server=server)


@contextlib.contextmanager
def moto_server() -> Iterator[MotoServer]:
    srv = start()
    try:
        yield srv
    finally:
        srv.server.stop()


def storage_overrides(srv: MotoServer) -> list[str]:
    """Config overrides pointing dhs's storage layer at the server."""
    return [f"storage.s3_endpoint_url={srv.endpoint_url}", f"storage.s3_region={srv.region}",
            f"storage.aws_access_key_id={ACCESS_KEY}",
            f"storage.aws_secret_access_key={SECRET_KEY}"]


def configure_storage(srv: MotoServer) -> None:
    """Point this process's dhs storage layer at the server."""
    from dhs.io import storage

    storage.configure(srv.endpoint_url, srv.region, ACCESS_KEY, SECRET_KEY)
