"""The usage error every layer may raise: a setting that cannot work (commands exit 2)."""


class ConfigError(ValueError):
  """A setting that cannot work with this data or machine (a fold the split does not have, a
  batch that does not divide over the replicas, ...). Commands print it as one line and exit 2."""
