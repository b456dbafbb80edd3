"""The authors' own self-supervised checkpoints on the Hub, as kerassl presets (plain data).

Each entry names the `transformers`-layout repo and the revision to pin, and the
converter family that turns it into a kerassl encoder on load
(`kerassl.zoo.convert`). `revision_provenance` says how the pinned revision was
chosen and what was verified: this machine cannot reach the Hub, so a revision
taken from the issue's reading of stored copies, or from another project's pinned
registry, is recorded as such. Wherever a revision turns out to hold only
`pytorch_model.bin`, the loader reads it with its tensors-only reader.

`parameter_count` is that of the converted kerassl encoder at `input_contract`'s
image size (the repos' untrained ViT pooler and mask tokens are not converted).
`paper_result` quotes the paper's own ImageNet-1k number for that model.
"""

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
NON_COMMERCIAL = "cc-by-nc-4.0"

ISSUE_READING = (
    "from the issue's reading of stored copies of the repo (model.safetensors at this ref); "
    "not verified from here (no Hub access)"
)
MAIN_UNVERIFIED = (
    "main; whether it holds model.safetensors is not verified from here (no Hub access): "
    "the loader prefers model.safetensors and otherwise reads pytorch_model.bin with its "
    "tensors-only reader"
)
MTEB_PIN = (
    "commit pinned by the mteb model registry (embeddings-benchmark/mteb, DINOv2 ModelMeta), "
    "found with the code search; its file list is not verified from here"
)


