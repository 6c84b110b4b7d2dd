import pytest

from pipelines.cli import build_parser, main


def test_every_command_has_help(capsys):
    for command in ("run", "demo", "evaluate"):
        with pytest.raises(SystemExit) as exit_info:
            build_parser().parse_args([command, "--help"])
        assert exit_info.value.code == 0
    assert "--as-of" in capsys.readouterr().out


def test_a_missing_landing_file_is_a_clear_error_with_status_2(tmp_path, caplog):
    status = main(["run", "--landing", str(tmp_path), "--warehouse", str(tmp_path / "w.duckdb"),
                   "--exports", str(tmp_path / "exports"), "--as-of", "2026-06-30"])
    assert status == 2
    assert "repayments.csv or repayments.parquet" in caplog.text


def test_a_bad_date_is_refused_by_the_parser(tmp_path, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--landing", "l", "--warehouse", "w", "--exports", "e",
                                   "--as-of", "30/06/2026"])
    assert "YYYY-MM-DD" in capsys.readouterr().err
