"""SimSiam: simple Siamese networks with a stop-gradient."""


from kerassl import augment, heads, losses
from kerassl.methods.two_view import TwoViewMethod, split_views
from kerassl.registry import register



@register
class SimSiam(TwoViewMethod):
    """SimSiam: each view's prediction matches the other view's projection, no negatives, no teacher.

    Encoder and projector f are shared by both views; a predictor h maps one
    view's projection to the other's, and a stop-gradient on the target
    (`kerassl.losses.simsiam_loss`, -cos averaged over both directions) is
    what keeps it from collapsing (SimSiam, Sec. 4.1). Views: SimCLR's
    (`kerassl.augment.simclr_augmenter`) with crop scale (0.2, 1) and colour
    strength 0.5 (brightness, contrast, saturation 0.4, hue 0.1), as the
    official code.

    Logged: `embedding_std`, the paper's collapse indicator (std of the
    normalized projections over the batch, about 1/sqrt(dim) when healthy,
    0 at collapse).

    Short runs (measured): projector 512-512 (`projection_layers=2`, the paper's CIFAR depth), predictor
    bottleneck 128; 2,000 MNIST digits, `small_convnet(width=16)`, BYOL's views without flips at crop
    scale (0.4, 1), AdamW(1e-3), batch 128, 320 steps on TensorFlow; kNN (k=20) against
    0.592 for the mean of 5 random inits (`tests/test_staples_learning.py`): kNN 0.756, and
    `embedding_std` times sqrt(projection dim) 0.99 (0 would be collapse).

    Args:
        encoder: keras.Model. Images in [0, 1] -> (batch, D).
        projection_hidden_dim: int. 2048.
        projection_dim: int. 2048.
        projection_layers: int. 3 on ImageNet (2 on CIFAR-10 in the paper).
        prediction_hidden_dim: int. 512 (the bottleneck).
        augmenter: Keras layer or None. Both views.
        second_augmenter: Keras layer or None. View 2 if different.
        projection_head: Keras layer or None.
        prediction_head: Keras layer or None.
        num_classes: int or None. Online linear probe.
        seed: int or None.

    Example:
    ```python
    model = kerassl.SimSiam(kerassl.backbones.resnet18(input_shape=(32, 32, 3)))
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    model.fit(images, epochs=10, batch_size=256)
    ```

    Reference: Chen and He, "Exploring Simple Siamese Representation
    Learning", CVPR 2021 (https://arxiv.org/abs/2011.10566).
    """

    def __init__(
        self,
        encoder,
        projection_hidden_dim=2048,
        projection_dim=2048,
        projection_layers=3,
        prediction_hidden_dim=512,
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
        self.projection_layers = int(projection_layers)
        self.prediction_hidden_dim = int(prediction_hidden_dim)
        super().__init__(
            encoder,
            projection_head
            or heads.simsiam_projection_head(self.projection_hidden_dim, self.projection_dim, self.projection_layers),
            prediction_head or heads.prediction_head(self.prediction_hidden_dim, self.projection_dim),
            augmenter=augmenter,
            second_augmenter=second_augmenter,
            num_classes=num_classes,
            seed=seed,
            **kwargs,
        )

    def default_augmenters(self, image_shape):
        view = augment.simclr_augmenter(
            image_shape[1:3], image_shape[-1], scale=(0.2, 1.0), jitter_strength=0.5, seed=self.seed
        )
        return view, None

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        y_pred, labels = self.training_outputs(x, y, y_pred, training)
        p1, p2 = split_views(y_pred["predictions"])
        z1, z2 = split_views(y_pred["projections"])
        loss = losses.simsiam_loss(p1, p2, z1, z2)
        return self.finish_loss(loss, y_pred, labels, training)

    def get_config(self):
        config = super().get_config()
        config.update(
            projection_hidden_dim=self.projection_hidden_dim,
            projection_dim=self.projection_dim,
            projection_layers=self.projection_layers,
            prediction_hidden_dim=self.prediction_hidden_dim,
        )
        return config