def input_contract(size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """The input contract of an encoder converted from an official checkpoint."""
    return {
        "image_size": [size, size],
        "channels": 3,
        "layout": "channels_last (batch, height, width, channels)",
        "dtype": "float32 or uint8",
        "value_range": [0.0, 1.0],
        "uint8_input": "accepted: images whose largest value exceeds 1 are divided by 255 inside the model",
        "mean": mean,
        "std": std,
        "normalization": "inside the model ((x - mean) / std on [0, 1] inputs)",
        "other_sizes": "load_encoder(name, image_size=...) interpolates the position embeddings",
    }


_contract = input_contract  # the name the CLIP entries use


def _entry(name, hub_id, revision, provenance, method, backbone, converter, license, params, feature_dim,
           paper, result, description, dataset="imagenet-1k", size=224, output="CLS token after the final LayerNorm"):
    return {
        "name": name,
        "description": description,
        "hub_id": hub_id,
        "revision": revision,
        "revision_provenance": provenance,
        "published": True,
        "method": method,
        "backbone": backbone,
        "converter": converter,
        "feature_dim": feature_dim,
        "feature": output,
        "dataset": dataset,
        "input_contract": input_contract(size),
        "metrics": {},
        "paper_result": result,
        "parameter_count": params,
        "license": license,
        "non_commercial": license == NON_COMMERCIAL,
        "paper": paper,
    }


DINO_PAPER = "https://arxiv.org/abs/2104.14294"
DINO_TABLE = "Caron et al., ICCV 2021, Table 2 (ImageNet-1k, linear / k-NN)"
MAE_PAPER = "https://arxiv.org/abs/2111.06377"
MSN_PAPER = "https://arxiv.org/abs/2204.07141"
DINOV2_PAPER = "https://arxiv.org/abs/2304.07193"
REGISTERS_PAPER = "https://arxiv.org/abs/2309.16588"
IJEPA_PAPER = "https://arxiv.org/abs/2301.08243"


def _dino(name, repo, revision, provenance, backbone, params, dim, linear, knn):
    return _entry(
        name, repo, revision, provenance, "DINO", backbone, "kerassl.zoo.convert.dino", "apache-2.0", params, dim,
        DINO_PAPER, {"linear_top1": linear, "knn_top1": knn, "source": DINO_TABLE},
        f"DINO {backbone} (Caron et al., 2021), the authors' ImageNet-1k checkpoint, converted on load.",
    )


def _mae(name, repo, revision, provenance, backbone, params, dim, finetune):
    return _entry(
        name, repo, revision, provenance, "MAE", backbone, "kerassl.zoo.convert.mae", NON_COMMERCIAL, params, dim,
        MAE_PAPER,
        {"finetune_top1": finetune, "source": "He et al., CVPR 2022, Table 3 (ImageNet-1k fine-tuning, 224 px)"},
        f"MAE {backbone} (He et al., 2022), encoder and official decoder; CC-BY-NC-4.0: non-commercial use only. "
        "load_method returns a kerassl.MAE that reconstructs and keeps pretraining.",
    )


def _msn(name, repo, backbone, params, dim, result):
    return _entry(
        name, repo, "main", MAIN_UNVERIFIED, "MSN", backbone, "kerassl.zoo.convert.msn", NON_COMMERCIAL, params, dim,
        MSN_PAPER, result,
        f"MSN {backbone} (Assran et al., 2022), the authors' ImageNet-1k checkpoint; licensed CC-BY-NC-4.0 "
        "like the authors' repository (facebookresearch/msn): non-commercial use only.",
    )


def _dinov2(name, repo, revision, provenance, backbone, params, dim, linear, registers=False):
    paper = REGISTERS_PAPER if registers else DINOV2_PAPER
    result = (
        {"linear_top1": None, "source": "Darcet et al., ICLR 2024 (not quoted here: see the paper's tables)"}
        if registers
        else {"linear_top1": linear, "source": "Oquab et al., TMLR 2024, Table 4 (ImageNet-1k linear)"}
    )
    what = "DINOv2 with registers" if registers else "DINOv2"
    return _entry(
        name, repo, revision, provenance, "DINOv2", backbone, "kerassl.zoo.convert.dinov2", "apache-2.0", params,
        dim, paper, result,
        f"{what} {backbone} (LVD-142M), converted on load; 224 px by default (its position embeddings are "
        "for 518 px and are resized as transformers does).",
        dataset="lvd-142m",
    )


OFFICIAL_PRESETS = {
    entry["name"]: entry
    for entry in [
        _dino("dino_vits16", "facebook/dino-vits16", "refs/pr/1", ISSUE_READING, "vit_small_patch16", 21665664, 384, 77.0, 74.5),
        _dino("dino_vits8", "facebook/dino-vits8", "main", MAIN_UNVERIFIED, "vit_small_patch8", 21670272, 384, 79.7, 78.3),
        _dino("dino_vitb16", "facebook/dino-vitb16", "refs/pr/7", ISSUE_READING, "vit_base_patch16", 85798656, 768, 78.2, 76.1),
        _dino("dino_vitb8", "facebook/dino-vitb8", "refs/pr/3", ISSUE_READING, "vit_base_patch8", 85807872, 768, 80.1, 77.4),
        _mae("mae_vitb16", "facebook/vit-mae-base", "main", ISSUE_READING, "vit_base_patch16", 85798656, 768, 83.6),
        _mae("mae_vitl16", "facebook/vit-mae-large", "refs/pr/1", ISSUE_READING, "vit_large_patch16", 303301632, 1024, 85.9),
        _mae("mae_vith14", "facebook/vit-mae-huge", "main",
             "main; the issue's reading of stored copies found no model.safetensors in any revision, so "
             "pytorch_model.bin is read with the tensors-only reader (not verified from here)",
             "vit_huge_patch14", 630764800, 1280, 86.9),
        _msn("msn_vits16", "facebook/vit-msn-small", "vit_small_patch16", 21665664, 384,
             {"linear_top1": None, "source": "Assran et al., ECCV 2022 (not quoted here: see the paper's tables)"}),
        _msn("msn_vitb16", "facebook/vit-msn-base", "vit_base_patch16", 85798656, 768,
             {"linear_top1": None, "source": "Assran et al., ECCV 2022 (not quoted here: see the paper's tables)"}),
        _msn("msn_vitl16", "facebook/vit-msn-large", "vit_large_patch16", 303301632, 1024,
             {"linear_top1": None, "source": "Assran et al., ECCV 2022 (not quoted here: see the paper's tables)"}),
        _dinov2("dinov2_vits14", "facebook/dinov2-small", "ed25f3a31f01632728cabb09d1542f84ab7b0056", MTEB_PIN,
                "vit_small_patch14", 21628800, 384, 81.1),
        _dinov2("dinov2_vitb14", "facebook/dinov2-base", "f9e44c814b77203eaa57a6bdbbd535f21ede1415", MTEB_PIN,
                "vit_base_patch14", 85724928, 768, 84.5),
        _dinov2("dinov2_vitl14", "facebook/dinov2-large", "47b73eefe95e8d44ec3623f8890bd894b6ea2d6c", MTEB_PIN,
                "vit_large_patch14", 303227904, 1024, 86.3),
        _dinov2("dinov2_vitg14", "facebook/dinov2-giant", "611a9d42f2335e0f921f1e313ad3c1b7178d206d", MTEB_PIN,
                "vit_giant_patch14_swiglu", 1134769664, 1536, 86.5),
        _dinov2("dinov2_vits14_reg", "facebook/dinov2-with-registers-small", "main", MAIN_UNVERIFIED,
                "vit_small_patch14_reg4", 21630336, 384, None, registers=True),
        _dinov2("dinov2_vitb14_reg", "facebook/dinov2-with-registers-base", "main", MAIN_UNVERIFIED,
                "vit_base_patch14_reg4", 85728000, 768, None, registers=True),
        _dinov2("dinov2_vitl14_reg", "facebook/dinov2-with-registers-large", "main", MAIN_UNVERIFIED,
                "vit_large_patch14_reg4", 303232000, 1024, None, registers=True),
        _dinov2("dinov2_vitg14_reg", "facebook/dinov2-with-registers-giant", "main", MAIN_UNVERIFIED,
                "vit_giant_patch14_swiglu_reg4", 1134775808, 1536, None, registers=True),
        _entry(
            "ijepa_vith14_1k", "facebook/ijepa_vith14_1k", "main", MAIN_UNVERIFIED, "I-JEPA", "vit_huge_patch14",
            "kerassl.zoo.convert.ijepa", NON_COMMERCIAL, 630762240, 1280, IJEPA_PAPER,
            {"linear_top1": 79.3, "source": "Assran et al., CVPR 2023, Table 1 (ImageNet-1k linear, ViT-H/14, 300 ep)"},
            "I-JEPA ViT-H/14 (Assran et al., 2023) context encoder; CC-BY-NC-4.0 like the authors' repository: "
            "non-commercial use only.",
            output="mean of the patch tokens after the final LayerNorm",
        ),
    ]
}


CLIP_PAPER = "https://arxiv.org/abs/2103.00020"
OPENAI_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_STD = [0.26862954, 0.26130258, 0.27577711]
CLIP_ZERO_SHOT = (
    "Radford et al., ICML 2021, zero-shot ImageNet top-1 (80-prompt ensemble) of the released model, "
    "as quoted by secondary sources; not checked against the paper's PDF from here"
)
SNAPSHOT_PIN = (
    "commit seen pinned in other projects' Hugging Face cache paths (code search), {files}; "
    "not verified from here (no Hub access)"
)


def _clip(name, repo, revision, files, backbone, params, method_params, dim, zero_shot):
    entry = _entry(
        name, repo, revision, SNAPSHOT_PIN.format(files=files), "CLIP", backbone, "kerassl.zoo.convert.clip",
        "mit", params, dim, CLIP_PAPER, {"zero_shot_top1": zero_shot, "source": CLIP_ZERO_SHOT},
        f"OpenAI CLIP {backbone}: load_encoder gives the image tower with its projection (L2-normalized "
        "embeddings); load_method gives a kerassl.CLIP with both towers, the learned logit scale and "
        "OpenAI's BPE tokenizer (zero_shot_classifier, encode_text, retrieval, more training).",
        dataset="openai-wit-400m", output="projected CLS token after post_layernorm, L2-normalized",
    )
    entry["input_contract"] = _contract(224, OPENAI_MEAN, OPENAI_STD)
    entry["method_parameter_count"] = method_params
    entry["text_contract"] = {
        "tokenizer": "kerassl.clip_bpe.CLIPTokenizer (OpenAI's byte-level BPE, 49408 tokens)",
        "context_length": 77,
    }
    return entry


OFFICIAL_PRESETS.update(
    (entry["name"], entry)
    for entry in [
        _clip("clip_vitb32", "openai/clip-vit-base-patch32", "3d74acf9a28c67741b2f4f2ea7635f0aaf6f0268",
              "whose file list holds pytorch_model.bin and no model.safetensors by another project's note "
              "of 2026-07-11 (read with the tensors-only reader)",
              "vit_base_patch32", 87849216, 151277313, 512, 63.2),
        _clip("clip_vitb16", "openai/clip-vit-base-patch16", "57c216476eefef5ab752ec549e440a49ae4ae5f3",
              "file list unknown: the loader prefers model.safetensors and otherwise reads pytorch_model.bin "
              "with its tensors-only reader",
              "vit_base_patch16", 86192640, 149620737, 512, 68.3),
        _clip("clip_vitl14", "openai/clip-vit-large-patch14", "32bd64288804d66eefd0ccbe215aa642df71cc41",
              "whose model.safetensors other projects load by that path",
              "vit_large_patch14", 303966208, 427616513, 768, 75.3),
    ]
)
