"""NNCLR: nearest-neighbour contrastive learning."""


from kerassl import heads, losses
from kerassl.methods.two_view import TwoViewMethod, split_views
from kerassl.teacher import MemoryBank
from kerassl.registry import register



@register
class NNCLR(TwoViewMethod):
    """NNCLR: a view's nearest neighbour in a support set is the positive for the other view.

    Each view's projection is replaced by its nearest neighbour (cosine) in
    a support set of earlier projections (`kerassl.losses.nearest_neighbour`
    on a `kerassl.teacher.MemoryBank` of `queue_size` rows, read before this
    batch is added), which must pick the other view's prediction among the
    batch's (`kerassl.losses.nnclr_loss`, temperature 0.1), both ways
    averaged; view 1's projections then join the support set (the paper's
    Algorithm 1). Projector 2048-2048-256 with BatchNorm, predictor
    4096-256, BYOL's asymmetric views. The support set starts as random unit
    vectors (as lightly's), so the first `queue_size / batch` steps draw
    neighbours partly from noise.

    Logged: `embedding_std` (std of the normalized projections; about
    1/sqrt(dim) healthy, 0 at collapse).

    Short runs (measured): projector 512-512-128, predictor 512, `queue_size=1024`; 2,000 MNIST digits, `small_convnet(width=16)`, BYOL's views without flips at crop
    scale (0.4, 1), AdamW(1e-3), batch 128, 320 steps on TensorFlow; kNN (k=20) against
    0.592 for the mean of 5 random inits (`tests/test_staples_learning.py`): kNN 0.810, and
    `embedding_std` times sqrt(projection dim) 1.00 (0 would be collapse).

    Args:
        encoder: keras.Model. Images in [0, 1] -> (batch, D).
        projection_hidden_dim: int. 2048.
        projection_dim: int. 256.
        prediction_hidden_dim: int. 4096.
        temperature: float. 0.1.
        queue_size: int. 98304 in the paper (a few thousand suit small data).
        augmenter: Keras layer or None. View 1; default BYOL's view 1.
        second_augmenter: Keras layer or None. View 2; default BYOL's view 2.
        projection_head: Keras layer or None.
        prediction_head: Keras layer or None.
        num_classes: int or None. Online linear probe.
        seed: int or None.

    Example:
    ```python
    model = kerassl.NNCLR(encoder, queue_size=4096)
    model.compile(optimizer="adamw")
    model.fit(images, epochs=10, batch_size=256)
    ```

    Reference: Dwibedi et al., "With a Little Help from My Friends:
    Nearest-Neighbor Contrastive Learning of Visual Representations", ICCV
    2021 (https://arxiv.org/abs/2104.14548).
    """

    def __init__(
        self,
        encoder,
        projection_hidden_dim=2048,
        projection_dim=256,
        prediction_hidden_dim=4096,
        temperature=0.1,
        queue_size=98304,
        augmenter=None,
        second_augmenter=None,
        projection_head=None,
        prediction_head=None,
        num_classes=None,
        seed=None,
        **kwargs,
    ):
        self.projection_hidden_dim = int(projection_hidden_dim)
        self.projection_dim = int(projection_dim)
        self.prediction_hidden_dim = int(prediction_hidden_dim)
        self.temperature = losses.check_temperature(temperature)
        if int(queue_size) < 1:
            raise ValueError(f"queue_size must be a positive int; got {queue_size}.")
        self.queue_size = int(queue_size)
        super().__init__(
            encoder,
            projection_head or heads.nnclr_projection_head(self.projection_hidden_dim, self.projection_dim),
            prediction_head or heads.prediction_head(self.prediction_hidden_dim, self.projection_dim),
            augmenter=augmenter,
            second_augmenter=second_augmenter,
            num_classes=num_classes,
            seed=seed,
            **kwargs,
        )
        self.support_set = None

    def build_extra(self, feature_dim, projection_dim):
        if self.support_set is None:
            self.support_set = MemoryBank(self.queue_size, projection_dim, seed=self.seed, name="support_set")

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        y_pred, labels = self.training_outputs(x, y, y_pred, training)
        z1, z2 = split_views(y_pred["projections"])
        p1, p2 = split_views(y_pred["predictions"])
        z1_unit = losses.l2_normalize(z1)
        support = self.support_set.update(z1_unit) if training else self.support_set.content()
        nn1 = losses.nearest_neighbour(z1_unit, support)
        nn2 = losses.nearest_neighbour(z2, support)
        loss = 0.5 * (losses.nnclr_loss(nn1, p2, self.temperature) + losses.nnclr_loss(nn2, p1, self.temperature))
        return self.finish_loss(loss, y_pred, labels, training)

    def get_config(self):
        config = super().get_config()
        config.update(
            projection_hidden_dim=self.projection_hidden_dim,
            projection_dim=self.projection_dim,
            prediction_hidden_dim=self.prediction_hidden_dim,
            temperature=self.temperature,
            queue_size=self.queue_size,
        )
        return config
