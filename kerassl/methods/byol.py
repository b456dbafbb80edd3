"""BYOL: bootstrap your own latent."""


from kerassl import heads, losses
from kerassl.methods.two_view import TwoViewMethod, split_views
from kerassl.registry import register



@register
class BYOL(TwoViewMethod):
    """BYOL: an online network predicts a momentum target network's projection of the other view.

    Each image gives two views with BYOL's asymmetric augmentations
    (`kerassl.augment.byol_augmenter`: blur always on view 1 and rarely on
    view 2, solarization on view 2 only; blur off below 64 px). The online
    encoder, projector and predictor map view 1 to a prediction of the
    target network's projection of view 2 and vice versa
    (`kerassl.losses.byol_loss`, 2 - 2 cos per direction). The target is an
    exponential moving average of the online encoder and projector
    (`kerassl.teacher.EMATeacher`), momentum from 0.996 to 1 on a cosine over
    the run; no gradient reaches it. It is updated after each step's loss
    with the online weights of that step (one step behind the official
    code, which updates after the optimizer).

    `model.encoder` is the online encoder (what BYOL evaluates); logged
    beside the loss: `embedding_std` (std of the normalized projections,
    about 1/sqrt(dim) when healthy, 0 at collapse) and `teacher_momentum`.

    Short runs (measured): projector 512-128, predictor 512, `momentum_start=0.99` (0.996 barely moves the
    teacher in a few hundred steps); 2,000 MNIST digits, `small_convnet(width=16)`, BYOL's views without flips at crop
    scale (0.4, 1), AdamW(1e-3), batch 128, 320 steps on TensorFlow; kNN (k=20) against
    0.592 for the mean of 5 random inits (`tests/test_staples_learning.py`): kNN 0.688, and
    `embedding_std` times sqrt(projection dim) 0.81 (0 would be collapse).
    The same recipe on JAX, whose random inits differ (0.728 for the one
    trained, 0.627 mean of 5), ends at 0.643: below that lucky init. The
    backends train identically (same initial weights and deterministic
    views: per-step losses within 0.004 over 24 steps); only the random draws
    differ, and this short recipe is the weakest of the staples.

    Args:
        encoder: keras.Model. Images (batch, H, W, C) in [0, 1] -> (batch, D).
        projection_hidden_dim: int. 4096 in the paper.
        projection_dim: int. 256.
        prediction_hidden_dim: int. 4096.
        momentum_start: float. 0.996 (0.99 suits short runs).
        momentum_end: float. 1.0.
        momentum_schedule_steps: int or None. None: set by each `fit`.
        augmenter: Keras layer or None. View 1; default BYOL's view 1.
        second_augmenter: Keras layer or None. View 2; default BYOL's view 2.
        projection_head: Keras layer or None. Replaces the default projector.
        prediction_head: Keras layer or None. Replaces the default predictor.
        num_classes: int or None. Online linear probe.
        seed: int or None. Seeds the default augmenters.

    Example:
    ```python
    model = kerassl.BYOL(kerassl.backbones.resnet18(input_shape=(32, 32, 3)))
    model.compile(optimizer="adamw")
    model.fit(images, epochs=10, batch_size=256)
    ```

    Reference: Grill et al., "Bootstrap Your Own Latent: A New Approach to
    Self-Supervised Learning", NeurIPS 2020 (https://arxiv.org/abs/2006.07733).
    """

    def __init__(
        self,
        encoder,
        projection_hidden_dim=4096,
        projection_dim=256,
        prediction_hidden_dim=4096,
        momentum_start=0.996,
        momentum_end=1.0,
        momentum_schedule_steps=None,
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
        super().__init__(
            encoder,
            projection_head or heads.byol_projection_head(self.projection_hidden_dim, self.projection_dim),
            prediction_head or heads.prediction_head(self.prediction_hidden_dim, self.projection_dim),
            augmenter=augmenter,
            second_augmenter=second_augmenter,
            momentum_start=momentum_start,
            momentum_end=momentum_end,
            momentum_schedule_steps=momentum_schedule_steps,
            num_classes=num_classes,
            seed=seed,
            **kwargs,
        )

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        y_pred, labels = self.training_outputs(x, y, y_pred, training)
        p1, p2 = split_views(y_pred["predictions"])
        t1, t2 = split_views(y_pred["teacher_projections"])
        loss = losses.byol_loss(p1, p2, t1, t2)
        return self.finish_loss(loss, y_pred, labels, training)

    def get_config(self):
        config = super().get_config()
        config.update(
            projection_hidden_dim=self.projection_hidden_dim,
            projection_dim=self.projection_dim,
            prediction_hidden_dim=self.prediction_hidden_dim,
        )
        return config
