"""The retrieval command on the tiny fixtures (BM25 and eval need no server)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from retrieval.cli import main


def test_run_writes_trec_runs_and_prints_the_table(
    fixtures: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "run",
            "--dataset",
            str(fixtures / "tiny"),
            "--pipeline",
            "bm25",
            "--pipeline",
            "bm25:k1=0.9,b=0.4",
            "--output-dir",
            str(tmp_path),
            "--baseline",
            "bm25",
            "--trials",
            "200",
        ]
    )
    assert code == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0] == "| pipeline | nDCG@10 | R@100 | AP | RR@10 |"
    assert table[2].startswith("| bm25 (baseline) | ")
    assert table[3].startswith("| bm25:k1=0.9,b=0.4 | ")
    lines = (tmp_path / "bm25.trec").read_text().splitlines()
    assert lines[0].split()[:4] == ["q1", "Q0", "d3", "1"]


def test_eval_reads_beir_and_trec_qrels(fixtures: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "eval",
                str(fixtures / "tiny.qrels"),
                str(fixtures / "tiny.run"),
                "--measures",
                "nDCG@10",
                "AP",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.splitlines()[2] == "| tiny.run | 0.5169 | 0.4444 |"


def test_tune_refuses_the_test_split(fixtures: Path) -> None:
    with pytest.raises(SystemExit, match="never on the test queries"):
        main(["tune", "--dataset", str(fixtures / "tiny"), "--split", "test"])


def test_dense_pipeline_without_server_says_what_is_missing(fixtures: Path, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"docs\.npy"):
        main(
            [
                "run",
                "--dataset",
                str(fixtures / "tiny"),
                "--pipeline",
                "dense",
                "--output-dir",
                str(tmp_path),
            ]
        )


def test_public_names_and_lazy_imports() -> None:
    import retrieval

    for name in retrieval.__all__:
        assert getattr(retrieval, name) is not None, name
    assert sorted(retrieval.__all__) == sorted(set(retrieval.__all__))
    # importing the package alone loads none of the heavy dependencies
    probe = (
        "import sys, json, retrieval; "
        "print(json.dumps([m for m in ('numpy', 'scipy', 'ir_measures', 'Stemmer', 'vecdb') if m in sys.modules]))"
    )
    loaded = json.loads(
        subprocess.run(
            [sys.executable, "-c", probe], check=True, capture_output=True, text=True
        ).stdout
    )
    assert loaded == []
