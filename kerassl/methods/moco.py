"""MoCo v2 and v3: momentum contrast."""


from keras import ops

from kerassl import augment, heads, losses
from kerassl.methods.two_view import TwoViewMethod, split_views
from kerassl.teacher import MemoryBank
from kerassl.registry import register


# Each version's defaults, from the official code (moco: main_moco.py with
# --mlp --aug-plus --cos; moco-v3: main_moco.py for ResNets).
VERSIONS = {
    "v2": dict(projection_hidden_dim=2048, projection_dim=128, temperature=0.2, momentum_start=0.999, momentum_end=0.999),
    "v3": dict(projection_hidden_dim=4096, projection_dim=256, temperature=1.0, momentum_start=0.99, momentum_end=1.0),
}


@register
class MoCo(TwoViewMethod):
    """MoCo: queries must find their key, encoded by a momentum encoder, among negatives.

    `version="v3"` (default): the online encoder, projector and predictor
    make queries from both views; a momentum copy of the encoder and
    projector makes keys; each query must pick its own key among the batch's
    keys (`kerassl.losses.moco_v3_loss`, cross-entropy times 2T, both
    directions added). Temperature 1.0, momentum 0.99 -> 1 on a cosine,
    projector 4096-256 with BatchNorm, predictor 4096-256, BYOL's
    asymmetric views (the ResNet settings of `facebookresearch/moco-v3`).

    `version="v2"`: no predictor; queries from view 1, keys from view 2,
    negatives from a queue of `queue_size` earlier keys
    (`kerassl.teacher.MemoryBank`, updated inside the step, saved with the
    model; `kerassl.losses.moco_v2_loss`). As in the paper, the step is
    one-sided: view 1 goes through the encoder and projector only, view 2
    through the momentum encoder only, so a step costs one trained forward
    and backward pass plus one teacher forward pass per image (v3 and
    `symmetric=True` cost two of each). `symmetric=True` is the variant of
    lightly's CIFAR-10 benchmark: `0.5 * (L(q1, k2) + L(q2, k1))`, both
    terms against the queue as it was before the step, then the keys of
    view 2 and of view 1 enqueued (2N rows per step). lightly's second term
    already sees the first term's keys among its negatives (its memory bank
    is updated inside the loss call); here neither term sees this batch's
    keys as negatives, as in the one-sided step. Temperature 0.2, constant
    momentum 0.999, projector 2048-128 without BatchNorm, SimCLR-style views
    with crop scale (0.2, 1) and colour strength 0.5 (`--aug-plus`). The
    queue starts as random unit vectors, as the official code's. Not done
    here: shuffling BatchNorm across devices (MoCo's fix for information
    leaking through batch statistics on one device; the teacher here
    normalizes with its own batch statistics).

    The momentum encoder is updated after each step's loss with that
    step's online weights (the official code updates it just before
    computing keys). `model.encoder` is the online (query) encoder. Logged:
    `embedding_std` (std of the normalized projections; about 1/sqrt(dim)
    healthy, 0 at collapse), `teacher_momentum`.

    Short runs (measured; 2,000 MNIST digits, `small_convnet(width=16)`,
    BYOL's views without flips at crop scale (0.4, 1), projector 512-128,
    AdamW(1e-3), batch 128, 320 steps on TensorFlow; kNN (k=20) against 0.592
    for the mean of 5 random inits, `tests/test_staples_learning.py`): v3
    with predictor 512, `temperature=0.2` and momentum from 0.99: kNN 0.831;
    v2 (one-sided) with `queue_size=1024`, `temperature=0.2` and constant
    momentum 0.99: 0.832. `embedding_std` times sqrt(128): 1.00 and 0.97 (0
    would be collapse). The default v3 temperature 1.0 was not measured at this budget.

    Args:
        encoder: keras.Model. Images in [0, 1] -> (batch, D).
        version: "v3" or "v2".
        projection_hidden_dim: int or None (the version's default).
        projection_dim: int or None.
        prediction_hidden_dim: int. v3's predictor width (4096).
        temperature: float or None.
        queue_size: int. v2's number of negatives, 65536 (a few thousand
            suit datasets of tens of thousands of images).
        symmetric: bool. v2 only. False (the paper): queries from view 1
            against keys of view 2. True: both directions, averaged; twice
            the forward and backward work of a step.
        momentum_start: float or None.
        momentum_end: float or None.
        momentum_schedule_steps: int or None. None: set by each `fit`.
        augmenter: Keras layer or None. View 1.
        second_augmenter: Keras layer or None. View 2.
        projection_head: Keras layer or None.
        prediction_head: Keras layer or None (v3 only).
        num_classes: int or None. Online linear probe.
        seed: int or None.

    Example:
    ```python
    model = kerassl.MoCo(encoder)                       # v3
    model = kerassl.MoCo(encoder, version="v2", queue_size=4096)
    model = kerassl.MoCo(encoder, version="v2", queue_size=4096, symmetric=True)
    model.compile(optimizer="adamw")
    model.fit(images, epochs=10, batch_size=256)
    ```

    Reference: He et al., "Momentum Contrast for Unsupervised Visual
    Representation Learning", CVPR 2020 (https://arxiv.org/abs/1911.05722);
    Chen et al., "Improved Baselines with Momentum Contrastive Learning",
    2020 (https://arxiv.org/abs/2003.04297); Chen, Xie and He, "An
    Empirical Study of Training Self-Supervised Vision Transformers", ICCV
    2021 (https://arxiv.org/abs/2104.02057).
    """

    def __init__(
        self,
        encoder,
        version="v3",
        projection_hidden_dim=None,
        projection_dim=None,
        prediction_hidden_dim=4096,
        temperature=None,
        queue_size=65536,
        symmetric=False,
        momentum_start=None,
        momentum_end=None,
        momentum_schedule_steps=None,
        augmenter=None,
        second_augmenter=None,
        projection_head=None,
        prediction_head=None,
        num_classes=None,
        seed=None,
        **kwargs,
    ):
        if version not in VERSIONS:
            raise ValueError(f'version must be "v2" or "v3"; got {version!r}.')
        defaults = VERSIONS[version]
        self.version = version

        def pick(name, value):
            return defaults[name] if value is None else value

        self.projection_hidden_dim = int(pick("projection_hidden_dim", projection_hidden_dim))
        self.projection_dim = int(pick("projection_dim", projection_dim))
        self.prediction_hidden_dim = int(prediction_hidden_dim)
        self.temperature = losses.check_temperature(pick("temperature", temperature))
        if int(queue_size) < 1:
            raise ValueError(f"queue_size must be a positive int; got {queue_size}.")
        self.queue_size = int(queue_size)
        if not isinstance(symmetric, bool):
            raise ValueError(f"symmetric must be True or False; got {symmetric!r}.")
        if symmetric and version != "v2":
            raise ValueError("symmetric=True is a MoCo v2 option; MoCo v3's loss is always symmetric.")
        self.symmetric = symmetric
        projection_head = projection_head or heads.moco_projection_head(
            self.projection_hidden_dim, self.projection_dim, version
        )
        if version == "v3":
            prediction_head = prediction_head or heads.prediction_head(self.prediction_hidden_dim, self.projection_dim)
        elif prediction_head is not None:
            raise ValueError("MoCo v2 has no predictor; pass prediction_head only with version='v3'.")
        super().__init__(
            encoder,
            projection_head,
            prediction_head,
            augmenter=augmenter,
            second_augmenter=second_augmenter,
            momentum_start=pick("momentum_start", momentum_start),
            momentum_end=pick("momentum_end", momentum_end),
            momentum_schedule_steps=momentum_schedule_steps,
            num_classes=num_classes,
            seed=seed,
            **kwargs,
        )
        self.queue = None

    @property
    def one_sided(self):
        """The paper's v2 step: the encoder sees view 1 only, the teacher view 2 only."""
        return self.version == "v2" and not self.symmetric

    def default_augmenters(self, image_shape):
        size, channels = image_shape[1:3], image_shape[-1]
        if self.version == "v2":
            view = augment.simclr_augmenter(size, channels, scale=(0.2, 1.0), jitter_strength=0.5, seed=self.seed)
            return view, None
        return super().default_augmenters(image_shape)

    def build_extra(self, feature_dim, projection_dim):
        if self.version == "v2" and self.queue is None:
            self.queue = MemoryBank(self.queue_size, projection_dim, seed=self.seed, name="queue")

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        y_pred, labels = self.training_outputs(x, y, y_pred, training)
        if self.version == "v3":
            k1, k2 = split_views(y_pred["teacher_projections"])
            q1, q2 = split_views(y_pred["predictions"])
            loss = losses.moco_v3_loss(q1, k2, self.temperature) + losses.moco_v3_loss(q2, k1, self.temperature)
        elif self.symmetric:
            q1, q2 = split_views(y_pred["projections"])
            k1, k2 = (losses.l2_normalize(k) for k in split_views(y_pred["teacher_projections"]))
            # View 2's keys first, then view 1's: the order lightly's two loss calls enqueue them.
            keys = ops.concatenate([k2, k1], axis=0)
            negatives = self.queue.update(keys) if training else self.queue.content()
            loss = 0.5 * (
                losses.moco_v2_loss(q1, k2, negatives, self.temperature)
                + losses.moco_v2_loss(q2, k1, negatives, self.temperature)
            )
        else:
            # One view each (`one_sided`): queries of view 1, keys of view 2.
            q1 = ops.cast(y_pred["projections"], "float32")
            k2 = ops.cast(y_pred["teacher_projections"], "float32")
            keys = losses.l2_normalize(k2)
            negatives = self.queue.update(keys) if training else self.queue.content()
            loss = losses.moco_v2_loss(q1, keys, negatives, self.temperature)
        return self.finish_loss(loss, y_pred, labels, training)

    def get_config(self):
        config = super().get_config()
        config.update(
            version=self.version,
            projection_hidden_dim=self.projection_hidden_dim,
            projection_dim=self.projection_dim,
            prediction_hidden_dim=self.prediction_hidden_dim,
            temperature=self.temperature,
            queue_size=self.queue_size,
            symmetric=self.symmetric,
        )
        if self.version == "v2":
            config["prediction_head"] = None
        return config
