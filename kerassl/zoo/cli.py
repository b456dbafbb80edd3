"""`kerassl zoo list | push | pull | card`: the zoo from the command line.

`kerassl.cli` hands the arguments after `zoo` to `main(argv)` (also exported as
`kerassl.zoo.zoo_cli_main`).
"""

import argparse
import json
import pathlib
import shutil
import sys


def build_parser(prog="kerassl zoo"):
    parser = argparse.ArgumentParser(prog=prog, description="Publish and fetch pretrained kerassl encoders.")
    sub = parser.add_subparsers(dest="command", required=True)

    listing = sub.add_parser("list", help="list registered presets")
    listing.add_argument("pattern", nargs="?", default="*", help="shell pattern, e.g. '*simclr*'")
    listing.add_argument("--published", action="store_true", help="only presets whose weights are on the Hub")
    listing.add_argument("--json", action="store_true", help="print the registry entries as JSON")

    push = sub.add_parser("push", help="publish a saved model to the Hub")
    push.add_argument("source", help="a folder written by save_preset, or a .keras file (method or encoder)")
    push.add_argument("repo_id", help="org/repo on the Hub")
    push.add_argument("--metrics", help="a JSON file (zoo/<entry>/metrics.json style) or an inline JSON object")
    push.add_argument("--dataset", help="pretraining dataset, e.g. cifar10")
    push.add_argument("--private", action="store_true")
    push.add_argument("--revision", help="branch to commit to (default main)")
    push.add_argument("--tag", help="tag the new commit, e.g. v1.0")
    push.add_argument("--message", help="commit message")
    push.add_argument("--license", help="a Hub license id (default: the folder's own, else apache-2.0)")
    push.add_argument("--overwrite", action="store_true", help="allow replacing another method or architecture")

    pull = sub.add_parser("pull", help="download and verify an encoder")
    pull.add_argument("source", help="preset name or hf://org/repo[@revision]")
    pull.add_argument("--revision")
    pull.add_argument("--out", help="also copy the verified files to this folder (an official checkpoint is "
                      "converted once and written there as a kerassl preset folder)")
    pull.add_argument("--image-size", type=int, help="official checkpoints: the image size to convert for")

    card = sub.add_parser("card", help="print the model card of a saved or published entry")
    card.add_argument("source", help="a folder written by save_preset, or hf://org/repo[@revision]")
    card.add_argument("--repo-id", help="Hub id shown in the usage snippet")
    card.add_argument("--output", help="write to this file instead of printing")
    return parser


def read_metrics(value):
    """--metrics: a path to a JSON file or an inline JSON object; {"metrics": {...}} is unwrapped."""
    if value is None:
        return None, None
    path = pathlib.Path(value)
    data = json.loads(path.read_text()) if path.is_file() else json.loads(value)
    if not isinstance(data, dict):
        raise ValueError(f"--metrics must hold a JSON object; got {type(data).__name__}.")
    if "metrics" in data and isinstance(data["metrics"], dict):
        return data["metrics"], data.get("dataset")
    return data, None


def _load_for_push(source):
    """The model to push: the method when the folder or file holds one."""
    from kerassl.zoo import folder as zoo_folder
    from kerassl.zoo.hub import load_encoder, load_method

    path = pathlib.Path(source)
    if path.is_dir():
        metadata = zoo_folder.read_metadata(path)
        model = load_method(str(path)) if metadata.get("method") else load_encoder(str(path))
        return model, metadata
    if path.suffix == ".keras":
        try:
            return load_method(str(path)), None
        except Exception:
            return load_encoder(str(path)), None
    raise ValueError(f"{source} is neither a folder written by save_preset nor a .keras file.")


def run_list(args):
    from kerassl.zoo.presets import get_preset, license_label, list_presets

    names = list_presets(args.pattern, published_only=args.published)
    if args.json:
        print(json.dumps([get_preset(name) for name in names], indent=2))
        return 0
    if not names:
        print(f"no preset matches {args.pattern!r}")
        return 0
    rows = [("name", "hub id", "method", "backbone", "dataset", "metrics", "license", "status")]
    for name in names:
        entry = get_preset(name)
        metrics = ", ".join(
            f"{key}={'n/a' if m.get('value') is None else format(m['value'], '.3f')}"
            for key, m in (entry.get("metrics") or {}).items()
        )
        status = "published" if entry.get("published") else "not yet published"
        rows.append((name, entry["hub_id"], entry.get("method", ""), entry.get("backbone", ""),
                     entry.get("dataset", ""), metrics, license_label(entry), status))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0


def run_push(args):
    from kerassl.zoo.hub import push_to_hub

    model, metadata = _load_for_push(args.source)
    metrics, dataset = read_metrics(args.metrics)
    metadata = metadata or {}
    url = push_to_hub(
        model,
        args.repo_id,
        metrics=metrics if metrics is not None else metadata.get("metrics"),
        dataset=args.dataset or dataset or metadata.get("dataset"),
        private=args.private,
        revision=args.revision,
        commit_message=args.message,
        overwrite=args.overwrite,
        card_extra=metadata.get("extra"),
        license=args.license or metadata.get("license") or "apache-2.0",  # a pulled MAE stays CC-BY-NC
        tag=args.tag,
    )
    print(url)
    return 0


def run_pull(args):
    from kerassl.zoo import folder as zoo_folder
    from kerassl.zoo.hub import _is_converted_source, load_encoder, resolve_source

    if _is_converted_source(args.source, args.revision, None):
        from kerassl.zoo.pull import pull_official

        print(pull_official(args.source, args.out, revision=args.revision, image_size=args.image_size))
        return 0
    load_encoder(args.source, revision=args.revision)  # downloads and verifies checksums
    path, where, _ = resolve_source(args.source, args.revision)
    if args.out:
        out = pathlib.Path(args.out)
        metadata = zoo_folder.read_metadata(path, where)
        for name in [*metadata["files"], zoo_folder.METADATA_FILE, zoo_folder.CARD_FILE]:
            source = pathlib.Path(path) / name
            if source.is_file():
                (out / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, out / name)
        path = str(out)
    print(path)
    return 0


def run_card(args):
    from kerassl.zoo import folder as zoo_folder
    from kerassl.zoo.card import model_card
    from kerassl.zoo.hub import parse_hf_source, resolve_source

    repo_id = args.repo_id
    if args.source.startswith("hf://") and repo_id is None:
        repo_id = parse_hf_source(args.source)[0]
    path, where, _ = resolve_source(args.source, allow_patterns=[zoo_folder.METADATA_FILE])
    text = model_card(zoo_folder.read_metadata(path, where), repo_id=repo_id)
    if args.output:
        pathlib.Path(args.output).write_text(text)
    else:
        print(text)
    return 0


COMMANDS = {"list": run_list, "push": run_push, "pull": run_pull, "card": run_card}


def main(argv=None):
    """Runs `kerassl zoo ...`; returns the exit status (0 on success, 1 on a clear error).

    Args:
        argv: list of str or None. The arguments after `zoo` (default: sys.argv[1:]).

    Example:
    ```python
    kerassl.zoo.zoo_cli_main(["list", "*simclr*"])
    ```
    """
    from kerassl.zoo.errors import ZooError

    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (ZooError, ValueError, TypeError, FileNotFoundError, FileExistsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


zoo_cli_main = main
