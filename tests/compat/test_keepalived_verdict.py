"""`pykeepalived -t` gives real keepalived 2.2.7's verdict, on its samples and on our broken corpus.

Both run in one network namespace that has eth0 and eth1, so that interface
checks agree. Where keepalived names lines, the first line it names must be
among the lines we name.
"""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pykeepalived.config.differences import DIFFERENCES
from tests.compat.oracle import KEEPALIVED, Verdict, keepalived_verdict, our_verdict, our_verdicts
from tests.conftest import samples_dir

HERE = Path(__file__).parent
BROKEN = sorted((HERE / "broken").glob("*.conf"))
CORPUS_DIR = HERE / "corpus"
CORPUS = sorted(CORPUS_DIR.rglob("*.conf"))
SAMPLES = sorted(samples_dir().glob("keepalived.conf.*")) if samples_dir() else []

pytestmark = [
    pytest.mark.keepalived,
    pytest.mark.netns,
    pytest.mark.skipif(not shutil.which(KEEPALIVED), reason="keepalived 2.2.7 is not installed"),
]


def differs_key(path: Path) -> str | None:
    """The `# differs: KEY` first line of a corpus config, if it has one."""
    first = path.read_text(errors="replace").split("\n", 1)[0]
    if first.startswith("# differs:"):
        return first.split(":", 1)[1].strip()
    return None


def _compare(netns: str, path: Path) -> None:
    _judge(path, keepalived_verdict(netns, str(path)), our_verdict(netns, str(path)))


def _judge(path: Path, theirs: Verdict, ours: Verdict) -> None:
    key = differs_key(path)
    if key is not None:
        assert key in DIFFERENCES, f"{path.name} names difference {key!r}, which config/differences.py does not list"
        assert ours.accepted != theirs.accepted, (
            f"{path.name} is marked `differs: {key}` but both {'accept' if ours.accepted else 'reject'} it\n"
            f"keepalived said:\n{theirs.output}\nwe said:\n{ours.output}"
        )
        return
    assert ours.accepted == theirs.accepted, (
        f"keepalived {'accepts' if theirs.accepted else 'rejects'} {path.name}, we do not\n"
        f"keepalived said:\n{theirs.output}\nwe said:\n{ours.output}"
    )
    if theirs.error_lines:
        first = min(theirs.error_lines)
        # a config keepalived accepts with a logged complaint: we accept with a warning on that line
        named = ours.error_lines | ours.warning_lines if theirs.accepted else ours.error_lines
        assert first in named, (
            f"keepalived reports line {first} of {path.name}; we report {sorted(ours.error_lines)}\n"
            f"keepalived said:\n{theirs.output}\nwe said:\n{ours.output}"
        )


def test_broken_corpus_is_large_enough() -> None:
    assert len(BROKEN) >= 40


@pytest.mark.parametrize("path", BROKEN, ids=[p.stem for p in BROKEN])
def test_broken_config_rejected_like_keepalived(router_netns: str, path: Path) -> None:
    _compare(router_netns, path)


def test_valid_base_accepted_like_keepalived(router_netns: str) -> None:
    _compare(router_netns, HERE / "valid_base.conf")


@pytest.mark.skipif(not SAMPLES, reason="keepalived samples not found")
@pytest.mark.parametrize("path", SAMPLES, ids=[p.name for p in SAMPLES])
def test_sample_verdict_matches_keepalived(router_netns: str, path: Path) -> None:
    _compare(router_netns, path)


def _corpus_id(path: Path) -> str:
    return str(path.relative_to(CORPUS_DIR).with_suffix(""))


@pytest.fixture(scope="module")
def corpus_verdicts(module_router_netns: str) -> dict[str, tuple[Verdict, Verdict]]:
    """keepalived's and our verdict on every corpus config, worked out once in one namespace.

    keepalived runs once per file (two at a time: it is quick and `-t` changes
    nothing in the namespace); ours runs in one process for the lot
    (oracle.our_verdicts), since a Python start per file cost most of the suite.
    """
    paths = [str(p) for p in CORPUS]
    with ThreadPoolExecutor(max_workers=2) as pool:
        theirs = dict(zip(paths, pool.map(lambda p: keepalived_verdict(module_router_netns, p), paths)))
    ours = our_verdicts(module_router_netns, paths)
    return {p: (theirs[p], ours[p]) for p in paths}


@pytest.mark.parametrize("path", CORPUS, ids=[_corpus_id(p) for p in CORPUS])
def test_corpus_verdict_matches_keepalived(corpus_verdicts: dict[str, tuple[Verdict, Verdict]], path: Path) -> None:
    _judge(path, *corpus_verdicts[str(path)])


BATCH_CHECKS = CORPUS[::97]  # a spread of files: differs, rejects, accepts, includes


@pytest.mark.parametrize("path", BATCH_CHECKS, ids=[_corpus_id(p) for p in BATCH_CHECKS])
def test_batch_verdict_is_the_commands(corpus_verdicts: dict[str, tuple[Verdict, Verdict]],
                                       module_router_netns: str, path: Path) -> None:
    """The one-process batch gives what `pykeepalived -t` run on its own gives: status and every line."""
    alone = our_verdict(module_router_netns, str(path))
    batched = corpus_verdicts[str(path)][1]
    assert (batched.returncode, batched.output.splitlines()) == (alone.returncode, alone.output.splitlines())
