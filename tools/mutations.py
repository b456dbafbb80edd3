"""Deliberate breakages of kerassl that the default (fast) test suite must catch.

Each mutation is a patch: in FILES[file], replace the exact `old` snippet (which must
occur exactly once) by `new`. `tests` are the test files that should catch it, the
fastest first; the mutation runner (`tools/mutate.py`) runs them in that order with `-x` (or the whole fast suite with
`--full`). Test files that do not exist (an older checkout) are skipped.

Paths live in FILES only, so a restructure of the package changes one table.
"""

import dataclasses

# Library files the mutations patch, by short name.
FILES = {
    "base": "kerassl/methods/base.py",
    "simclr": "kerassl/methods/simclr.py",
    "losses": "kerassl/losses/contrastive.py",
    "clip": "kerassl/methods/clip.py",
    "losses_clip": "kerassl/losses/clip.py",
    "dino": "kerassl/methods/dino.py",
    "losses_distill": "kerassl/losses/distill.py",
    "vit": "kerassl/backbones/vit.py",
    "mae": "kerassl/methods/mae.py",
    "rotnet": "kerassl/methods/rotnet.py",
    "jigsaw": "kerassl/methods/jigsaw.py",
    "autoencoder": "kerassl/methods/autoencoder.py",
    "gan": "kerassl/methods/gan.py",
    "losses_gan": "kerassl/losses/gan.py",
    "byol": "kerassl/methods/byol.py",
    "moco": "kerassl/methods/moco.py",
    "simsiam": "kerassl/methods/simsiam.py",
    "nnclr": "kerassl/methods/nnclr.py",
    "barlow_twins": "kerassl/methods/barlow_twins.py",
    "vicreg": "kerassl/methods/vicreg.py",
    "teacher": "kerassl/teacher.py",
    "two_view": "kerassl/methods/two_view.py",
    "losses_byol": "kerassl/losses/byol.py",
    "losses_swav": "kerassl/losses/swav.py",
}

# New test files of issue 19, mapped to every mutation of their method.
SIGNALS = "tests/test_learning_signals.py"
WIRING = "tests/test_wiring.py"
STAPLES_WIRING = "tests/test_wiring_staples.py"


@dataclasses.dataclass(frozen=True)
class Mutation:
    name: str
    file: str  # a key of FILES
    old: str
    new: str
    tests: tuple
    what: str


