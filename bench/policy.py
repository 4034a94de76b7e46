"""Warming policy: what each rule costs per idle gap against an oracle that knows when the user
comes back (`python -m bench policy`; no stack, pure arithmetic, seconds).

Units: a prefix's size x its base input price per token. A warm costs `read` (0.1, 0.05, 0.025);
the user's next message costs `read` if the cache is still alive and a re-write (1.25 for the 5m
cache, 2.0 for 1h) if it expired. Each gap's cost is its warms plus that return.

Oracle: knows the gap; warms every TTL - 10 s (290 s / 3590 s) only when warming through the gap
is cheaper than letting the cache lapse and re-writing it, i.e. min((k + 1) x read, write) for a
gap that needs k warms. Every figure is that rule's total cost over the same gaps ÷ the oracle's.

"Ours today" is replayed through the shipped `chalicelib.domain.warming.decide` with a fake clock
(`replay_decide`, the only code that knows decide's events). Rules that do not exist in decide yet
are `bench.policies.Policy` objects played by `play`. Porting a rule into decide switches its row to
`via_decide=True` (see `bench.policy_rules.rules`).

Modules: `policy_gaps` (inputs and gap models), `policy_replay` (playing a rule; decide's replay),
`policy_oracle` (the oracle and the tally), `policy_rules` (the rows and the runner),
`policy_choice` (the cache-choice table), `policy_report` (the tables and the verdicts); this
module runs them in worker processes.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import cast

from bench.common import Report
from bench.policy_choice import ChoiceRow, cache_choice
from bench.policy_gaps import CACHES, GAPS, SEED, GapModel, gap_models
from bench.policy_replay import DECIDE_CHECKED
from bench.policy_report import (
    add_verdicts,
    gap_notes,
    margin_table,
    render_block,
    render_choice,
    render_issue_check,
    rounding_check,
)
from bench.policy_rules import Block, Runner, rules

NAME = "policy"
__all__ = ["GAPS", "NAME", "SEED", "run"]


# The models, set before worker processes fork so that each job reads them without a copy.
_MODELS: list[GapModel] = []


def _block_job(index: int, cache_name: str, exact_decide: bool) -> Block:
    cache = next(c for c in CACHES if c.name == cache_name)
    return Runner(exact_decide).block(_MODELS[index], cache, rules())


def _choice_job(index: int, seed: int, exact_decide: bool) -> tuple[str, list[ChoiceRow]]:
    return cache_choice(Runner(exact_decide), _MODELS[index], seed)


def _margin_job() -> str:
    return margin_table(Runner(), [m for m in _MODELS if not m.ends])


def _failure_job() -> str:
    from bench.failures import failure_table  # it builds on this module's replay

    return failure_table(Runner(), [m for m in _MODELS if not m.ends])


def _rounding_job() -> str:
    return rounding_check(_MODELS)


def run(n: int = GAPS, seed: int = SEED, jobs: int = 0, exact_decide: bool = False) -> Report:
    """`jobs` worker processes (0: one per CPU, 1: none); results do not depend on it."""
    report = Report(NAME)
    started = time.monotonic()
    models = gap_models(n, seed)
    _MODELS[:] = models
    for note in gap_notes(models, seed):
        report.note(note)
    peers = {r.label for r in rules() if r.peer}
    workers = jobs or os.cpu_count() or 1
    blocks, texts, rounding = _tables(models, seed, exact_decide, workers, peers)
    report.note(rounding)
    add_verdicts(report, blocks, peers)
    report.extra["markdown"] = texts
    report.note(
        f"simulated in {time.monotonic() - started:.1f} s with {workers} process(es); decide "
        + (
            "replayed event by event for every gap"
            if exact_decide
            else f"replayed event by event for the first {DECIDE_CHECKED:,} gaps of each model "
            "and matched its own schedule, used for the rest"
        )
    )
    return report


def _tables(
    models: list[GapModel], seed: int, exact_decide: bool, workers: int, peers: set[str]
) -> tuple[list[Block], list[str], str]:
    """Every table's job, on `workers` processes: the blocks, the tables' text, the rounding note."""
    with contextlib.ExitStack() as stack:
        submit: Callable[..., Future[object]]
        if workers > 1:
            pool = stack.enter_context(
                ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
            )
            submit = pool.submit
        else:
            submit = _inline
        # The slowest jobs first.
        choice_jobs = [
            submit(_choice_job, i, seed, exact_decide) for i, m in enumerate(models) if not m.ends
        ]
        block_jobs = [
            submit(_block_job, i, c.name, exact_decide) for i in range(len(models)) for c in CACHES
        ]
        margin_job, rounding_job = submit(_margin_job), submit(_rounding_job)
        failure_job = submit(_failure_job)
        blocks = [cast(Block, job.result()) for job in block_jobs]
        texts = [render_block(block, peers) for block in blocks]
        texts.append(render_issue_check(blocks[0]))
        texts.append(cast(str, margin_job.result()))
        texts.append(cast(str, failure_job.result()))
        notes: list[str] = []
        choice: list[ChoiceRow] = []
        for job in choice_jobs:
            note, rows = cast(tuple[str, list[ChoiceRow]], job.result())
            notes.append(note)
            choice += rows
        texts.append(render_choice(notes, choice))
        return blocks, texts, cast(str, rounding_job.result())


def _inline(fn: Callable[..., object], *args: object) -> Future[object]:
    done: Future[object] = Future()
    done.set_result(fn(*args))
    return done
