"""Identifiers from ``gateway.entropy``: random, of the asked size, and never shared with a
forked child (rq-style forks must not hand out the parent's next ids)."""

from __future__ import annotations

import os

from gateway import entropy


def test_tokens_are_hex_of_the_asked_size_and_do_not_repeat() -> None:
    tokens = [entropy.token_hex(16) for _ in range(2 * entropy.POOL_BYTES // 16 + 3)]  # across refills
    assert all(len(t) == 32 and int(t, 16) >= 0 for t in tokens)
    assert len(set(tokens)) == len(tokens)
    assert len(entropy.token_hex(entropy.POOL_BYTES + 5)) == 2 * (entropy.POOL_BYTES + 5)


def test_a_forked_child_does_not_hand_out_its_parents_next_bytes() -> None:
    entropy.token_hex(6)  # the pool is filled: the next bytes are already in this process
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next token and leave at once
        os.write(write, entropy.token_hex(16).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    assert len(child) == 32
    assert child != entropy.token_hex(16)
