"""Object storage: landed files under an s3:// path on any S3-compatible endpoint, listed and read by DuckDB's
httpfs. Credentials come from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) or a
named profile of ~/.aws, through the aws extension's credential chain: reverie.toml never holds them, and they live
only in a temporary secret of the connection while the files are read."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlsplit

from reverie.extensions import load_extension
from reverie.options import OptionError
from reverie.queries import literal, quoted

SCHEME = "s3://"
CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")  # the AWS SDKs' names, for S3-compatible servers


def is_remote(path: str) -> bool:
    """Whether a source's path is in object storage."""
    return path.startswith(SCHEME)


@dataclass(frozen=True)
class Storage:
    """Where the objects are served: an endpoint (omit: AWS, or $AWS_ENDPOINT_URL_S3 / $AWS_ENDPOINT_URL), a region
    (omit: $AWS_REGION or the profile's), a named profile, and how buckets are addressed (path or vhost)."""
    endpoint: str | None = None
    region: str | None = None
    profile: str | None = None
    url_style: str | None = None  # omit: "path" on an endpoint of one's own, "vhost" on AWS

    def __post_init__(self) -> None:
        if self.url_style not in (None, "path", "vhost"):
            raise OptionError(f"url_style = {self.url_style!r}: must be path or vhost")

    def secret(self, bucket: str) -> str:
        """The options of a DuckDB S3 secret for one bucket, credentials left to the credential chain."""
        options = {"type": "s3", "provider": "credential_chain", "chain": "env;config", "validation": "none",
                   "scope": f"{SCHEME}{bucket}"}
        endpoint = self.endpoint or next((os.environ[v] for v in ENDPOINT_VARIABLES if os.environ.get(v)), None)
        if endpoint:
            parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
            options |= {"endpoint": parts.netloc, "use_ssl": parts.scheme == "https",
                        "url_style": self.url_style or "path"}
        elif self.url_style:
            options["url_style"] = self.url_style
        if self.region:
            options["region"] = self.region
        if self.profile:
            options["profile"] = self.profile
        return ", ".join(f"{key} {value if isinstance(value, bool) else literal(value)}"
                         for key, value in options.items())

    @contextmanager
    def opened(self, con, path: str, source: str) -> Iterator[None]:
        """httpfs loaded and a temporary secret for the path's bucket while its objects are listed and read."""
        load_extension(con, "httpfs")
        load_extension(con, "aws")
        name = quoted(f"source_{source}")
        bucket = path.removeprefix(SCHEME).split("/", 1)[0]
        try:
            con.execute(f"create or replace temporary secret {name} ({self.secret(bucket)})")
            yield
        finally:
            con.execute(f"drop temporary secret if exists {name}")


def listed(con, pattern: str) -> list[tuple[str, int, datetime]]:
    """Each object a glob matches: its URL, size and when it was last written (UTC)."""
    rows = con.execute("select filename, size, last_modified from read_blob($pattern) order by filename",
                       {"pattern": pattern}).fetchall()
    return [(url, size, modified.astimezone(timezone.utc).replace(tzinfo=None)) for url, size, modified in rows]


def credentials() -> list[str]:
    """The credentials in the environment, so that no message repeats them."""
    return [os.environ[v] for v in CREDENTIAL_VARIABLES if os.environ.get(v)]
