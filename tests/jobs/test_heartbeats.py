"""The process-wide heartbeat thread: one thread beats every inline job of the process."""

from __future__ import annotations

import threading
from pathlib import Path

from job_helpers import wait_until

from assay.jobs import store
from assay.jobs.ids import job_id
from assay.jobs.runner import JobContext, run_inline


def _heartbeat_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("assay-heart")]


def test_two_concurrent_inline_jobs_share_one_thread_and_both_beat(assay_home: Path) -> None:
    ids = [job_id("beat-one"), job_id("beat-two")]
    for jid in ids:
        store.create_job("pipeline_task", jid, spec={})
    both_running = threading.Barrier(2, timeout=60)
    seen_threads: list[int] = []

    def work(ctx: JobContext) -> None:
        first = store.get_job(ctx.job_id).last_seen
        both_running.wait()  # both jobs are registered with the beater at once
        wait_until(lambda: store.get_job(ctx.job_id).last_seen != first, "a heartbeat")
        seen_threads.append(len(_heartbeat_threads()))
        both_running.wait()

    records: list[str] = []

    def run(jid: str) -> None:
        records.append(run_inline(jid, work, heartbeat_interval=0.05).state)

    runners = [threading.Thread(target=run, args=(jid,)) for jid in ids]
    for t in runners:
        t.start()
    for t in runners:
        t.join(timeout=120)
    assert records == ["FINISHED", "FINISHED"]
    assert seen_threads == [1, 1]


def test_a_finished_job_is_no_longer_beaten(assay_home: Path) -> None:
    jid = job_id("beat-finished")
    store.create_job("pipeline_task", jid, spec={})
    run_inline(jid, lambda ctx: None, heartbeat_interval=0.01)
    last = store.get_job(jid).last_seen
    other = job_id("beat-witness")  # a second job's beats prove the thread ran meanwhile
    store.create_job("pipeline_task", other, spec={})

    def witness(ctx: JobContext) -> None:
        first = store.get_job(other).last_seen
        for _ in range(3):
            seen = store.get_job(other).last_seen
            wait_until(lambda s=seen: store.get_job(other).last_seen != s, "a heartbeat")
        assert store.get_job(other).last_seen != first

    run_inline(other, witness, heartbeat_interval=0.01)
    assert store.get_job(jid).last_seen == last
