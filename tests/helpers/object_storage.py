"""An S3-compatible server of a test's own: moto's server mode on loopback, checking signatures (an IAM user's key
is the only one it accepts), stopped when the test is done."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import boto3
import httpx

from tests.helpers import processes


@dataclass(frozen=True)
class S3Server:
    endpoint: str  # http://127.0.0.1:<port>
    key_id: str
    secret: str
    client: object  # a boto3 S3 client signed with the key

    def environment(self, secret: str | None = None) -> dict[str, str]:
        """What a user sets to reach it: the AWS SDKs' variables (another secret for a wrong one)."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": self.key_id,
                "AWS_SECRET_ACCESS_KEY": secret or self.secret, "AWS_REGION": "us-east-1"}


@contextmanager
def s3_server(bucket: str = "lake") -> Iterator[S3Server]:
    """Start the server with one bucket and a user allowed everything; yields how to reach it."""
    port = processes.free_port()
    # the first calls (creating the user, its policy and its key) go unsigned; every later one must be signed
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="3")
    endpoint = f"http://127.0.0.1:{port}"
    with processes.started([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
        deadline = time.monotonic() + 60
        while not _answers(port):
            assert time.monotonic() < deadline, "moto's server did not listen within 60 s"
            time.sleep(0.1)
        anyone = {"endpoint_url": endpoint, "region_name": "us-east-1", "aws_access_key_id": "anyone",
                  "aws_secret_access_key": "anyone"}
        iam = boto3.client("iam", **anyone)
        iam.create_user(UserName="reverie")
        iam.put_user_policy(UserName="reverie", PolicyName="everything", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName="reverie")["AccessKey"]
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
        client.create_bucket(Bucket=bucket)
        yield S3Server(endpoint, key["AccessKeyId"], key["SecretAccessKey"], client)


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return httpx.get(f"http://127.0.0.1:{port}/moto-api/", timeout=5).status_code < 500
    except (OSError, httpx.HTTPError):
        return False