MUTATIONS = [
    # -- SimCLR -------------------------------------------------------------
    Mutation(
        "simclr_wrong_positives", "simclr",
        "loss = losses.nt_xent(z1, z2, self.temperature, *distributed.gather_batch(z1, z2))",
        "loss = losses.nt_xent(z1, ops.roll(z2, 1, axis=0), self.temperature, "
        "*distributed.gather_batch(z1, ops.roll(z2, 1, axis=0)))",
        (WIRING, "tests/test_simclr.py", SIGNALS),
        "each view's positive is another image's view",
    ),
    Mutation(
        "simclr_identity_views", "simclr",
        "[self.augmenter(images, training=True), self.augmenter(images, training=True)]",
        "[images, images]",
        (WIRING, "tests/test_simclr.py", SIGNALS),
        "both views are the unaugmented image",
    ),
    Mutation(
        "nt_xent_positive_index", "losses",
        "return (index + batch_size_tensor) % total",
        "return (index + batch_size_tensor + 1) % total",
        (WIRING, "tests/test_losses.py", "tests/test_simclr.py", SIGNALS),
        "NT-Xent and contrastive accuracy pair view i with view i + N + 1",
    ),
    Mutation(
        "nt_xent_no_self_mask", "losses",
        "return ops.where(ops.eye(size, dtype=\"bool\"), MASK_VALUE, logits)",
        "return logits",
        (WIRING, "tests/test_losses.py", "tests/test_simclr.py", SIGNALS),
        "a view counts itself among its negatives",
    ),
    # -- CLIP ---------------------------------------------------------------
    Mutation(
        "clip_wrong_pairs", "clip",
        "loss = clip_loss(images, texts, scale, *distributed.gather_batch(images, texts))",
        "loss = clip_loss(images, ops.roll(texts, 1, axis=0), scale, "
        "*distributed.gather_batch(images, ops.roll(texts, 1, axis=0)))",
        (WIRING, "tests/test_clip.py", SIGNALS),
        "each image is trained against the next image's caption",
    ),
    Mutation(
        "clip_loss_one_direction", "losses_clip",
        "labels, ops.transpose(logits), from_logits=True",
        "labels, logits, from_logits=True",
        (WIRING, "tests/test_clip.py", SIGNALS),
        "the text-to-image term uses the image-to-text logits",
    ),
    Mutation(
        "clip_text_ignored", "clip",
        "return l2_normalize(self.text_projection(self.text_encoder(tokens, training=training)))",
        "return l2_normalize(self.text_projection(ops.zeros_like(self.text_encoder(tokens, training=training))))",
        (WIRING, "tests/test_clip.py", SIGNALS),
        "the text embedding ignores the text",
    ),
    # -- DINO ---------------------------------------------------------------
    Mutation(
        "dino_targets_from_student", "dino",
        "teacher_logits = self.teacher_head(encode(self.encoder, global_views, training), training=training)",
        "teacher_logits = self.head(encode(self.student_encoder, global_views, training), training=training)",
        (WIRING, "tests/test_dino.py", SIGNALS),
        "the targets come from the student, not the EMA teacher",
    ),
    Mutation(
        "dino_identity_views", "dino",
        "[self.global_augmenter(images, training=True) for _ in range(2)]",
        "[images for _ in range(2)]",
        (WIRING, "tests/test_dino.py", SIGNALS),
        "both global crops are the unaugmented image",
    ),
    Mutation(
        "dino_no_centering", "losses_distill",
        "teacher = ops.softmax((ops.cast(teacher_logits, \"float32\") - center) / teacher_temperature, axis=-1)",
        "teacher = ops.softmax(ops.cast(teacher_logits, \"float32\") / teacher_temperature, axis=-1)",
        (WIRING, "tests/test_dino.py", SIGNALS),
        "the loss ignores the centre",
    ),
    Mutation(
        "dino_ema_reversed", "dino",
        "teacher.assign(momentum * teacher + (1.0 - momentum) * value)",
        "teacher.assign((1.0 - momentum) * teacher + momentum * value)",
        (WIRING, "tests/test_dino.py", SIGNALS),
        "the teacher jumps to the student instead of averaging it",
    ),
    # -- ViT attention maps -------------------------------------------------
    Mutation(
        "attention_map_wrong_query", "vit",
        "maps = ops.convert_to_numpy(weights[:, :, 0, transformer.num_prefix_tokens :])",
        "maps = ops.convert_to_numpy(weights[:, :, 1, transformer.num_prefix_tokens :])",
        (WIRING, "tests/test_vit.py"),
        "the map is read from the first patch's query, not the CLS token's",
    ),
    Mutation(
        "attention_unscaled", "vit",
        "scores = ops.einsum(\"bqhd,bkhd->bhqk\", query, key) / np.sqrt(self.head_dim)",
        "scores = ops.einsum(\"bqhd,bkhd->bhqk\", query, key)",
        (WIRING, "tests/test_vit.py"),
        "the explicit attention path drops the 1/sqrt(d) scale",
    ),
    # -- the online probe (every method) ------------------------------------
    Mutation(
        "probe_wrong_labels", "base",
        "labels = ops.tile(labels, (repeats,))",
        "labels = ops.tile(ops.roll(labels, 1, axis=0), (repeats,))",
        (WIRING, "tests/test_simclr.py", SIGNALS),
        "the online probe trains on another image's label",
    ),
    Mutation(
        "probe_gradient_reaches_encoder", "base",
        "logits = ops.cast(self.probe(ops.stop_gradient(features)), \"float32\")",
        "logits = ops.cast(self.probe(features), \"float32\")",
        (WIRING, "tests/test_simclr.py", SIGNALS),
        "labels leak into the encoder through the probe's gradient",
    ),
    # -- MAE ----------------------------------------------------------------
    Mutation(
        "mae_loss_on_visible_patches", "mae",
        "y_pred[\"predictions\"], y_pred[\"targets\"], y_pred[\"mask\"], self.normalize_targets",
        "y_pred[\"predictions\"], y_pred[\"targets\"], 1.0 - y_pred[\"mask\"], self.normalize_targets",
        (WIRING, "tests/test_mae.py", SIGNALS),
        "the loss scores the visible patches instead of the hidden ones",
    ),
    Mutation(
        "mae_decoder_ignores_encoder", "mae",
        "x = self.decoder_embedding(tokens)",
        "x = self.decoder_embedding(ops.zeros_like(tokens))",
        (WIRING, "tests/test_mae.py", SIGNALS),
        "the decoder never sees what the encoder made of the visible patches",
    ),
    # -- RotNet -------------------------------------------------------------
    Mutation(
        "rotnet_targets_misaligned", "rotnet",
        "targets = ops.repeat(ops.arange(NUM_ROTATIONS, dtype=\"int32\"), batch)",
        "targets = ops.tile(ops.arange(NUM_ROTATIONS, dtype=\"int32\"), (batch,))",
        (WIRING, "tests/test_rotnet.py", SIGNALS),
        "rotation labels do not follow the rotated images",
    ),
    Mutation(
        "rotnet_no_rotation", "rotnet",
        "rotated, _ = all_rotations(center_square_crop(images))",
        "rotated = ops.tile(center_square_crop(images), (4, 1, 1, 1))",
        (WIRING, "tests/test_rotnet.py", SIGNALS),
        "the four 'rotations' are the same upright image",
    ),
    # -- Jigsaw -------------------------------------------------------------
    Mutation(
        "jigsaw_targets_shuffled", "jigsaw",
        "targets = y_pred[\"puzzle_labels\"]",
        "targets = ops.roll(y_pred[\"puzzle_labels\"], 1, axis=0)",
        (WIRING, "tests/test_jigsaw.py", SIGNALS),
        "each puzzle is scored against another puzzle's permutation",
    ),
    Mutation(
        "jigsaw_tiles_not_permuted", "jigsaw",
        "order = ops.take(ops.convert_to_tensor(self.permutations), labels, axis=0)",
        "order = ops.take(ops.convert_to_tensor(self.permutations), ops.zeros_like(labels), axis=0)",
        (WIRING, "tests/test_jigsaw.py", SIGNALS),
        "every puzzle uses the first permutation, whatever its label",
    ),
    # -- Autoencoder --------------------------------------------------------
    Mutation(
        "autoencoder_noisy_targets", "autoencoder",
        "\"targets\": images,",
        "\"targets\": noisy,",
        (WIRING, "tests/test_autoencoder.py", SIGNALS),
        "a denoising autoencoder is trained to reproduce the noise",
    ),
    Mutation(
        "autoencoder_decoder_ignores_features", "autoencoder",
        "\"reconstructions\": self.decoder(features, training=self.layers_training),",
        "\"reconstructions\": self.decoder(features * 0.0, training=self.layers_training),",
        (WIRING, "tests/test_autoencoder.py", SIGNALS),
        "the decoder draws without the encoder's features",
    ),
    # -- GAN ----------------------------------------------------------------
    Mutation(
        "gan_generator_helps_discriminator", "losses_gan",
        "    return sigmoid_cross_entropy(1.0, fake_logits)",
        "    return sigmoid_cross_entropy(0.0, fake_logits)",
        (WIRING, "tests/test_gan.py", SIGNALS),
        "the generator minimizes the discriminator's loss instead of fooling it",
    ),
    Mutation(
        "gan_discriminator_labels_swapped", "losses_gan",
        "return sigmoid_cross_entropy(1.0 - label_smoothing, real_logits) + sigmoid_cross_entropy(\n        0.0, fake_logits\n    )",
        "return sigmoid_cross_entropy(0.0, real_logits) + sigmoid_cross_entropy(\n        1.0 - label_smoothing, fake_logits\n    )",
        (WIRING, "tests/test_gan.py", SIGNALS),
        "the discriminator calls real images fake",
    ),
    Mutation(
        "gan_discriminator_sees_only_fakes", "gan",
        "real_logits = self.discriminator(real_images, training=True)",
        "real_logits = self.discriminator(fake_images, training=True)",
        (WIRING, "tests/test_gan.py", SIGNALS),
        "the discriminator never sees a real image",
    ),
    # -- The staples (issue 16) ----------------------------------------------
    Mutation(
        "byol_targets_from_student", "byol",
        't1, t2 = split_views(y_pred["teacher_projections"])',
        't1, t2 = split_views(y_pred["projections"])',
        (STAPLES_WIRING, "tests/test_staples.py"),
        "BYOL's targets are the online projections, not the EMA teacher's",
    ),
    Mutation(
        "byol_same_view_targets", "byol",
        "loss = losses.byol_loss(p1, p2, t1, t2)",
        "loss = losses.byol_loss(p1, p2, t2, t1)",
        (STAPLES_WIRING, "tests/test_staples.py"),
        "each BYOL prediction targets the teacher's projection of its own view",
    ),
    Mutation(
        "moco_v3_same_view_keys", "moco",
        "losses.moco_v3_loss(q1, k2, self.temperature) + losses.moco_v3_loss(q2, k1, self.temperature)",
        "losses.moco_v3_loss(q1, k1, self.temperature) + losses.moco_v3_loss(q2, k2, self.temperature)",
        (STAPLES_WIRING, "tests/test_staples.py"),
        "MoCo v3's queries are contrasted with the keys of their own view",
    ),
    Mutation(
        "moco_v2_keys_from_query_view", "two_view",
        "views, teacher_views = first, second",
        "views, teacher_views = first, first",
        (STAPLES_WIRING, "tests/test_staples.py"),
        "MoCo v2's positive key is the teacher's view of the query's own crop",
    ),
    Mutation(
        "simsiam_same_view", "simsiam",
        "loss = losses.simsiam_loss(p1, p2, z1, z2)",
        "loss = losses.simsiam_loss(p1, p2, z2, z1)",
        (STAPLES_WIRING, "tests/test_staples.py"),
        "SimSiam predicts the projection of the same view",
    ),
    Mutation(
        "simsiam_no_stop_gradient", "losses_byol",
        "z = ops.stop_gradient(l2_normalize(z))",
        "z = l2_normalize(z)",
        ("tests/test_losses_staples.py", "tests/test_teacher.py", STAPLES_WIRING),
        "the negative cosine lets gradient flow into its targets (SimSiam's collapse)",
    ),
    Mutation(
        "nnclr_no_neighbour", "nnclr",
        "nn1 = losses.nearest_neighbour(z1_unit, support)",
        "nn1 = z1_unit",
        (STAPLES_WIRING, "tests/test_staples.py"),
        "NNCLR uses the view's own projection instead of its nearest neighbour",
    ),
    Mutation(
        "barlow_twins_ignores_off_diagonal", "barlow_twins",
        "loss = losses.barlow_twins(z1, z2, self.off_diagonal_weight)",
        "loss = losses.barlow_twins(z1, z2, 0.0)",
        (STAPLES_WIRING, "tests/test_staples.py"),
        "Barlow Twins drops its redundancy-reduction term",
    ),
    Mutation(
        "vicreg_no_variance", "vicreg",
        "z1, z2, self.invariance_weight, self.variance_weight, self.covariance_weight, return_terms=True",
        "z1, z2, self.invariance_weight, 0.0, self.covariance_weight, return_terms=True",
        (STAPLES_WIRING, "tests/test_staples.py"),
        "VICReg drops the variance term that prevents collapse",
    ),
    Mutation(
        "ema_teacher_frozen", "teacher",
        "teacher.assign(momentum * teacher + (1.0 - momentum) * value)",
        "teacher.assign(teacher)",
        ("tests/test_teacher.py", "tests/test_staples.py"),
        "the EMA teacher never moves (a frozen teacher)",
    ),
    Mutation(
        "queue_returns_after_update", "teacher",
        "        return before\n",
        "        return self.content()\n",
        ("tests/test_teacher.py", "tests/test_staples.py"),
        "the memory bank returns the batch's own keys among its negatives",
    ),
    Mutation(
        "swav_predicts_own_code", "losses_swav",
        "if v != i:",
        "if v == i:",
        ("tests/test_losses_staples.py", "tests/test_staples.py"),
        "SwAV predicts each crop's code from the same crop instead of swapping",
    ),
    # -- evaluate (every method; tests/method_harness.py checks it after training) --
    Mutation(
        "evaluate_in_training_mode", "base",
        '        return not getattr(self, "_evaluating", False)',
        "        return True",
        ("tests/test_evaluate_side_effects.py", "tests/test_staples.py"),
        "evaluate runs BatchNorm in training mode: its moving statistics move",
    ),
    Mutation(
        "evaluate_keeps_its_fixed_seed", "base",
        "        for state, value in zip(states, saved):\n            state.assign(value)\n",
        "",
        ("tests/test_evaluate_side_effects.py", "tests/test_staples.py"),
        "evaluate leaves its fixed seed in the augmenters' random state",
    ),
]
