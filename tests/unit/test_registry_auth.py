"""The registry client's token flow: one token per repository, sent up front once known (no network)."""

from __future__ import annotations

import httpx

from cargohold.registry import Credentials, _RegistryAuth, _scope


def _registry(seen: list[str]) -> httpx.MockTransport:
    """A registry that wants a bearer token scoped to the repository of each request."""

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        if request.url.path == "/token":
            return httpx.Response(200, json={"token": f"t:{request.url.params['scope']}"})
        repository = request.url.path.removeprefix("/v2/").split("/manifests/")[0]
        scope = f"repository:{repository}:pull"
        if request.headers.get("Authorization") == f"Bearer t:{scope}":
            return httpx.Response(200, json={})
        challenge = f'Bearer realm="http://reg.test/token",service="reg.test",scope="{scope}"'
        return httpx.Response(401, headers={"WWW-Authenticate": challenge})

    return httpx.MockTransport(handle)


def test_a_token_is_fetched_once_per_repository_and_then_sent_up_front() -> None:
    seen: list[str] = []
    auth = _RegistryAuth(Credentials("me", "not-a-real-token"))
    with httpx.Client(transport=_registry(seen), auth=auth) as client:
        for repository in ("team/a", "team/a", "team/b", "team/a"):
            assert client.get(f"http://reg.test/v2/{repository}/manifests/latest").status_code == 200
    assert seen == [
        "GET /v2/team/a/manifests/latest", "GET /token", "GET /v2/team/a/manifests/latest",
        "GET /v2/team/a/manifests/latest",
        "GET /v2/team/b/manifests/latest", "GET /token", "GET /v2/team/b/manifests/latest",
        "GET /v2/team/a/manifests/latest",
    ]  # fmt: skip


def test_the_scope_of_a_request_is_its_repository_and_the_one_it_mounts_from() -> None:
    assert _scope(httpx.URL("https://ghcr.io/v2/acme/app/manifests/v1")) == "acme/app"
    assert _scope(httpx.URL("https://ghcr.io/v2/acme/app/blobs/uploads/?mount=sha256:x&from=acme/cache")) == (
        "acme/app acme/cache"
    )
    assert _scope(httpx.URL("https://ghcr.io/v2/acme/app/tags/list?n=100")) == "acme/app"
