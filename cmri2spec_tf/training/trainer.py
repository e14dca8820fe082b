"""The CMRI2SPEC trainer: one translator update and one discriminator update per batch of pairs.

Translator (encoder + decoder), eq. (5):  L_MSE + beta * L_KL + lambda * L_T, where per pair
  L_MSE = eq. (1) for both members, L_KL = eq. (2) only when both say the same word (beta = 0
  otherwise), L_T = -log D(y_hat) for both members; each term is the mean over the pairs of a batch.
Discriminator, eq. (6): binary cross-entropy, real -> 1, translated (detached) -> 0.
Ablations of Table 2: `pair_disentangle=False` (no KL), no discriminator (no GAN).

Classes: `PairTrainer` holds what every method shares (pairs in, one translator update per batch
with its optimizer and loss scaling, replica scaling, the held-out L1/MSE test step);
`CMRI2SpecTrainer` adds the encoder/decoder with the latent split and its noise, the pairwise KL
and the optional discriminator; `Lip2AudSpecTrainer` supplies one network trained on eq. (1).

Shape follows the keras-io GAN guide: sub-models and Mean trackers made in __init__, a `metrics`
property, `compile(translator_optimizer, discriminator_optimizer)`, one GradientTape per update,
each optimizer applied to its own sub-models' variables only. Under mixed_float16 both optimizers
are LossScaleOptimizers (each its own dynamic scale); losses are float32.

Under tf.distribute (distribute.py) each replica runs train_step on its share of the global
batch and the optimizers sum the replicas' gradients; so every loss is divided by the replica
count before its gradient (the metrics get the undivided value), and the reparameterization noise
is drawn for the global batch and sliced, so R replicas update exactly as one device would.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from cmri2spec_tf.training import distribute, losses, recipes
from cmri2spec_tf.models import precision as precision_lib
from cmri2spec_tf.training.config import JIT_CHOICES, MODELS
from cmri2spec_tf.models.discriminator import build_discriminator
from cmri2spec_tf.models.lip2audspec import OUTPUT_LAYER as LIP2AUDSPEC_OUTPUT
from cmri2spec_tf.models.lip2audspec import build_lip2audspec
from cmri2spec_tf.models.translator import (OUTPUT_LAYER, build_decoder, build_encoder,
                                            build_translator, split_latent)


class PairTrainer(keras.Model):
  """The steps every method shares: a batch of pairs -> one translator update (eq. 1 plus what
  a subclass adds in `translator_terms`) -> `other_updates` (a subclass's discriminator);
  `test_step` scores single examples. `call` is the inference translation.

  Subclasses provide `networks`, `translator_variables`, `inference_model`, `output_layer`,
  `call` and `translator_terms`, and pass the names of the loss terms they log.
  """

  def __init__(self, loss_names=("loss", "l_mse"), precision: str = "float32", **kwargs):
    super().__init__(**kwargs)
    self.precision = precision_lib.check(precision)
    self.train_trackers = [keras.metrics.Mean(name=n) for n in loss_names]
    self.eval_trackers = [keras.metrics.Mean(name="l1"), keras.metrics.Mean(name="mse")]
    self.translator_optimizer = None

  @property
  def metrics(self):
    return self.train_trackers + self.eval_trackers

  def _maybe_symbolic_build(self, iterator=None, data_batch=None):
    """Keras's pre-fit symbolic build has nothing to do here (sub-models and optimizers are built
    in __init__ and compile, there is no compiled loss or metric). Skipping it also avoids
    keras-team/keras#20329: under MultiWorkerMirroredStrategy it fails on a dict batch."""
    del iterator, data_batch

  def wrap_optimizer(self, optimizer: keras.optimizers.Optimizer, variables):
    """The optimizer, loss-scaled under float16 compute, built for `variables`."""
    if precision_lib.uses_loss_scaling(self.precision):
      optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    optimizer.build(variables)
    return optimizer

  def optimizers_by_name(self) -> dict:
    """{"translator": optimizer, ...}: every optimizer of the method (a method, not a property,
    so that Keras's weight saving does not walk it as a second path to the optimizers)."""
    return {"translator": self.translator_optimizer}

  def compile(self, translator_optimizer, **kwargs):
    super().compile(optimizer=None, **kwargs)
    self.translator_optimizer = self.wrap_optimizer(translator_optimizer,
                                                    self.translator_variables)

  # ------------------------------------------------------------------ weight average
  def keeps_average(self) -> bool:
    """Whether the translator's optimizer keeps an EMA of its weights (recipes.py, "fast")."""
    optimizer = self.translator_optimizer
    return bool(getattr(getattr(optimizer, "inner_optimizer", optimizer), "use_ema", False))

  def use_average(self) -> list | None:
    """Puts the translator's weight average into its variables (what inference should read);
    returns the raw values for `use_raw`, or None when there is no average."""
    if not self.keeps_average():
      return None
    raw = [variable.numpy() for variable in self.translator_variables]
    self.translator_optimizer.finalize_variable_values(self.translator_variables)
    return raw

  def use_raw(self, raw: list | None) -> None:
    """Undoes `use_average` (training resumes from the raw weights)."""
    for variable, value in zip(self.translator_variables, raw or []):
      variable.assign(value)

  # ------------------------------------------------------------------ training
  def train_step(self, data):
    mri = tf.concat([data["mri_a"], data["mri_b"]], axis=0)  # one forward pass for both members
    real = tf.concat([data["spec_a"], data["spec_b"]], axis=0)
    terms, fake = self.translator_update(mri, real, tf.cast(data["same_word"], tf.float32))
    terms |= self.other_updates(real, fake)
    for tracker in self.train_trackers:
      tracker.update_state(terms[tracker.name])
    return distribute.step_logs(self.train_trackers)

  def translator_update(self, mri, real, same_word):
    """One step of the translator's loss (eq. 5, or eq. 1 alone) on its variables.
    Returns (loss terms with their sum as "loss", translations)."""
    with tf.GradientTape() as tape:
      terms, fake = self.translator_terms(mri, real, same_word)
      scaled = self.translator_optimizer.scale_loss(per_replica(terms["loss"]))
    variables = self.translator_variables
    self.translator_optimizer.apply(tape.gradient(scaled, variables), variables)
    return terms, tf.stop_gradient(fake)

  def other_updates(self, real, fake) -> dict:
    """Updates after the translator's on the same batch; their logged losses ({}: none)."""
    del real, fake
    return {}

  @staticmethod
  def per_pair(per_example, n_pairs):
    """[2 * n_pairs] per-example values, rows [members a; members b] -> their sum per pair."""
    return tf.reduce_sum(tf.reshape(per_example, [2, n_pairs]), 0)

  def reconstruction_term(self, real, fake, n_pairs):
    """Eq. (1) for both members of each pair, mean over the pairs."""
    return tf.reduce_mean(self.per_pair(losses.reconstruction_mse(real, fake), n_pairs))

  # ------------------------------------------------------------------ evaluation
  def test_step(self, data):
    """L1 and MSE per pixel (Table 2's L1) of single examples: y is one spectrogram per MRI
    [B, 64, 64, 1], or all windows of its recording [B, W, 64, 64, 1] (one forward pass each)."""
    mri, real = data[0], tf.cast(data[1], tf.float32)
    fake = tf.cast(self(mri, training=False), tf.float32)
    # [B, 64, 64, 1] -> [B, 1, 64, 64, 1] when y has a window axis (ranks can be unknown here,
    # as Keras relaxes shapes when it retraces)
    window_axes = tf.ones([tf.rank(real) - tf.rank(fake)], tf.int32)
    fake = tf.reshape(fake, tf.concat([tf.shape(fake)[:1], window_axes, tf.shape(fake)[1:]], 0))
    error = tf.reshape(real - fake, [tf.shape(real)[0], -1])
    self.eval_trackers[0].update_state(tf.reduce_mean(tf.abs(error), axis=1))
    self.eval_trackers[1].update_state(tf.reduce_mean(tf.square(error), axis=1))
    return distribute.step_logs(self.eval_trackers)


