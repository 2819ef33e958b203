"""Configuration layer: settings and their ranges, secrets, the bounded YAML
loader, metric direction and nvidia-tao-automl compatibility. Imports only
:mod:`tao_automl.errors`."""
