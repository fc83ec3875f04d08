import pytest
from click.testing import CliRunner
from conftest import REPO

from proxylang.cli.main import main
from segsearch.cli import main as segsearch_main


def run(*args, stdin=None):
    return CliRunner().invoke(main, list(args), input=stdin)


def test_check_prints_canonical_form():
    result = run("check", "examples/saswot_minus.px")
    assert result.exit_code == 0
    assert result.output.strip() == "sum(softmax(W) < relu(G))  : conv scalar"


def test_show_latex_of_the_whole_library():
    for name in ["saswot", "nwot", "snip", "grad_norm", "plain", "l2_norm", "params"]:
        result = run("show", f"examples/{name}.px", "--latex")
        assert result.exit_code == 0 and result.output.strip(), name


def test_type_error_is_one_located_line():
    result = run("check", "-", stdin="sum(matmul(W, A))\n")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: <stdin>:1:5: matmul(W, A): inner dimensions K and N differ (O×K times N×O*P)"]


def test_syntax_error_and_missing_file():
    result = run("check", "-", stdin="sum(W")
    assert result.exit_code == 2 and result.output.startswith("error: <stdin>:1:6: unexpected end of input")
    result = run("check", "no/such.px")
    assert result.exit_code == 2 and result.output.startswith("error: no/such.px: cannot read")


def test_every_stage_command_is_reachable_from_main():
    result = run("--help")
    assert result.exit_code == 0
    for name in ["check", "show", "eval", "baselines", "evolve"]:
        assert f"  {name} " in result.output, name


def test_bad_options_are_one_line_for_both_commands():
    for command, args, says in [
        (main, ["eval", "examples/saswot.px", "--space", "nano"], "Invalid value for '--space'"),
        (main, ["nosuchcommand"], "No such command 'nosuchcommand'"),
        (main, ["check"], "Missing argument 'FILE'"),
        (main, ["--threads", "0", "check", "examples/saswot.px"], "Invalid value for '--threads'"),
        (segsearch_main, ["latency", "arch.json", "--warmup", "many"], "Invalid value for '--warmup'"),
    ]:
        result = CliRunner().invoke(command, args)
        assert result.exit_code == 2, (args, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], (args, result.output)


@pytest.mark.parametrize("path", sorted((REPO / "examples").glob("*.px")), ids=lambda p: p.name)
def test_every_example_proxy_checks_and_is_in_canonical_text(path):
    # the shipped evolved proxies are written as the printer writes them, so eval/store keys match best.px
    result = run("check", str(path))
    assert result.exit_code == 0, result.output
    expression = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    if path.name.startswith("evolved_"):
        assert result.stdout.split("  : ")[0] == "\n".join(expression)
