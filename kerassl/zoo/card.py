"""Model cards: Hub YAML metadata plus a body generated from metadata.json.

The card is written from the same metadata that is checksummed and loaded, so
what it states (method, hyper-parameters, input contract, metrics and how they
were measured) cannot drift from the files next to it.
"""

import yaml

PAPERS = {
    "SimCLR": ("Chen et al., A Simple Framework for Contrastive Learning of Visual Representations, ICML 2020",
               "https://arxiv.org/abs/2002.05709"),
    "MoCo": ("He et al., Momentum Contrast for Unsupervised Visual Representation Learning, CVPR 2020",
             "https://arxiv.org/abs/1911.05722"),
    "BYOL": ("Grill et al., Bootstrap Your Own Latent, NeurIPS 2020", "https://arxiv.org/abs/2006.07733"),
    "DINO": ("Caron et al., Emerging Properties in Self-Supervised Vision Transformers, ICCV 2021",
             "https://arxiv.org/abs/2104.14294"),
    "MAE": ("He et al., Masked Autoencoders Are Scalable Vision Learners, CVPR 2022",
            "https://arxiv.org/abs/2111.06377"),
    "BarlowTwins": ("Zbontar et al., Barlow Twins, ICML 2021", "https://arxiv.org/abs/2103.03230"),
    "VICReg": ("Bardes et al., VICReg, ICLR 2022", "https://arxiv.org/abs/2105.04906"),
}

METRIC_NAMES = {
    "knn_accuracy": "kNN accuracy (frozen features)",
    "linear_probe_accuracy": "Linear-probe accuracy (frozen features)",
    "finetune_accuracy": "Fine-tuning accuracy",
}


def card_metadata(metadata, repo_id=None):
    """The YAML front matter (a dict) for a card."""
    method = (metadata.get("method") or {}).get("class_name")
    tags = ["kerassl", "self-supervised", "image-feature-extraction"]
    if method:
        tags.append(method.lower())
    data = {
        "library_name": "keras",
        "license": metadata.get("license") or "other",
        "pipeline_tag": "image-feature-extraction",
        "tags": tags,
    }
    if metadata.get("dataset"):
        data["datasets"] = [metadata["dataset"]]
    metrics = metadata.get("metrics") or {}
    data["kerassl"] = {
        "method": method,
        "backbone": metadata["encoder"]["name"],
        "feature_dim": metadata["encoder"]["feature_dim"],
        "parameter_count": metadata["parameter_count"],
        "input_contract": metadata["input_contract"],
        "metrics": {name: entry.get("value") for name, entry in metrics.items()},
    }
    measured = [(name, entry) for name, entry in metrics.items() if entry.get("value") is not None]
    if measured and metadata.get("dataset"):
        data["model-index"] = [
            {
                "name": (repo_id or metadata["encoder"]["name"]).split("/")[-1],
                "results": [
                    {
                        "task": {"type": "image-feature-extraction", "name": "Image feature extraction"},
                        "dataset": {"type": metadata["dataset"], "name": metadata["dataset"]},
                        "metrics": [
                            {"type": name, "value": entry["value"], "name": METRIC_NAMES.get(name, name)}
                            for name, entry in measured
                        ],
                    }
                ],
            }
        ]
    return data


