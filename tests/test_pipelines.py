from __future__ import annotations

import pandas as pd
import pytest

from graphrec._validation import load_config
from graphrec.cli import main
from graphrec.exceptions import InvalidParameterError, SchemaError
from graphrec.jobs.swing import SwingJobConfig, run


def test_swing_job_csv_and_parquet(tmp_path):
    pairs = pd.DataFrame({"user_id": ["a", "a", "b", "b", "c", "c"], "note_id": [1, 2, 1, 2, 2, 3], "extra": range(6)})
    pairs.to_csv(tmp_path / "p.csv", index=False)
    report = run(
        SwingJobConfig(interactions=str(tmp_path / "p.csv"), out=str(tmp_path / "n.csv"), top_k=0, beta=0.0, alpha=1.0)
    )
    out = pd.read_csv(tmp_path / "n.csv")
    assert list(out.columns) == ["note_id", "neighbour_id", "score"]
    # users a, b share notes {1, 2}: one pair, score 1 / (1 + 2); c engaged 2 and 3 alone.
    assert out.to_dict("records") == [
        {"note_id": 1, "neighbour_id": 2, "score": pytest.approx(1 / 3)},
        {"note_id": 2, "neighbour_id": 1, "score": pytest.approx(1 / 3)},
    ]
    assert report["pairs_out"] == 2
    run(SwingJobConfig(interactions=str(tmp_path / "p.csv"), out=str(tmp_path / "n.parquet"), top_k=0, beta=0.0))
    assert len(pd.read_parquet(tmp_path / "n.parquet")) == 2


def test_swing_cli_errors_leave_nothing(tmp_path, capsys):
    (tmp_path / "p.csv").write_text("user_id,item\n1,2\n")
    assert main(["swing", "--interactions", str(tmp_path / "p.csv"), "--out", str(tmp_path / "n.csv")]) == 2
    assert "missing required column(s) note_id" in capsys.readouterr().err
    (tmp_path / "p.csv").write_text("user_id,note_id\n1,2\n")
    assert (
        main(["swing", "--interactions", str(tmp_path / "p.csv"), "--out", str(tmp_path / "n.csv"), "--beta", "-1"])
        == 2
    )
    assert "`beta` must be a finite float >= 0.0" in capsys.readouterr().err
    assert main(["swing", "--interactions", str(tmp_path / "p.csv"), "--out", str(tmp_path / "n.txt")]) == 2
    assert "unsupported file type '.txt'" in capsys.readouterr().err
    (tmp_path / "empty.csv").write_text("")
    assert main(["swing", "--interactions", str(tmp_path / "empty.csv"), "--out", str(tmp_path / "n.csv")]) == 2
    assert "the file is empty" in capsys.readouterr().err
    assert not (tmp_path / "n.csv").exists()


def test_config_files(tmp_path):
    (tmp_path / "c.yaml").write_text("interactions: a.csv\nout: b.csv\ntop_k: 5\n")
    assert load_config(SwingJobConfig, tmp_path / "c.yaml").top_k == 5
    (tmp_path / "c.toml").write_text('interactions = "a.csv"\nout = "b.csv"\nalpah = 2\n')
    with pytest.raises(InvalidParameterError, match="unknown option"):
        load_config(SwingJobConfig, tmp_path / "c.toml")
    with pytest.raises(InvalidParameterError, match="no such config file"):
        load_config(SwingJobConfig, tmp_path / "missing.yaml")


def test_swing_job_rejects_bad_engine(tmp_path):
    with pytest.raises(InvalidParameterError, match="`engine` must be one of"):
        run(SwingJobConfig(interactions="x.csv", out=str(tmp_path / "n.csv"), engine="flink"))
    with pytest.raises(SchemaError, match="no such file"):
        run(SwingJobConfig(interactions=str(tmp_path / "missing.csv"), out=str(tmp_path / "n.csv")))
