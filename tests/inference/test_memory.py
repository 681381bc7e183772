"""The memory limits and the budget's accounting, without a server (pure pieces)."""

from __future__ import annotations

import asyncio
import zlib

import pytest
from pizza_inference.api.admission import Admission, body_limit
from pizza_inference.api.oip import INFLATE_PIECE_BYTES, inflate_into
from pizza_inference.errors import ServerBusyError
from pizza_inference.memory import (
    BASE64_IMAGE_BYTES,
    BODY_COPIES,
    BYTES_PER_PIXEL,
    DEFAULT_MODEL_BUDGET_BYTES,
    DEFAULT_ROUTER_BUDGET_BYTES,
    FORM_OVERHEAD_BYTES,
    MAX_IMAGE_BYTES,
    MIB,
    MemoryPool,
    Reservation,
    image_cost,
    infer_need_bytes,
    memory_limits,
)

pytestmark = pytest.mark.unit

UPLOAD_NEED = MAX_IMAGE_BYTES + FORM_OVERHEAD_BYTES


class TestMemoryLimits:
    def test_router_default(self) -> None:
        """The operator's budget for a 256 MiB router: every byte for bodies, three copies each."""
        limits = memory_limits(DEFAULT_ROUTER_BUDGET_BYTES, decodes_images=False, batch_images=64)
        assert limits.body_pool_bytes == 80 * MIB and limits.image_pool_bytes == 0
        assert limits.upload_bytes == UPLOAD_NEED  # one 10 MB image and its form
        assert limits.infer_bytes == 80 * MIB // BODY_COPIES  # 26.7 MiB, not 854 MiB
        assert limits.max_image_pixels == 0

    def test_model_server_split(self) -> None:
        """A 1 GiB cnn fallback (192 MiB budget): a quarter for bodies, the rest for images."""
        limits = memory_limits(192 * MIB, decodes_images=True, batch_images=32)
        assert limits.body_pool_bytes == 48 * MIB
        assert limits.image_pool_bytes == 144 * MIB
        assert limits.upload_bytes == UPLOAD_NEED
        assert limits.infer_bytes == 16 * MIB
        assert limits.max_image_pixels == 144 * MIB // BYTES_PER_PIXEL  # 18.9 MP

    def test_a_large_budget_gives_each_endpoint_what_it_needs(self) -> None:
        limits = memory_limits(6 * 1024 * MIB, decodes_images=True, batch_images=32)
        assert limits.infer_bytes == infer_need_bytes(32) == 32 * BASE64_IMAGE_BYTES + 64 * 1024
        assert limits.upload_bytes == UPLOAD_NEED
        assert limits.max_image_pixels >= 40_000_000

    @pytest.mark.parametrize("budget", [16 * MIB, 64 * MIB, 80 * MIB, 512 * MIB, 8192 * MIB])
    @pytest.mark.parametrize("decodes", [False, True])
    def test_one_request_at_its_limit_always_fits_alone(self, budget: int, decodes: bool) -> None:
        limits = memory_limits(budget, decodes_images=decodes, batch_images=32)
        for limit in (limits.upload_bytes, limits.infer_bytes, limits.other_bytes):
            assert 0 < BODY_COPIES * limit <= limits.body_pool_bytes
        assert limits.body_pool_bytes + limits.image_pool_bytes == budget

    def test_default_model_budget_takes_a_40_megapixel_image(self) -> None:
        limits = memory_limits(DEFAULT_MODEL_BUDGET_BYTES, decodes_images=True, batch_images=32)
        assert image_cost(8000, 5000) <= limits.image_pool_bytes

    @pytest.mark.parametrize("budget", [0, 1024, 16 * MIB - 1])
    def test_too_small_a_budget_is_refused(self, budget: int) -> None:
        with pytest.raises(ValueError, match="at least"):
            memory_limits(budget, decodes_images=False, batch_images=1)

    def test_image_cost(self) -> None:
        assert image_cost(100, 50) == 100 * 50 * BYTES_PER_PIXEL
        assert image_cost(0, 50) == 0


