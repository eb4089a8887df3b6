"""The one error handler (pipeline/stage.py): a DmlbenchError is one `dmlbench: error:` line on stderr and exit
status 2, from a stage script and from the `dmlbench` command alike."""

import pytest

from dmlbench.cli import main
from dmlbench.errors import DmlbenchError
from dmlbench.pipeline import stage


def refuse() -> None:
    raise DmlbenchError("train.epochs must be >= 0, got -1")


def test_a_stage_error_is_one_line_and_exit_status_2(capsys):
    with pytest.raises(SystemExit) as exited:
        stage.run(refuse)
    assert exited.value.code == stage.ERROR_STATUS == 2
    assert capsys.readouterr().err == "dmlbench: error: train.epochs must be >= 0, got -1\n"


def test_a_stage_that_finishes_exits_nowhere(capsys):
    stage.run(lambda: print("done"))  # returns: the script ends with status 0
    assert capsys.readouterr() == ("done\n", "")


def test_the_command_prints_the_same_line_and_returns_the_status(capsys):
    assert main(["export", "--run"]) == stage.ERROR_STATUS  # argparse's complaint, as a DmlbenchError
    assert capsys.readouterr().err == ("dmlbench: error: dmlbench export: argument --run: expected one argument "
                                       "(see dmlbench export --help)\n")
