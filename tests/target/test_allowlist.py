"""The callback allowlist on the real target: it calls back to the addresses it was given
(the harness gives its collector's) and never to another port on the same host."""

from __future__ import annotations

from pathlib import Path

import pytest

from deliverydags.target import LOG_FILE, start

from .conftest import SECRET, TOKEN, Loop, Receiver, TargetFactory, messages, post_message

pytestmark = pytest.mark.integration


def test_only_the_collectors_loopback_port_is_called(
    target: TargetFactory, receiver: Receiver, bg_loop: Loop
) -> None:
    other = Receiver(bg_loop)  # stands for Dagster or Prometheus on the same host
    bg_loop.run(other.start())
    try:
        service = target()  # allowed: the receiver's HOST:PORT, as run_check does
        status, doc = post_message(service.url, messages(other.url, 1, 1, "other")[0])
        assert status == 400 and "not on the allowlist" in doc["error"]
        ok = messages(receiver.url, 1, 1, "ok")[0]
        assert post_message(service.url, ok)[0] == 202
        receiver.wait_delivered([ok["id"]])
    finally:
        bg_loop.run(other.stop())
    assert other.posts == 0


def test_with_no_allow_flag_nothing_is_called_and_it_says_so(
    tmp_path: Path, receiver: Receiver
) -> None:
    env = {"DELIVERYDAGS_TARGET_TOKEN": TOKEN, "DELIVERYDAGS_CALLBACK_SECRET": SECRET}
    service = start(out_dir=tmp_path, env=env)  # the stand-alone target's defaults
    try:
        status, doc = post_message(service.url, messages(receiver.url, 1, 1)[0])
        assert status == 400 and "not on the allowlist" in doc["error"]
    finally:
        service.stop()
    lines = [line for line in (tmp_path / LOG_FILE).read_text().splitlines() if "callback" in line]
    assert (
        len(lines) == 1 and "no callback address allowed (--allow-callback HOST:PORT)" in lines[0]
    )
    assert receiver.posts == 0
