"""The consent registry and its enforcement at ingest: rows of a stream without consent are
dropped and counted (nothing of them kept: no lake rows, no evidence, no landing copy), key
identity survives only under a keystroke-dynamics grant, and a forgotten user's old data cannot
come back -- whatever the collector did."""
from __future__ import annotations

import numpy as np
import pytest
from test_ingest import (
    NOW,
    T0,
    assert_reconciled,
    lake_count,
    ledger_rows,
    metric_row,
    records,
    write_events,
    write_metrics,
)

from focuslake import events as ev
from focuslake.config import Paths
from focuslake.ingest import ingest_landing
from focuslake.privacy import consent as C
from focuslake.privacy.policy import KEYSTROKE_DYNAMICS

S = 1_000_000


@pytest.fixture
def paths(tmp_path) -> Paths:
    return Paths(tmp_path / "data").ensure()


def test_defaults_streams_opt_out_sensitive_opt_in(paths):
    with C.Registry(paths) as reg:
        assert reg.allowed("alice", "active_window") == [(C.NEG_INF, C.POS_INF)]
        assert reg.allowed("alice", KEYSTROKE_DYNAMICS) == []
    assert not C.registry_path(paths).exists(), "reading must not create the registry"


def test_intervals_follow_grants_and_withdrawals(paths):
    with C.Registry(paths) as reg:
        reg.withdraw("alice", "active_window", at_us=100)
        reg.grant("alice", "active_window", at_us=200)
        reg.grant("alice", "active_window", at_us=250)   # already granted: no change
        reg.withdraw("alice", "active_window", at_us=300)
        assert reg.allowed("alice", "active_window") == [(C.NEG_INF, 100), (200, 300)]
        assert reg.denied("alice", "active_window") == [(100, 200), (300, C.POS_INF)]
        mask = reg.allowed_mask("alice", "active_window", np.array([99, 100, 199, 200, 299, 300]))
        assert mask.tolist() == [True, False, False, True, True, False]
        reg.grant("alice", KEYSTROKE_DYNAMICS, at_us=500)
        assert reg.allowed("alice", KEYSTROKE_DYNAMICS) == [(500, C.POS_INF)]
        assert reg.allowed("bob", "active_window") == [(C.NEG_INF, C.POS_INF)]  # per user
    with pytest.raises(C.ConsentError, match="unknown purpose"):
        C.Registry(paths).grant("alice", "webcam")
    with pytest.raises(C.ConsentError, match="bad user id"):
        C.Registry(paths).grant("../x", "events")


def test_forgotten_user_is_refused_before_the_forget_only(paths):
    with C.Registry(paths) as reg:
        reg.grant("alice", KEYSTROKE_DYNAMICS, at_us=0)
        assert reg.forget("alice", at_us=1000) == 1
        assert reg.history("alice") == []
        assert reg.allowed("alice", "events") == [(1000, C.POS_INF)]
        assert reg.allowed("alice", KEYSTROKE_DYNAMICS) == []  # the grant went with the forget
    raw = C.registry_path(paths).read_bytes()
    assert b"alice" not in raw.replace(b"\0", b"")  # only a keyed hash is left


def test_ingest_drops_csv_rows_without_consent_and_keeps_nothing_of_them(paths):
    rows = [metric_row(i) for i in range(60)]                # 5 s apart: T0 .. T0 + 295 s
    with C.Registry(paths) as reg:
        reg.withdraw("alice", "system_metrics", at_us=T0 + 100 * S)
        reg.grant("alice", "system_metrics", at_us=T0 + 200 * S)
    seg = write_metrics(paths, rows)
    s = ingest_landing(paths, now_us=NOW)
    assert (s["rows_read"], s["rows_written"], s["rows_quarantined"], s["rows_no_consent"]) == (60, 40, 20, 20)
    led = ledger_rows(paths)[seg.relative_to(paths.landing).as_posix()]
    assert led["rows_no_consent"] == 20 and "no consent: system_metrics" in led["reason"]
    assert lake_count(paths, "system_metrics") == 40
    import duckdb
    kept = duckdb.execute(f"SELECT min(ts_us), max(ts_us) FROM read_parquet('{paths.lake}/system_metrics/*/*.parquet') "
                          f"WHERE ts_us >= {T0 + 100 * S} AND ts_us < {T0 + 200 * S}").fetchone()
    assert kept == (None, None)
    assert not seg.exists(), "the landing copy held rows without consent"
    assert not list((paths.quarantine).rglob("*.parquet")), "no evidence is kept of rows without consent"
    assert_reconciled(paths, s)
    # a re-drop of the same bytes is a no-op (the ledger knows the checksum)
    again = write_metrics(paths, rows)
    assert ingest_landing(paths, now_us=NOW)["segments_duplicate"] == 1
    assert again.exists() and lake_count(paths, "system_metrics") == 40


def test_ingest_drops_binary_rows_without_consent(paths):
    with C.Registry(paths) as reg:
        reg.withdraw("alice", "events", at_us=T0 + 1 * S)
    seg = write_events(paths, records(50))                  # 0.1 s apart: 10 before the withdrawal
    s = ingest_landing(paths, now_us=NOW)
    assert (s["rows_written"], s["rows_quarantined"], s["rows_no_consent"]) == (10, 40, 40)
    assert lake_count(paths, "events") == 10 and not seg.exists()
    assert_reconciled(paths, s)


def test_key_identity_needs_both_the_header_flag_and_a_registry_grant(paths):
    def rogue(t0, flags):
        r = records(20, t0=t0)
        r["data"][r["event_type"] == ev.EventType.KEY_PRESS, :2] = (38, 30)
        return write_events(paths, r, flags=flags)

    import duckdb

    def codes(day_from):
        return duckdb.execute(f"SELECT count(*) FILTER (WHERE data_0 <> 0) FROM read_parquet('{paths.lake}/events/*/*.parquet') "
                              f"WHERE event_type = 1 AND ts_us >= {day_from}").fetchone()[0]

    # the collector claims consent, the registry has none: scrubbed, and the landing copy goes
    a = rogue(T0, ev.FLAG_KEY_IDENTITY_CONSENT)
    ingest_landing(paths, now_us=NOW)
    assert codes(T0) == 0 and not a.exists()
    assert "key codes scrubbed" in ledger_rows(paths)[a.relative_to(paths.landing).as_posix()]["note"]
    # granted from T0 + 60 s: kept from then on (the header says consent too)
    with C.Registry(paths) as reg:
        reg.grant("alice", KEYSTROKE_DYNAMICS, at_us=T0 + 60 * S)
    b = rogue(T0 + 60 * S, ev.FLAG_KEY_IDENTITY_CONSENT)
    ingest_landing(paths, now_us=NOW)
    assert codes(T0 + 60 * S) == 10 and b.exists()
    # granted in the registry but the collector's config says no: no key identity either
    rogue(T0 + 120 * S, 0)
    ingest_landing(paths, now_us=NOW)
    assert codes(T0 + 120 * S) == 0 and codes(T0) == 10


def test_forgotten_users_late_data_is_dropped_new_data_kept(paths):
    with C.Registry(paths) as reg:
        reg.forget("alice", at_us=T0 + 100 * S)
    write_metrics(paths, [metric_row(i) for i in range(40)])  # T0 .. T0 + 195 s
    s = ingest_landing(paths, now_us=NOW)
    assert (s["rows_written"], s["rows_no_consent"]) == (20, 20)
    assert_reconciled(paths, s)
