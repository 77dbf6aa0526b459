"""VenueSession: a kept resource is built once, rebuilt when retired or too old, closed when its last
user is done or the session closes, and never touched from another event loop."""

from __future__ import annotations

import asyncio

from primeguard.venues.session import VenueSession


class Res:
    built = 0

    def __init__(self) -> None:
        Res.built += 1
        self.n = Res.built
        self.closed = False

    async def aclose(self) -> None:
        self.closed = True


def test_kept_until_retired_then_closed_and_rebuilt() -> None:
    async def go() -> None:
        s = VenueSession()
        async with s.lease("x", Res, max_age_s=3600) as a:
            assert a is not None
            first = a.resource
        async with s.lease("x", Res, max_age_s=3600) as b:
            assert b is not None and b.resource is first and not first.closed
            b.retire()
        assert first.closed  # retired and no one uses it
        async with s.lease("x", Res, max_age_s=3600) as c:
            assert c is not None and c.resource is not first
            second = c.resource
        assert s.builds == {"x": 2}
        await s.aclose()
        assert second.closed and not s.usable()
        async with s.lease("x", Res, max_age_s=3600) as d:
            assert d is None  # closed: the caller uses its own

    asyncio.run(go())


def test_a_retired_resource_in_use_closes_when_its_last_user_is_done() -> None:
    async def go() -> None:
        s = VenueSession()
        async with s.lease("x", Res, max_age_s=3600) as a:
            assert a is not None
            async with s.lease("x", Res, max_age_s=3600) as b:
                assert b is not None and b.resource is a.resource
                b.retire()
            assert not a.resource.closed  # still read by the outer collection
            async with s.lease("x", Res, max_age_s=3600) as c:  # a new collection: a fresh one
                assert c is not None and c.resource is not a.resource
        assert a.resource.closed
        await s.aclose()

    asyncio.run(go())


def test_too_old_is_rebuilt_and_close_waits_for_users() -> None:
    async def go() -> None:
        s = VenueSession()
        async with s.lease("x", Res, max_age_s=0) as a:
            assert a is not None
        async with s.lease("x", Res, max_age_s=-1) as b:
            assert b is not None and b.resource is not a.resource
            assert a.resource.closed
            await s.aclose()
            assert not b.resource.closed  # in use: closed when this collection ends
        assert b.resource.closed

    asyncio.run(go())


def test_a_session_is_not_used_from_another_loop() -> None:
    async def make() -> VenueSession:
        return VenueSession()

    home = asyncio.new_event_loop()
    try:
        s = home.run_until_complete(make())

        async def elsewhere() -> object:
            async with s.lease("x", Res, max_age_s=3600) as got:
                return got

        assert asyncio.run(elsewhere()) is None
        assert s.builds == {} and not s.usable()
        home.run_until_complete(s.aclose())
    finally:
        home.close()


def test_an_unsound_resource_is_rebuilt() -> None:
    async def go() -> None:
        s = VenueSession()
        async with s.lease("x", Res, max_age_s=3600) as a:
            assert a is not None
        async with s.lease("x", Res, max_age_s=3600, sound=lambda r: True) as b:
            assert b is not None and b.resource is a.resource
        async with s.lease("x", Res, max_age_s=3600, sound=lambda r: False) as c:
            assert c is not None and c.resource is not a.resource
        assert a.resource.closed and s.builds == {"x": 2}
        await s.aclose()

    asyncio.run(go())
