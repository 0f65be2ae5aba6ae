"""Transaction ids: version-4 UUID text, unique, unaffected by the app's random.seed, fresh after fork."""

from __future__ import annotations

import os
import random
import sys
import uuid

import pytest

from moesif_core.record import new_transaction_id


def test_transaction_ids_are_version_4_uuids_and_do_not_repeat() -> None:
    ids = {new_transaction_id() for _ in range(20000)}
    assert len(ids) == 20000
    for text in list(ids)[:200]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_an_app_seeding_random_does_not_make_ids_repeat() -> None:
    random.seed(7)
    first = new_transaction_id()
    random.seed(7)
    assert new_transaction_id() != first


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "win32", reason="needs fork")
def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, then leave without running pytest's exit handlers
        os.write(write, new_transaction_id().encode())
        os._exit(0)
    os.close(write)
    parent_next = new_transaction_id()
    child_next = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert child_next and child_next != parent_next
