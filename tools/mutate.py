"""Mutation testing: break kerassl on purpose, one patch at a time, and see which tests notice.

Each mutation of `tools/mutations.py` is applied to a temporary copy of the repository
(never the working tree); the copy's fast tests then run against the patched library.
A mutation is *caught* when the tests fail, *survived* when they pass, and
*not-applied* when its snippet is no longer in the file (the table needs updating).

Usage:
    .venv/bin/python tools/mutate.py                  # mapped test files, -x, TensorFlow
    .venv/bin/python tools/mutate.py --full           # the whole fast suite per mutation
    .venv/bin/python tools/mutate.py --rev bef872c    # the library and tests of a commit
    .venv/bin/python tools/mutate.py --only simclr_identity_views --backend jax
    .venv/bin/python tools/mutate.py --tests tests/test_wiring.py   # one file for all
    .venv/bin/python tools/mutate.py --out outputs/mutations   # writes .md and .json

The exit status is 1 if any mutation survived or failed to apply.
"""

import argparse
import dataclasses
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from mutations import FILES, MUTATIONS  # noqa: E402


def copy_tree(destination, rev=None):
    """The repository's files (a commit's, or the working tree's) under `destination`."""
    destination.mkdir(parents=True)
    if rev:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", "--format=tar", rev],
            check=True, capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(destination)], input=archive, check=True)
        return
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        check=True, capture_output=True,
    ).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def apply(repo, mutation):
    """Patches the copy; returns the original text, or None if the snippet is not there once."""
    path = repo / FILES[mutation.file]
    if not path.exists():
        return None
    text = path.read_text()
    if text.count(mutation.old) != 1:
        return None
    path.write_text(text.replace(mutation.old, mutation.new))
    return text


def pytest_command(repo, tests, full):
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-x"]
    if full:
        return command + ["tests"]
    present = [t for t in tests if (repo / t).exists()]
    return command + present if present else None


def run_tests(repo, command, env, timeout):
    start = time.monotonic()
    try:
        done = subprocess.run(
            command, cwd=repo, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return "timeout", time.monotonic() - start, ""
    summary = (done.stdout.strip().splitlines() or [""])[-1]
    failed = [line for line in done.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    detail = failed[0] if failed else summary
    return done.returncode, time.monotonic() - start, detail


def main(argv=None):
    # A terminated run still removes its temporary copy.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", help="test the library and tests of this commit")
    parser.add_argument("--full", action="store_true", help="run the whole fast suite")
    parser.add_argument("--only", nargs="*", help="mutation names to run")
    parser.add_argument("--tests", nargs="*", help="run these test files for every mutation")
    parser.add_argument("--backend", default="tensorflow")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds per mutation")
    parser.add_argument("--baseline", action="store_true", help="first run the tests unmutated")
    parser.add_argument("--out", help="write <out>.md and <out>.json")
    args = parser.parse_args(argv)

    mutations = [m for m in MUTATIONS if not args.only or m.name in args.only]
    if args.tests:
        mutations = [dataclasses.replace(m, tests=tuple(args.tests)) for m in mutations]
    unknown = set(args.only or ()) - {m.name for m in MUTATIONS}
    if unknown:
        parser.error(f"unknown mutations: {sorted(unknown)}")

    with tempfile.TemporaryDirectory(prefix="kerassl-mutate-") as scratch:
        scratch = pathlib.Path(scratch)
        repo = scratch / "repo"
        copy_tree(repo, args.rev)
        shared = ROOT.parent / "shared"
        if shared.exists():  # tests find ../shared/data beside the repository
            (scratch / "shared").symlink_to(shared)
        env = dict(os.environ, KERAS_BACKEND=args.backend, PYTHONPATH=str(repo))
        env.pop("PYTEST_ADDOPTS", None)
        where = subprocess.run(
            [sys.executable, "-c", "import kerassl; print(kerassl.__file__)"],
            cwd=repo, env=env, capture_output=True, text=True, check=True,
        ).stdout.strip()
        if not where.startswith(str(repo)):
            sys.exit(f"the copy's tests would import kerassl from {where}, not the copy")

        if args.baseline:
            tests = sorted({t for m in mutations for t in m.tests})
            command = pytest_command(repo, tests, args.full)
            code, seconds, detail = run_tests(repo, command, env, args.timeout * 4)
            print(f"baseline: rc={code} in {seconds:.0f} s: {detail}", flush=True)
            if code != 0:
                sys.exit("the unmutated tests fail: fix them before reading mutation results")

        results = []
        for mutation in mutations:
            original = apply(repo, mutation)
            command = pytest_command(repo, mutation.tests, args.full)
            if original is None or command is None:
                outcome, seconds, detail = "not-applied", 0.0, "snippet or tests not found"
            else:
                code, seconds, detail = run_tests(repo, command, env, args.timeout)
                (repo / FILES[mutation.file]).write_text(original)
                outcome = "survived" if code == 0 else ("timeout" if code == "timeout" else "caught")
            row = dict(
                name=mutation.name, file=FILES[mutation.file], what=mutation.what,
                outcome=outcome, seconds=round(seconds, 1), detail=detail,
                tests="tests (full fast suite)" if args.full else " ".join(
                    t for t in mutation.tests if (repo / t).exists()
                ),
            )
            results.append(row)
            print(f"{outcome:11s} {seconds:6.0f} s  {mutation.name}: {detail}", flush=True)

    header = "| mutation | what it breaks | outcome | s | first failure |\n| --- | --- | --- | --- | --- |\n"
    rows = "".join(
        f"| `{r['name']}` | {r['what']} | **{r['outcome']}** | {r['seconds']:.0f} | "
        f"{r['detail'].replace('|', '/')[:120]} |\n"
        for r in results
    )
    caught = sum(r["outcome"] == "caught" for r in results)
    title = (
        f"Mutations caught: {caught} / {len(results)} (rev {args.rev or 'working tree'}, "
        f"{args.backend}, {'full fast suite' if args.full else 'mapped test files'})\n\n"
    )
    markdown = title + header + rows
    print("\n" + markdown)
    if args.out:
        out = pathlib.Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".md").write_text(markdown)
        meta = dict(rev=args.rev, backend=args.backend, full=args.full, results=results)
        out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    return 0 if caught == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