class TestBodyLimit:
    @pytest.mark.parametrize(
        ("path", "reason", "kind"),
        [
            ("/classify", "file_too_large", "upload"),
            ("/predict/spatial", "file_too_large", "upload"),
            ("/predict/standard", "file_too_large", "upload"),
            ("/ab-test/compare", "file_too_large", "upload"),
            ("/v2/models/pizza-classifier/infer", "request_too_large", "infer"),
            ("/v2/models/m/versions/1/infer", "request_too_large", "infer"),
            ("/v2/models/m/infer/x", "request_too_large", "other"),
            ("/health", "request_too_large", "other"),
        ],
    )
    def test_each_endpoint(self, path: str, reason: str, kind: str) -> None:
        limits = memory_limits(80 * MIB, decodes_images=False, batch_images=64)
        expected = {
            "upload": limits.upload_bytes,
            "infer": limits.infer_bytes,
            "other": limits.other_bytes,
        }
        found = body_limit(limits, path)
        assert (found.limit, found.reason) == (expected[kind], reason)

    def test_admission_answers(self) -> None:
        limits = memory_limits(16 * MIB, decodes_images=False, batch_images=1)
        pool = MemoryPool("bodies", limits.body_pool_bytes)
        admission = Admission(body_limit(limits, "/classify"), Reservation(pool))
        assert "has 99 bytes, more than" in admission.too_large(99).message
        assert "decompressed, passed" in admission.too_large(decompressed=True).message
        admission.hold(limits.upload_bytes)
        assert pool.in_use == BODY_COPIES * limits.upload_bytes
        other = Admission(body_limit(limits, "/classify"), Reservation(pool))
        with pytest.raises(ServerBusyError) as info:
            other.hold(limits.upload_bytes)
        assert info.value.status_code == 503
        assert info.value.headers() == {"Retry-After": "1"}
        assert info.value.body()["error"] == "server_busy"
        admission.reservation.release()
        other.hold(limits.upload_bytes)
        assert pool.in_use == BODY_COPIES * limits.upload_bytes


class TestMemoryPool:
    def test_try_acquire_and_release(self) -> None:
        seen: list[int] = []
        pool = MemoryPool("p", 100, on_change=lambda p: seen.append(p.in_use))
        assert pool.try_acquire(60) and pool.try_acquire(40)
        assert not pool.try_acquire(1)
        pool.release(60)
        assert pool.in_use == 40 and pool.try_acquire(0)
        with pytest.raises(ValueError, match="releasing"):
            pool.release(41)
        assert seen == [0, 60, 100, 40]

    def test_reservation_grows_and_releases(self) -> None:
        pool = MemoryPool("p", 100)
        reservation = Reservation(pool)
        assert reservation.grow_to(30) and reservation.grow_to(10) and reservation.grow_to(70)
        assert pool.in_use == 70
        assert not reservation.grow_to(101)
        assert reservation.held == 70 and pool.in_use == 70
        reservation.release()
        assert pool.in_use == 0 and reservation.held == 0

    def test_acquire_waits_its_turn(self) -> None:
        async def scenario() -> list[str]:
            pool = MemoryPool("p", 100)
            order: list[str] = []
            assert pool.try_acquire(80)

            async def take(name: str, size: int) -> None:
                assert await pool.acquire(size, timeout=5)
                order.append(name)

            big = asyncio.create_task(take("big", 60))
            await asyncio.sleep(0)
            small = asyncio.create_task(take("small", 20))
            await asyncio.sleep(0.01)
            # the small one would fit, but waits behind the big one (first come, first served)
            assert order == [] and not pool.try_acquire(20)
            pool.release(80)
            await asyncio.gather(big, small)
            assert pool.in_use == 80
            return order

        assert asyncio.run(scenario()) == ["big", "small"]

    def test_acquire_times_out_and_lets_the_next_through(self) -> None:
        async def scenario() -> None:
            pool = MemoryPool("p", 100)
            assert pool.try_acquire(50)
            assert not await pool.acquire(80, timeout=0.01)  # never fits while 50 are held
            assert pool.in_use == 50
            assert await pool.acquire(50, timeout=0.01)
            assert not await pool.acquire(101, timeout=5)  # more than the pool: no wait
            waiter = asyncio.create_task(pool.acquire(60, timeout=5))
            await asyncio.sleep(0.01)
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter
            pool.release(100)
            assert pool.in_use == 0 and pool.try_acquire(100)

        asyncio.run(scenario())


class TestInflate:
    def test_a_bomb_stops_at_the_limit(self) -> None:
        bomb = zlib.compress(b"\0" * (64 * MIB), 9)
        assert len(bomb) < 100 * 1024
        buffer = bytearray()
        inflater = zlib.decompressobj()
        assert not inflate_into(buffer, inflater, bomb, 3 * MIB)
        assert 3 * MIB < len(buffer) <= 3 * MIB + 1  # never a piece past the limit

    def test_within_the_limit_in_pieces(self) -> None:
        data = bytes(range(256)) * (4 * INFLATE_PIECE_BYTES // 256)
        packed = zlib.compress(data)
        buffer = bytearray()
        inflater = zlib.decompressobj()
        for i in range(0, len(packed), 1000):  # as the chunks come off the socket
            assert inflate_into(buffer, inflater, packed[i : i + 1000], len(data))
        assert inflater.eof and bytes(buffer) == data