def per_replica(loss):
  """The share of a global-batch mean loss whose gradient one replica contributes to the sum."""
  return loss / tf.cast(distribute.replica_position()[1], loss.dtype)


class CMRI2SpecTrainer(PairTrainer):
  """The paper's method: encoder -> (s, mu, logvar) -> w = mu + sigma * eps -> decoder, the
  pairwise KL on same-word pairs (PairDisen) and, with a discriminator, the GAN terms."""

  def __init__(self, encoder, decoder, discriminator=None, *, beta=0.5, lam=0.5,
               pair_disentangle=True, seed=0, precision="float32", **kwargs):
    gan = discriminator is not None
    names = (("loss", "l_mse") + (("l_kl",) if pair_disentangle else ())
             + (("l_t", "l_dis") if gan else ()))
    super().__init__(names, precision, **kwargs)
    self.pair_disentangle, self.gan = pair_disentangle, gan
    self.encoder, self.decoder, self.discriminator = encoder, decoder, discriminator
    self.beta = float(beta) if pair_disentangle else 0.0
    self.lam = float(lam) if self.gan else 0.0
    self.noise_seed = int(seed)
    self.discriminator_optimizer = None
    self.built = True

  @property
  def networks(self) -> list[keras.Model]:
    """The sub-models whose weights make the method (optimizers and metrics aside)."""
    return [m for m in (self.encoder, self.decoder, self.discriminator) if m is not None]

  @property
  def translator_variables(self):
    return self.encoder.trainable_variables + self.decoder.trainable_variables

  def inference_model(self) -> keras.Model:
    """MRI -> spectrogram with w = mu (Fig. 2, grey part): what evaluation and export use."""
    return build_translator(self.encoder, self.decoder, self.precision)

  def output_layer(self) -> keras.layers.Layer:
    """The last layer before the sigmoid: its bias sets the output level."""
    return self.decoder.get_layer(OUTPUT_LAYER)

  def optimizers_by_name(self) -> dict:
    return super().optimizers_by_name() | (
        {"discriminator": self.discriminator_optimizer} if self.gan else {})

  def compile(self, translator_optimizer, discriminator_optimizer=None, **kwargs):
    super().compile(translator_optimizer, **kwargs)
    if self.gan:
      if discriminator_optimizer is None:
        raise ValueError("a discriminator needs a discriminator_optimizer")
      self.discriminator_optimizer = self.wrap_optimizer(
          discriminator_optimizer, self.discriminator.trainable_variables)

  def call(self, mri, training=False):
    s, mu, _ = split_latent(self.encoder(mri, training=training))
    return self.decoder(tf.concat([s, mu], axis=-1), training=training)

  def translator_terms(self, mri, real, same_word):
    """Eq. (5): L_MSE + beta * L_KL (same-word pairs only) + lambda * L_T."""
    n_pairs = tf.shape(same_word)[0]
    fake, mu, logvar = self.translate_for_training(mri)
    terms = {"l_mse": self.reconstruction_term(real, fake, n_pairs)}
    total = terms["l_mse"]
    if self.pair_disentangle:
      mu_a, mu_b = tf.split(mu, 2)
      logvar_a, logvar_b = tf.split(logvar, 2)
      kl = losses.pairwise_kl(mu_a, logvar_a, mu_b, logvar_b)
      terms["l_kl"] = tf.reduce_mean(same_word * kl)
      total += self.beta * terms["l_kl"]
    if self.gan:
      fake_logits = tf.cast(self.discriminator(fake, training=False), tf.float32)
      terms["l_t"] = tf.reduce_mean(self.per_pair(losses.translator_adversarial(fake_logits),
                                                  n_pairs))
      total += self.lam * terms["l_t"]
    terms["loss"] = total
    return terms, fake

  def translate_for_training(self, mri):
    """Encoder -> latent split -> reparameterized w (Sec. 2) -> decoder; float32 outputs."""
    s, mu, logvar = split_latent(self.encoder(mri, training=True))
    mu, logvar = tf.cast(mu, tf.float32), tf.cast(logvar, tf.float32)
    w = mu + tf.exp(0.5 * logvar) * self.latent_noise(mu)
    fake = self.decoder(tf.concat([s, tf.cast(w, s.dtype)], axis=-1), training=True)
    return tf.cast(fake, tf.float32), mu, logvar

  def latent_noise(self, mu):
    """eps ~ N(0, I) of w = mu + sigma * eps, a deterministic function of (seed, step).

    Drawn for the global batch and sliced to this replica's pairs (rows [members a; members b]),
    so R replicas see the noise one device sees on the same global batch, and a resumed run the
    noise of the run it continues.
    """
    replica, replicas = distribute.replica_position()
    local_pairs = tf.shape(mu)[0] // 2
    shape = tf.concat([[2, replicas, local_pairs], tf.shape(mu)[1:]], 0)
    step = tf.cast(self.translator_optimizer.iterations, tf.int32)
    eps = tf.random.stateless_normal(shape, seed=tf.stack([tf.constant(self.noise_seed), step]))
    return tf.reshape(tf.gather(eps, replica, axis=1), tf.shape(mu))

  def other_updates(self, real, fake) -> dict:
    return {"l_dis": self.discriminator_update(real, fake)} if self.gan else {}

  def discriminator_update(self, real, fake):
    """One step of eq. (6) on the discriminator only. Returns its loss."""
    with tf.GradientTape() as tape:
      real_logits = tf.cast(self.discriminator(real, training=True), tf.float32)
      fake_logits = tf.cast(self.discriminator(fake, training=True), tf.float32)
      loss = tf.reduce_mean(losses.discriminator_bce(real_logits, fake_logits))
      scaled = self.discriminator_optimizer.scale_loss(per_replica(loss))
    variables = self.discriminator.trainable_variables
    self.discriminator_optimizer.apply(tape.gradient(scaled, variables), variables)
    return loss


