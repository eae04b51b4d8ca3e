"""Load: 20 runs started at once from the CLI and the app against one store, two tabs on each of two runs, the server
killed and restarted twice in the middle. Every run ends recorded, no series row is lost, the store stays sound."""
from bench.bench_soak import soak


def test_soak_kills_and_restarts_lose_nothing(tmp_path, browser):
    result = soak(tmp_path / "home", browser, runs=20, restarts=2, timeout=420)
    assert result["in_store"] == result["started"] == 20, result
    assert result["recorded"] == 20, result["by_status"]
    assert result["series_rows_lost"] == 0 and result["series_rows"] > 0
    assert result["integrity"] == ["ok"]
    assert result["cli_exit_codes"] == [0]
    assert result["by_status"].get("interrupted", 0) >= 2  # the app's runs died with their server, and say so