def model_card(metadata, repo_id=None):
    """Renders the README.md model card of a zoo entry.

    Args:
        metadata: dict. The content of the entry's metadata.json (as built by
            `kerassl.zoo.save_preset`).
        repo_id: str or None. The Hub id, used in the usage snippet.

    Returns:
        str: Markdown with a YAML front matter block the Hub validates.

    Example:
    ```python
    import json
    card = kerassl.zoo.model_card(json.load(open("my_encoder/metadata.json")))
    ```
    """
    front = yaml.safe_dump(card_metadata(metadata, repo_id), sort_keys=False, allow_unicode=True)
    method = metadata.get("method")
    encoder = metadata["encoder"]
    contract = metadata["input_contract"]
    extra = metadata.get("extra") or {}
    title = repo_id or encoder["name"]
    what = f"A {method['class_name']}-pretrained" if method else "A self-supervised"
    lines = [f"---\n{front}---", f"# {title}", ""]
    lines.append(
        extra.get("summary")
        or f"{what} image encoder ({encoder['name']}, {encoder['parameter_count']:,} parameters) "
        f"published with [kerassl](https://github.com/kerassl/kerassl). It maps images to "
        f"{encoder['feature_dim']}-dimensional feature vectors."
    )
    lines += ["", "## Usage", "", "```python", "import kerassl", ""]
    source = f"hf://{repo_id}" if repo_id else "path/to/this/folder"
    lines += [
        f'encoder = kerassl.zoo.load_encoder("{source}")',
        "features = encoder.predict(kerassl.images.to_float_images(images))  # (N, %s)" % encoder["feature_dim"],
    ]
    if method:
        lines += [f'method = kerassl.zoo.load_method("{source}")  # the whole {method["class_name"]}, to keep training']
    lines += ["```", ""]
    lines += ["## Input contract", "", "| | |", "| --- | --- |"]
    size = contract.get("image_size") or [None, None]
    lines += [
        f"| image size | {size[0]} x {size[1]} |",
        f"| channels | {contract.get('channels')} |",
        f"| layout | {contract.get('layout')} |",
        f"| dtype, range | {contract.get('dtype')} in {contract.get('value_range')} ({contract.get('uint8_input')}) |",
        f"| mean / std | {contract.get('mean')} / {contract.get('std')} |",
        f"| normalization | {contract.get('normalization')} |",
        "",
    ]
    if method:
        lines += [f"## Method: {method['class_name']}", "", "| hyper-parameter | value |", "| --- | --- |"]
        lines += [f"| {key} | {value} |" for key, value in method["hyperparameters"].items()]
        paper = extra.get("paper") or PAPERS.get(method["class_name"])
        if paper:
            text, url = paper if isinstance(paper, (tuple, list)) else (paper, paper)
            lines += ["", f"Paper: [{text}]({url})"]
        lines.append("")
    training = extra.get("training") or {}
    if training:
        lines += ["## Training", "", "| setting | value |", "| --- | --- |"]
        lines += [f"| {key} | {value} |" for key, value in training.items()]
        lines.append("")
    lines += ["## Backbone", "", f"`{encoder['name']}` ({encoder['registered_name']}), input "
              f"{encoder['input_shape']}, {encoder['feature_dim']} features, {encoder['parameter_count']:,} "
              f"parameters. Architecture fingerprint `{encoder['architecture'][:16]}`.", ""]
    lines += _metrics_section(metadata)
    if extra.get("recipe") or extra.get("evaluation"):
        lines += ["## Reproduce", ""]
        for key in ("recipe", "evaluation"):
            if extra.get(key):
                lines += [f"{key.capitalize()}:", "", "```bash", str(extra[key]), "```", ""]
    if extra.get("notes"):
        lines += ["## Notes", "", str(extra["notes"]), ""]
    lines += ["## Files", "", "| file | SHA-256 | bytes |", "| --- | --- | --- |"]
    lines += [
        f"| `{name}` | `{entry['sha256']}` | {entry['size']:,} |"
        for name, entry in metadata.get("files", {}).items()
    ]
    lines += ["", f"Saved with kerassl {metadata.get('kerassl_version')} and Keras {metadata.get('keras_version')}. "
              "`kerassl.zoo.load_encoder` verifies these checksums before loading and always loads "
              "with `safe_mode=True`.", ""]
    return "\n".join(lines)


def _metrics_section(metadata):
    metrics = metadata.get("metrics") or {}
    dataset = metadata.get("dataset") or "unspecified"
    lines = ["## Metrics", ""]
    if not metrics:
        return lines + ["No metrics were published with this encoder.", ""]
    lines += ["| metric | value | dataset | protocol |", "| --- | --- | --- | --- |"]
    for name, entry in metrics.items():
        value = "not yet measured" if entry.get("value") is None else f"{entry['value']:.4f}"
        protocol = entry.get("protocol") or "not stated by the publisher"
        lines.append(f"| {METRIC_NAMES.get(name, name)} | {value} | {dataset} | {protocol} |")
    return lines + [""]


def parse_card(text):
    """Splits a card into (front matter dict, body str); raises ValueError if malformed."""
    if not text.startswith("---"):
        raise ValueError("the card has no YAML front matter (it must start with '---').")
    lines = text.split("\n")
    try:
        end = lines.index("---", 1)
    except ValueError:
        raise ValueError("the card's YAML front matter is not closed by a '---' line.") from None
    data = yaml.safe_load("\n".join(lines[1:end]))
    body = "\n".join(lines[end + 1 :])
    if not isinstance(data, dict):
        raise ValueError("the card's front matter is not a YAML mapping.")
    return data, body

# The other staple methods (appended with them; see kerassl/methods/two_view.py).
PAPERS.update({
    "SimSiam": ("Chen and He, Exploring Simple Siamese Representation Learning, CVPR 2021",
                "https://arxiv.org/abs/2011.10566"),
    "SwAV": ("Caron et al., Unsupervised Learning of Visual Features by Contrasting Cluster Assignments, NeurIPS 2020",
             "https://arxiv.org/abs/2006.09882"),
    "NNCLR": ("Dwibedi et al., With a Little Help from My Friends: Nearest-Neighbor Contrastive Learning, ICCV 2021",
              "https://arxiv.org/abs/2104.14548"),
})
