"""VICReg: variance-invariance-covariance regularization."""

import keras

from kerassl import heads, losses
from kerassl.methods.two_view import TwoViewMethod, split_views
from kerassl.registry import register



@register
class VICReg(TwoViewMethod):
    """VICReg: two views' embeddings kept close, each dimension's spread kept up, dimensions decorrelated.

    The loss (`kerassl.losses.vicreg`) adds an invariance term (mean squared
    error between the views' embeddings, weight 25), a variance hinge
    keeping each dimension's std above 1 (weight 25) and a covariance term
    pushing off-diagonal covariances to 0 (weight 1). Projector
    8192-8192-8192 and BYOL's asymmetric views, as the official code.

    Logged: `invariance`, `variance`, `covariance` (the unweighted terms) and
    `embedding_std` (std of the normalized projections; about 1/sqrt(dim)
    healthy, 0 at collapse).

    Short runs (measured): projector 512-512-512; 2,000 MNIST digits, `small_convnet(width=16)`, BYOL's views without flips at crop
    scale (0.4, 1), AdamW(1e-3), batch 128, 320 steps on TensorFlow; kNN (k=20) against
    0.592 for the mean of 5 random inits (`tests/test_staples_learning.py`): kNN 0.833, and
    `embedding_std` times sqrt(projection dim) 0.84 (0 would be collapse).

    Args:
        encoder: keras.Model. Images in [0, 1] -> (batch, D).
        projection_hidden_dim: int. 8192.
        projection_dim: int. 8192.
        invariance_weight: float. 25.
        variance_weight: float. 25.
        covariance_weight: float. 1.
        augmenter: Keras layer or None. View 1; default BYOL's view 1.
        second_augmenter: Keras layer or None. View 2; default BYOL's view 2.
        projection_head: Keras layer or None.
        num_classes: int or None. Online linear probe.
        seed: int or None.

    Example:
    ```python
    model = kerassl.VICReg(encoder, projection_hidden_dim=2048, projection_dim=2048)
    model.compile(optimizer="adamw")
    model.fit(images, epochs=10, batch_size=256)
    ```

    Reference: Bardes, Ponce and LeCun, "VICReg: Variance-Invariance-Covariance
    Regularization for Self-Supervised Learning", ICLR 2022
    (https://arxiv.org/abs/2105.04906).
    """

    def __init__(
        self,
        encoder,
        projection_hidden_dim=8192,
        projection_dim=8192,
        invariance_weight=25.0,
        variance_weight=25.0,
        covariance_weight=1.0,
        augmenter=None,
        second_augmenter=None,
        projection_head=None,
        num_classes=None,
        seed=None,
        **kwargs,
    ):
        self.projection_hidden_dim = int(projection_hidden_dim)
        self.projection_dim = int(projection_dim)
        self.invariance_weight = float(invariance_weight)
        self.variance_weight = float(variance_weight)
        self.covariance_weight = float(covariance_weight)
        super().__init__(
            encoder,
            projection_head or heads.barlow_twins_projection_head(self.projection_hidden_dim, self.projection_dim),
            augmenter=augmenter,
            second_augmenter=second_augmenter,
            num_classes=num_classes,
            seed=seed,
            **kwargs,
        )
        self.invariance_tracker = keras.metrics.Mean(name="invariance")
        self.variance_tracker = keras.metrics.Mean(name="variance")
        self.covariance_tracker = keras.metrics.Mean(name="covariance")

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        y_pred, labels = self.training_outputs(x, y, y_pred, training)
        z1, z2 = split_views(y_pred["projections"])
        loss, terms = losses.vicreg(
            z1, z2, self.invariance_weight, self.variance_weight, self.covariance_weight, return_terms=True
        )
        trackers = (self.invariance_tracker, self.variance_tracker, self.covariance_tracker)
        for tracker, term in zip(trackers, terms):
            tracker.update_state(term)
        return self.finish_loss(loss, y_pred, labels, training)

    def get_config(self):
        config = super().get_config()
        config.update(
            projection_hidden_dim=self.projection_hidden_dim,
            projection_dim=self.projection_dim,
            invariance_weight=self.invariance_weight,
            variance_weight=self.variance_weight,
            covariance_weight=self.covariance_weight,
        )
        return config
