"""A small client for the OCI distribution API (what GHCR and Debian's docker-registry speak).

cargohold talks to registries directly, outside the engine, for what the
engine does not offer: asking whether a tag exists without pulling it,
pushing base images made from Debian packages, and (later) moving tags and
pruning cache entries. Registries on loopback are plain HTTP, like the
engine's own default; every other registry is HTTPS.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import functools
import hashlib
import io
import ipaddress
import json
import logging
import os
import re
import shutil
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Final

import httpx

from cargohold.docker_auth import docker_login
from cargohold.errors import RegistryError, RegistryUnreachableError

OCI_MANIFEST: Final = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX: Final = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG: Final = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP: Final = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST: Final = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST: Final = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES: Final = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST)

log = logging.getLogger(__name__)

_CHUNK: Final = 8 * 1024 * 1024
# host:port of registries spoken to in plain HTTP besides loopback (a LAN cache, a test host),
# comma-separated; the engine must be told the same in its engine.json ("http": true).
PLAIN_HTTP_VAR: Final = "CARGOHOLD_PLAIN_HTTP_REGISTRIES"


def is_loopback(host: str) -> bool:
    """True for localhost and 127.0.0.0/8 / ::1, with or without a port."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def sha256_digest(data: bytes) -> str:
    """The OCI digest of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


TRANSIENT_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504})
MAX_ATTEMPTS: Final = 4
MAX_RETRY_AFTER: Final = 30.0


def retry_delay(attempt: int, status: int | None, retry_after: str | None = None) -> float | None:
    """Seconds to wait before attempt ``attempt + 1``, or None when the failure is not worth retrying (pure).

    ``status`` None means the connection failed (reset, refused, timed out): transient. A 429 or
    503 with ``Retry-After`` waits that long (capped); otherwise back-off doubles from 0.5 s.
    """
    if attempt >= MAX_ATTEMPTS or (status is not None and status not in TRANSIENT_STATUSES):
        return None
    if retry_after is not None and retry_after.strip().isdigit():
        return min(float(retry_after.strip()), MAX_RETRY_AFTER)
    return float(0.5 * 2 ** (attempt - 1))


@dataclass(frozen=True)
class Credentials:
    """A user and a token for one registry; the token never appears in a repr, a log or an error."""

    username: str
    password: str = field(repr=False)


class _RegistryAuth(httpx.Auth):
    """Basic auth, or the token flow GHCR and Docker Hub use (``WWW-Authenticate: Bearer realm=…``).

    The header that answered a challenge is sent up front on later requests to the same
    repository (a token's scope is a repository), so an upload streamed from a file (which
    cannot be sent twice) goes out authorized the first time. One auth serves the threads
    of a shared client: the headers are plain strings, replaced whole.
    """

    def __init__(self, credentials: Credentials | None) -> None:
        self._credentials = credentials
        self._headers: dict[str, str] = {}  # scope (see _scope) → the header that answered its challenge

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        scope = _scope(request.url)
        if (header := self._headers.get(scope) or self._headers.get("")) is not None:
            request.headers["Authorization"] = header
        response = yield request
        challenge = response.headers.get("WWW-Authenticate", "")
        if response.status_code != httpx.codes.UNAUTHORIZED or not challenge:
            return
        scheme, _, params = challenge.partition(" ")
        if scheme.lower() == "basic" and self._credentials is not None:
            request.headers["Authorization"] = self._headers[""] = self._basic()  # basic: the whole host
            yield request
        elif scheme.lower() == "bearer":
            fields = dict(re.findall(r'(\w+)="([^"]*)"', params))
            token_request = httpx.Request(
                "GET", fields.get("realm", ""), params={k: v for k, v in fields.items() if k != "realm"}
            )
            if self._credentials is not None:
                token_request.headers["Authorization"] = self._basic()
            token_response = yield token_request
            token_response.read()
            body = token_response.json() if token_response.is_success else {}
            if token := body.get("token") or body.get("access_token"):
                request.headers["Authorization"] = self._headers[scope] = f"Bearer {token}"
                yield request

    def _basic(self) -> str:
        assert self._credentials is not None  # noqa: S101 - checked by the caller
        pair = f"{self._credentials.username}:{self._credentials.password}".encode()
        return "Basic " + base64.b64encode(pair).decode()


def _scope(url: httpx.URL) -> str:
    """What a bearer token of this request is scoped to: its repository, and the one a blob is mounted from."""
    path = url.path.removeprefix("/v2/")
    for marker in ("/manifests/", "/blobs/", "/tags/"):
        if marker in path:
            repository = path.split(marker, 1)[0]
            return f"{repository} {url.params.get('from', '')}".strip()
    return path


@dataclass(frozen=True)
class Registry:
    """One registry host, e.g. ``127.0.0.1:5000`` or ``ghcr.io``."""

    host: str
    timeout: float = 30.0
    credentials: Credentials | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        """The API root: plain HTTP on loopback (as the engine assumes) and where told, HTTPS elsewhere."""
        plain = {h.strip() for h in os.environ.get(PLAIN_HTTP_VAR, "").split(",") if h.strip()}
        scheme = "http" if is_loopback(self.host) or self.host in plain else "https"
        return f"{scheme}://{self.host}/v2"

    @contextlib.contextmanager
    def _client(self) -> Iterator[httpx.Client]:
        """The process's client for this host and credentials: its connections stay open between calls."""
        login = docker_login(self.host) if self.credentials is None else None  # `docker login`'s, when given none
        credentials = self.credentials or (Credentials(*login) if login else None)
        yield _shared_client(self.host, self.timeout, credentials)

    def ping(self) -> bool:
        """True when the registry answers its API root."""
        try:
            with self._client() as client:
                return client.get(f"{self.base_url}/").status_code in (200, 401)
        except httpx.HTTPError:
            return False

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        """The digest a tag (or digest) resolves to, or None when it does not exist."""
        url = f"{self.base_url}/{repository}/manifests/{reference}"
        with self._client() as client:
            resp = self._request(client, "HEAD", url, headers={"Accept": ", ".join(MANIFEST_TYPES)})
        if resp.status_code == httpx.codes.NOT_FOUND:
            return None
        _raise_for(resp, f"look up {repository}:{reference}")
        digest: str | None = resp.headers.get("Docker-Content-Digest")
        return digest

    def get_manifest(self, repository: str, reference: str) -> bytes:
        """The raw manifest bytes (so the digest of what was read can be checked)."""
        url = f"{self.base_url}/{repository}/manifests/{reference}"
        with self._client() as client:
            resp = self._request(client, "GET", url, headers={"Accept": ", ".join(MANIFEST_TYPES)})
        _raise_for(resp, f"read the manifest {repository}:{reference}")
        return resp.content

    def get_blob(self, repository: str, digest: str) -> bytes:
        """A blob's bytes, verified against its digest."""
        with self._client() as client:
            resp = self._request(client, "GET", f"{self.base_url}/{repository}/blobs/{digest}", follow=True)
        _raise_for(resp, f"read the blob {digest[:19]} of {repository}")
        if sha256_digest(resp.content) != digest:
            msg = f"the blob {digest} of {repository} does not match its digest"
            raise RegistryError(msg, "the registry storage is corrupt: delete and push the image again")
        return resp.content

    @contextlib.contextmanager
    def open_blob(self, repository: str, digest: str) -> Iterator[BinaryIO]:
        """A blob as a stream (a multi-GB layer never sits in memory); its digest is checked at the end."""
        with self._client() as client:
            try:
                stream = client.stream("GET", f"{self.base_url}/{repository}/blobs/{digest}", follow_redirects=True)
                with stream as resp:
                    if not resp.is_success:
                        resp.read()
                        _raise_for(resp, f"read the blob {digest[:19]} of {repository}")
                    reader = _DigestReader(resp.iter_bytes(_CHUNK))
                    yield io.BufferedReader(reader, buffer_size=_CHUNK)
                    reader.drain()
            except httpx.HTTPError as e:
                msg = f"registry {self.host} unreachable ({type(e).__name__}: {e})"
                raise RegistryUnreachableError(msg, "check the registry address and that it is running") from e
        if reader.digest() != digest:
            msg = f"the blob {digest} of {repository} does not match its digest"
            raise RegistryError(msg, "the registry storage is corrupt: delete and push the image again")

    def blob_exists(self, repository: str, digest: str) -> bool:
        """True when the repository holds the blob."""
        with self._client() as client:
            resp = self._request(client, "HEAD", f"{self.base_url}/{repository}/blobs/{digest}")
        return resp.status_code == httpx.codes.OK

    def push_blob(self, repository: str, digest: str, source: bytes | Path) -> bool:
        """Upload a blob unless the registry has it; True when it was uploaded."""
        if self.blob_exists(repository, digest):
            return False
        with self._client() as client:
            start = self._request(client, "POST", f"{self.base_url}/{repository}/blobs/uploads/")
            _raise_for(start, f"start an upload to {repository}")
            location = httpx.URL(start.headers["Location"])
            if not location.is_absolute_url:
                location = httpx.URL(self.base_url).join(str(location))
            location = location.copy_merge_params({"digest": digest})
            headers = {"Content-Type": "application/octet-stream"}
            if isinstance(source, Path):
                headers["Content-Length"] = str(source.stat().st_size)
            fresh = (lambda: source) if isinstance(source, bytes) else (lambda: _read_chunks(source))
            done = self._request(client, "PUT", str(location), body=fresh, headers=headers)
        _raise_for(done, f"upload the blob {digest[:19]} to {repository}")
        return True

    def mount_blob(self, repository: str, digest: str, source_repository: str) -> bool:
        """Link a blob another repository of this registry holds (no bytes move); False when refused.

        A registry that does not mount across repositories answers 202 and opens an
        upload instead; that upload is left to expire and the caller copies the blob.
        """
        if self.blob_exists(repository, digest):
            return True
        url = f"{self.base_url}/{repository}/blobs/uploads/"
        with self._client() as client:
            resp = self._request(client, "POST", url, params={"mount": digest, "from": source_repository})
        if resp.status_code == httpx.codes.CREATED:
            return True
        if resp.status_code == httpx.codes.ACCEPTED:
            return False
        _raise_for(resp, f"mount the blob {digest[:19]} into {repository}")
        return False

    def copy_blob(self, source: Registry, source_repository: str, repository: str, digest: str) -> None:
        """A blob of another registry (or one that refuses mounts), streamed through a temporary file."""
        if self.blob_exists(repository, digest):
            return
        with tempfile.NamedTemporaryFile(prefix="cargohold-blob-") as spool:
            with source.open_blob(source_repository, digest) as stream:
                shutil.copyfileobj(stream, spool, _CHUNK)
            spool.flush()
            self.push_blob(repository, digest, Path(spool.name))

    def put_manifest(self, repository: str, reference: str, manifest: bytes, media_type: str) -> str:
        """Write a manifest under a tag (or its digest); the digest the registry stored."""
        url = f"{self.base_url}/{repository}/manifests/{reference}"
        with self._client() as client:
            resp = self._request(client, "PUT", url, content=manifest, headers={"Content-Type": media_type})
        _raise_for(resp, f"write the manifest {repository}:{reference}")
        digest = resp.headers.get("Docker-Content-Digest") or sha256_digest(manifest)
        if digest != sha256_digest(manifest):
            msg = f"the registry stored {repository}:{reference} under {digest}, not the digest sent"
            raise RegistryError(msg, "the registry rewrote the manifest; report it with the registry's version")
        return digest

    def _request(
        self,
        client: httpx.Client,
        method: str,
        url: str,
        *,
        follow: bool = False,
        body: Callable[[], object] | None = None,
        **kwargs: object,
    ) -> httpx.Response:
        """One request, retried with bounded back-off on transient failures (``body`` makes a fresh body per try)."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            if body is not None:
                kwargs["content"] = body()
            try:
                resp = client.request(method, url, follow_redirects=follow, **kwargs)  # type: ignore[arg-type]
            except httpx.StreamConsumed:
                # A streamed body met an auth challenge: the auth now knows its header; send a fresh body.
                if body is None or attempt == MAX_ATTEMPTS:
                    raise
                continue
            except httpx.TransportError as e:
                if (delay := retry_delay(attempt, None)) is None:
                    msg = f"registry {self.host} unreachable after {attempt} tries ({type(e).__name__}: {e})"
                    raise RegistryUnreachableError(msg, "check the registry address and that it is running") from e
            except httpx.HTTPError as e:
                msg = f"registry {self.host} unreachable ({type(e).__name__}: {e})"
                raise RegistryUnreachableError(msg, "check the registry address and that it is running") from e
            else:
                delay = retry_delay(attempt, resp.status_code, resp.headers.get("Retry-After"))
                if resp.status_code not in TRANSIENT_STATUSES or delay is None:
                    return resp
            # Debug, not info: the outcome is what a person needs (a success, or an error naming the tries).
            log.debug("registry %s: %s %s failed (try %d), retrying in %.1f s", self.host, method, url, attempt, delay)
            time.sleep(delay)
        raise AssertionError("unreachable: the last try returns or raises")  # pragma: no cover

    def catalog(self, page_size: int = 100) -> list[str]:
        """Every repository name, sorted, following the ``Link`` pages (distribution caps ``n`` at 1000)."""
        names = self._pages(f"{self.base_url}/_catalog?n={page_size}", "repositories", "list the repositories")
        if names is None:
            msg = f"registry {self.host} does not list its repositories (no /v2/_catalog)"
            raise RegistryError(msg, "name the repositories instead: this registry (GHCR, Docker Hub) has no catalog")
        return sorted(names)

    def tags(self, repository: str, page_size: int = 100) -> list[str]:
        """The repository's tags, sorted, following the ``Link`` pages; [] for an unknown repository."""
        url = f"{self.base_url}/{repository}/tags/list?n={page_size}"
        return sorted(self._pages(url, "tags", f"list the tags of {repository}") or [])

    def delete_manifest(self, repository: str, digest: str) -> None:
        """Delete a manifest by digest, and so every tag of the repository pointing to it.

        A manifest already gone is not an error. The blobs stay on disk until the
        registry's own garbage collection (``docker-registry garbage-collect``).
        """
        if not digest.startswith("sha256:"):
            msg = f"delete_manifest takes a digest, not {digest!r}"
            raise ValueError(msg)
        url = f"{self.base_url}/{repository}/manifests/{digest}"
        with self._client() as client:
            resp = self._request(client, "DELETE", url)
        if resp.status_code == httpx.codes.NOT_FOUND:
            return
        if resp.status_code == httpx.codes.METHOD_NOT_ALLOWED:
            msg = f"registry {self.host} does not allow deleting {repository}@{digest[:19]} (HTTP 405)"
            raise RegistryError(msg, "enable deletes (distribution: storage.delete.enabled: true)")
        _raise_for(resp, f"delete {repository}@{digest[:19]}")

    def image_config(self, repository: str, reference: str) -> dict[str, Any]:
        """The image config JSON of a tag or digest; from an index, its linux/amd64 image's."""
        manifest: dict[str, Any] = json.loads(self.get_manifest(repository, reference))
        if manifest.get("mediaType") in (OCI_INDEX, DOCKER_LIST) or "manifests" in manifest:
            manifest = json.loads(self.get_manifest(repository, self._amd64(manifest, f"{repository}:{reference}")))
        config: dict[str, Any] = json.loads(self.get_blob(repository, manifest["config"]["digest"]))
        return config

    def _pages(self, url: str, key: str, what: str) -> list[str] | None:
        """The ``key`` lists of every page from ``url`` on; None when the first page is a 404."""
        items: list[str] = []
        seen: set[str] = set()
        with self._client() as client:
            next_url: str | None = url
            while next_url and next_url not in seen:
                seen.add(next_url)
                resp = self._request(client, "GET", next_url)
                if resp.status_code == httpx.codes.NOT_FOUND and not items:
                    return None
                _raise_for(resp, what)
                items += [str(item) for item in resp.json().get(key) or []]
                link = resp.links.get("next", {}).get("url")
                next_url = str(httpx.URL(self.base_url).join(link)) if link else None
        return items

    @staticmethod
    def _amd64(index: dict[str, Any], name: str) -> str:
        """The digest of an index's linux/amd64 manifest; RegistryError when it has none."""
        for entry in index.get("manifests", []):
            platform = entry.get("platform", {})
            if platform.get("os") == "linux" and platform.get("architecture") == "amd64":
                return str(entry["digest"])
        msg = f"the image index {name} has no linux/amd64 image"
        raise RegistryError(msg, "build and push the image for linux/amd64")