class Lip2AudSpecTrainer(PairTrainer):
  """The Lip2AudSpec baseline (models/lip2audspec.py) through the same train/test steps: one
  network, L_MSE only (eq. 1) on both members of each pair, no KL, no discriminator."""

  def __init__(self, network: keras.Model, *, precision="float32", **kwargs):
    super().__init__(("loss", "l_mse"), precision, **kwargs)
    self.network = network
    self.built = True

  @property
  def networks(self) -> list[keras.Model]:
    return [self.network]

  @property
  def translator_variables(self):
    return self.network.trainable_variables

  def inference_model(self) -> keras.Model:
    return self.network

  def output_layer(self) -> keras.layers.Layer:
    return self.network.get_layer(LIP2AUDSPEC_OUTPUT)

  def call(self, mri, training=False):
    return self.network(mri, training=training)

  def translator_terms(self, mri, real, same_word):
    fake = tf.cast(self.network(mri, training=True), tf.float32)
    l_mse = self.reconstruction_term(real, fake, tf.shape(same_word)[0])
    return {"l_mse": l_mse, "loss": l_mse}, fake


def build_trainer(*, model="cmri2spec", pair_disentangle=True, gan=True, beta=0.5, lam=0.5,
                  seed=0, translator_lr=1e-3, discriminator_lr=1e-4, adam_beta_1=0.5,
                  jit="auto", precision="float32", recipe="paper") -> PairTrainer:
  """Models of Table 1 (or the Lip2AudSpec baseline, which ignores pair_disentangle and gan),
  compiled with the paper's Adam settings (Sec. 3.2), built under `precision` (models/precision.py).
  `recipe` (recipes.py): "paper" as written; "fast" doubles the translator's learning rate and
  keeps the average of its weights.

  jit: "auto" (Keras's default: XLA on a single GPU, not on CPUs, under tf.distribute or with op
  determinism), "on" or "off".
  """
  if model not in MODELS:
    raise ValueError(f"model must be one of {MODELS}, got {model!r}")
  if jit not in JIT_CHOICES:
    raise ValueError(f"jit must be one of {tuple(JIT_CHOICES)}, got {jit!r}")
  how = recipes.get(recipe)
  adam = lambda lr: keras.optimizers.Adam(lr, beta_1=adam_beta_1)
  with precision_lib.dtype_policy(precision):  # the trainer and its optimizers too
    if model == "lip2audspec":
      trainer = Lip2AudSpecTrainer(build_lip2audspec(precision), precision=precision)
      trainer.compile(recipes.translator_adam(how, translator_lr, adam_beta_1),
                      jit_compile=JIT_CHOICES[jit])
      return trainer
    trainer = CMRI2SpecTrainer(build_encoder(precision), build_decoder(precision),
                               build_discriminator(precision) if gan else None, beta=beta,
                               lam=lam, pair_disentangle=pair_disentangle, seed=seed,
                               precision=precision)
    trainer.compile(recipes.translator_adam(how, translator_lr, adam_beta_1),
                    adam(discriminator_lr) if gan else None,
                    jit_compile=JIT_CHOICES[jit])
    return trainer
