"""`igsync metrics` and `--metrics`, in-process against the simulator served on loopback.

A retired or audience metric is refused before any Graph request (the simulator records every
request it gets); the new daily metrics go through today's fetch and land in the database.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import pytest

from cli_runner import run_cli
from igsync.catalogue import DEFAULT_METRICS, METRIC_CONFIG, RETIRED_METRICS
from igsync.simulator import SimAccount, Simulator, serve_in_thread

LA = "17841400000000001"
TOKEN = "EAAJ-metrics-test-token-Qw81kLmN0pQr"
USER = str(uuid4())


@dataclass
class Env:
    sim: Simulator
    db: Path

    def rows(self) -> list[tuple[str, str, str, int | None]]:
        with sqlite3.connect(self.db) as conn:
            return conn.execute(
                "select metric, metric_type, end_time, value from instagram_insights"
                " order by metric, end_time"
            ).fetchall()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Env]:
    sim = Simulator([SimAccount(LA, tz="America/Los_Angeles")])
    with serve_in_thread(sim) as served:
        monkeypatch.chdir(tmp_path)  # no stray .env
        for name in ("IG_APP_ID", "IG_APP_SECRET", "IGSYNC_METRICS", "SUPABASE_URL"):
            monkeypatch.delenv(name, raising=False)
        db = tmp_path / "igsync.db"
        for name, value in {
            "IGSYNC_GRAPH_URL": served.graph_url,
            "IGSYNC_INSTAGRAM_URL": served.instagram_url,
            "IGSYNC_DATABASE_URL": f"sqlite:///{db}",
            "IG_ACCOUNT_ID": LA,
            "IG_LONG_TOKEN": TOKEN,
            "IGSYNC_HTTP_TIMEOUT": "5",
            "NO_COLOR": "1",
        }.items():
            monkeypatch.setenv(name, value)
        yield Env(sim, db)


def test_metrics_json_lists_current_then_retired_metrics(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(monkeypatch, capsys, "metrics", "--json")
    assert (code, err) == (0, "")
    assert out.count("\n") == 1  # one JSON document
    lines = json.loads(out)
    keys = {
        "name",
        "status",
        "metric_type",
        "period",
        "breakdowns",
        "timeframes",
        "logins",
        "default",
        "stream",
        "replacement",
        "source",
        "retired_forms",
    }
    assert all(keys <= set(line) for line in lines)
    names = [line["name"] for line in lines]
    assert len(names) == len(set(names))  # one entry per name: jq can key on .name
    current = [line for line in lines if line["status"] == "current"]
    retired = [line for line in lines if line["status"] == "retired"]
    assert [line["name"] for line in current] == list(METRIC_CONFIG)
    assert tuple(line["name"] for line in current if line["default"]) == DEFAULT_METRICS
    assert {line["name"] for line in retired} == {r.name for r in RETIRED_METRICS if not r.form}
    assert all(line["retired_forms"] == [] for line in retired)
    by_name = {line["name"]: line for line in current}
    assert by_name["likes"]["stream"] == "account"
    assert by_name["follower_demographics"]["stream"] == "audience"
    assert by_name["follower_demographics"]["timeframes"] == ["this_week", "this_month"]
    assert by_name["reach"]["logins"] == ["facebook_login", "instagram_login"]
    impressions = next(line for line in retired if line["name"] == "impressions")
    assert (impressions["replacement"], impressions["retired_in"]) == ("views", "v22.0")
    assert impressions["retired_everywhere"] == "2025-04-21"
    for name in ("profile_views", "website_clicks"):  # current, but time_series was retired
        (form,) = by_name[name]["retired_forms"]
        assert by_name[name]["metric_type"] == "total_value"
        assert (form["metric_type"], form["retired_in"]) == ("time_series", "v21.0")
        assert form["retired_everywhere"] == "2025-01-08"
    assert env.sim.requests == []


def test_metrics_table_shows_retired_metrics_and_their_replacement(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = run_cli(monkeypatch, capsys, "metrics")
    assert code == 0
    impressions = next(line for line in out.splitlines() if "impressions" in line)
    assert "retired v22.0" in impressions
    assert "views" in impressions
    cells = [[c.strip() for c in line.split("│")] for line in out.splitlines()]
    forms = [" ".join(row) for row in cells if row[1:2] == ["profile_views"]]
    assert len(forms) == 2  # the current metric, and its retired time_series form
    assert "retired v21.0" in forms[1]
    assert "time_series" in forms[1]
    assert "audience" in next(line for line in out.splitlines() if "online_followers" in line)


@pytest.mark.parametrize(
    ("metrics", "words"),
    [
        ("reach,impressions", ["impressions is retired by Meta in v22.0", "ask for views"]),
        ("phone_call_clicks", ["v21.0", "2025-01-08", "ask for profile_links_taps"]),
        ("profile_visits", ["ask for profile_views"]),
        ("bogus", ["unknown metric bogus", "Meta serves reach"]),
    ],
)
def test_a_metric_fetch_cannot_serve_is_one_line_exit_2_before_any_request(
    env: Env,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    metrics: str,
    words: list[str],
) -> None:
    code, out, err = run_cli(monkeypatch, capsys, "fetch", "--user", USER, "--metrics", metrics)
    assert code == 2
    assert out == ""
    assert err.startswith("igsync: error: --metrics: ")
    assert err.count("\n") == 1
    for word in words:
        assert word in err
    assert env.sim.requests == []  # refused before a single Graph call
    assert not env.db.exists()


def test_a_retired_metric_in_igsync_metrics_names_the_variable(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IGSYNC_METRICS", "impressions")
    code, _, err = run_cli(monkeypatch, capsys, "sync-all", "--json")
    assert code == 2
    assert err.startswith("igsync: error: IGSYNC_METRICS: impressions is retired")
    assert "ask for views" in err
    assert env.sim.requests == []


def test_fetch_stores_new_daily_metrics_asked_for_with_metrics(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(
        monkeypatch,
        capsys,
        "fetch",
        "--user",
        USER,
        "--metrics",
        "likes,comments,reposts",
        "--json",
    )
    assert code == 0, out + err
    result = json.loads(out)
    assert result["metrics_inserted"] == {"likes": 3, "comments": 3, "reposts": 3}
    rows = env.rows()
    assert {r[0] for r in rows} == {"likes", "comments", "reposts"}
    assert {r[1] for r in rows} == {"total_value"}
    assert all(isinstance(r[3], int) for r in rows)
    # the new metrics are asked as total_value, grouped; reach only probes the day keys
    insights = [r for r in env.sim.requests if r.path.endswith("/insights")]
    asked = {(r.query.get("metric_type"), r.query.get("metric")) for r in insights}
    assert asked == {("time_series", "reach"), ("total_value", "likes,comments,reposts")}
