"""sioclient.namespace: one namespace's acks and emit buffer, and how a lost connection settles them."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sioclient.exceptions import DisconnectedError, EmitBufferFullError
from sioclient.namespace import Ack, ClientNamespace

LOG = logging.getLogger("test.sioclient.namespace")


def call_ack(loop: asyncio.AbstractEventLoop) -> tuple[Ack, asyncio.Future[list[object]]]:
    future: asyncio.Future[list[object]] = loop.create_future()
    return Ack(None, future), future


async def test_ack_ids_count_up_and_answers_are_taken_once() -> None:
    ns = ClientNamespace("/", LOG)
    first, second = Ack(print, None), Ack(print, None)
    assert (ns.add_ack(first), ns.add_ack(second)) == (0, 1)
    assert ns.take_ack(1) is second
    assert ns.take_ack(1) is None  # an answer that comes twice, or one nobody asked for
    assert ns.take_ack(0) is first


async def test_a_lost_connection_fails_sent_calls_and_keeps_buffered_ones(caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.get_running_loop()
    ns = ClientNamespace("/chat", LOG)
    ns.active = True
    ns.connected_as("abc")
    sent, sent_future = call_ack(loop)
    sent_id = ns.add_ack(sent)
    callback_id = ns.add_ack(Ack(print, None))
    buffered, buffered_future = call_ack(loop)
    buffered_id = ns.add_ack(buffered)
    ns.buffer_emit(buffered_id, ('2/chat,2["x"]',), limit=10)
    with caplog.at_level(logging.DEBUG, LOG.name):
        assert ns.lost("transport close", give_up=False) is True
    assert (ns.connected, ns.sid, ns.active) == (False, None, True)
    with pytest.raises(DisconnectedError, match="transport close"):
        sent_future.result()
    assert f"ack {callback_id} on /chat forgotten" in caplog.text
    assert list(ns.acks) == [buffered_id] and not buffered_future.done()
    assert sent_id not in ns.acks
    assert ns.lost("again", give_up=False) is False


async def test_giving_up_drops_the_buffer_and_fails_its_calls() -> None:
    loop = asyncio.get_running_loop()
    ns = ClientNamespace("/", LOG)
    ns.active = True
    ack, future = call_ack(loop)
    ns.buffer_emit(ns.add_ack(ack), ('20["x"]',), limit=10)
    ns.buffer_emit(None, ('2["y"]',), limit=10)
    assert ns.lost("io client disconnect", give_up=True) is False
    assert not ns.active and not ns.buffer and not ns.acks
    with pytest.raises(DisconnectedError, match="io client disconnect"):
        future.result()


async def test_the_buffer_keeps_order_and_its_limit() -> None:
    ns = ClientNamespace("/", LOG)
    ns.buffer_emit(None, ('2["a"]',), limit=2)
    ack_id = ns.add_ack(Ack(print, None))
    ns.buffer_emit(ack_id, ('21["b"]',), limit=2)
    refused_id = ns.add_ack(Ack(print, None))
    with pytest.raises(EmitBufferFullError, match="2 packets are buffered"):
        ns.buffer_emit(refused_id, ('22["c"]',), limit=2)
    assert refused_id not in ns.acks  # a refused emit leaves nothing behind
    assert ns.drain_buffer() == [('2["a"]',), ('21["b"]',)]
    assert not ns.buffer and ack_id in ns.acks


async def test_a_timed_out_call_leaves_the_buffer() -> None:
    ns = ClientNamespace("/", LOG)
    ack_id = ns.add_ack(Ack(print, None))
    ns.buffer_emit(ack_id, ('20["x"]',), limit=10)
    ns.buffer_emit(None, ('2["y"]',), limit=10)
    ns.forget(ack_id)
    assert ns.drain_buffer() == [('2["y"]',)] and not ns.acks


async def test_the_connect_answer_is_settled_once() -> None:
    ns = ClientNamespace("/", LOG)
    ns.answer(True)  # nobody waits: nothing happens
    ns.waiter = asyncio.get_running_loop().create_future()
    ns.answer({"message": "refused"})
    ns.answer(True)
    assert ns.waiter.result() == {"message": "refused"}
