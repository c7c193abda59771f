"""ssd_mnv2: a light single-shot face detector on MXNet/Gluon with a MobileNetV2 backbone."""

__version__ = "0.1.0"
