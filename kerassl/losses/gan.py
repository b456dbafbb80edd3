"""Losses of the GAN: the discriminator's cross-entropy and the non-saturating generator loss.

Reference: Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014
(https://arxiv.org/abs/1406.2661).
"""

from keras import ops


def sigmoid_cross_entropy(targets, logits):
    """Mean binary cross-entropy of logits against targets in [0, 1], computed stably."""
    logits = ops.cast(logits, "float32")
    # -t log s(l) - (1 - t) log(1 - s(l)) = softplus(l) - t l
    return ops.mean(ops.softplus(logits) - targets * logits)


def discriminator_loss(real_logits, fake_logits, label_smoothing=0.0):
    """The discriminator's cross-entropy: real images are 1, generated ones 0.

    Args:
        real_logits: tensor (B, 1). Discriminator logits on real images.
        fake_logits: tensor (B, 1). Logits on generated images.
        label_smoothing: float in [0, 1). One-sided label smoothing (Salimans
            et al., 2016): real targets become 1 - label_smoothing, fake
            targets stay 0, so the discriminator is not pushed to
            overconfidence.

    Returns:
        Scalar: the sum of the mean loss on real and on fake images.
    """
    return sigmoid_cross_entropy(1.0 - label_smoothing, real_logits) + sigmoid_cross_entropy(
        0.0, fake_logits
    )


def generator_loss(fake_logits):
    """The non-saturating generator loss, -log D(G(z)) (Goodfellow et al., 2014).

    It has strong gradients early on, when the discriminator easily rejects
    the samples, where the minimax form log(1 - D(G(z))) saturates.
    """
    return sigmoid_cross_entropy(1.0, fake_logits)
