"""The checks of a pushed image, read from the registry alone: its facts report and its budget.

No engine: a build that reused every image reports them without a session.
"""

from __future__ import annotations

import functools

import anyio

from cargohold import interrupts
from cargohold.config import Config
from cargohold.image_facts import ImageFacts, compressed_size, read_image_facts
from cargohold.layer_listings import ListingStore
from cargohold.reference import Reference
from cargohold.registry import Registry
from cargohold.reuse import PushedImage


def _located(config: Config, image: PushedImage) -> tuple[Reference, int | None]:
    """Where a pushed image is, and its variant's budget."""
    svc = config.service(image.service)
    return Reference.parse(image.reference), svc.budget_for(svc.variant(image.variant)[1])


def cache_namespace(cache: str | None, image: Reference) -> str:
    """Where the stage cache of an image lives: ``project.cache``, else the image's own ``host[/namespace]`` (pure).

    An image is ``<host>[/<namespace>]/<service>``, as ``CacheEntry.for_image`` names it.
    """
    return cache or "/".join([image.registry, *image.repository.split("/")[:-1]])


async def size_against_budget(config: Config, image: PushedImage) -> tuple[int, int | None]:
    """(compressed size, budget) of a pushed image from its manifest alone: the budget check of a reused image."""
    ref, budget = _located(config, image)
    size = await anyio.to_thread.run_sync(compressed_size, Registry(ref.registry), ref.repository, str(ref.digest))
    return size, budget


async def image_facts(config: Config, image: PushedImage) -> ImageFacts:
    """The facts report of a pushed runtime image, against its variant's budget (read from the registry).

    Its layer listings are kept in the cache namespace, so a fresh runner reads them, not the layers.
    """
    ref, budget = _located(config, image)
    read = functools.partial(
        read_image_facts,
        Registry(ref.registry),
        ref.repository,
        ref.digest or image.variant,
        budget=budget,
        variant=image.variant,
        role="runtime",
        listings=ListingStore.in_namespace(cache_namespace(config.project.cache, ref)),
    )
    # A daemon thread: the report may wait for a listing a prefetch is still downloading, and an
    # interrupted run must not wait with it.
    return await interrupts.in_thread(read)