_CLIENTS: dict[tuple[str, float, Credentials | None], httpx.Client] = {}
_CLIENTS_LOCK: Final = threading.Lock()


def _shared_client(host: str, timeout: float, credentials: Credentials | None) -> httpx.Client:
    """One client per registry host, timeout and credentials, shared by every thread of the process.

    A build makes hundreds of small registry calls, many side by side (every package of a
    lockfile looked up at once). A client per call paid a new connection each time (and, on a
    TLS registry, a handshake and a token exchange); the shared client keeps its connections
    alive and its auth header. httpx clients are safe to share between threads.
    """
    key = (host, timeout, credentials)
    with _CLIENTS_LOCK:
        if (client := _CLIENTS.get(key)) is None:
            client = _CLIENTS[key] = httpx.Client(
                timeout=timeout, auth=_RegistryAuth(credentials), verify=_tls_context()
            )
            if len(_CLIENTS) == 1:
                atexit.register(_close_clients)
        return client


def _close_clients() -> None:
    with _CLIENTS_LOCK:
        for client in _CLIENTS.values():
            client.close()
        _CLIENTS.clear()


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context per process, as httpx makes it (SSL_CERT_FILE honoured); loading the CA store takes ~40 ms."""
    return httpx.create_ssl_context()


def _raise_for(resp: httpx.Response, what: str) -> None:
    if resp.is_success:
        return
    detail = resp.text.strip().replace("\n", " ")[:200]
    msg = f"could not {what}: HTTP {resp.status_code} {detail}"
    hint = {
        401: "log in: the registry wants credentials",
        403: "the credentials lack permission for this repository",
    }.get(resp.status_code, "check the registry's log")
    raise RegistryError(msg, hint)


class _DigestReader(io.RawIOBase):
    """A read-only stream over an iterator of chunks that hashes what passes through it."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""
        self._sha = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, out: Any) -> int:  # noqa: ANN401 - the buffer protocol has no precise type here
        while not self._buffer:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._sha.update(chunk)
            self._buffer = chunk
        n = min(len(out), len(self._buffer))
        out[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n

    def drain(self) -> None:
        """Read what the consumer left, so the digest covers the whole blob."""
        for chunk in self._chunks:
            self._sha.update(chunk)

    def digest(self) -> str:
        return "sha256:" + self._sha.hexdigest()


def _read_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            yield chunk
