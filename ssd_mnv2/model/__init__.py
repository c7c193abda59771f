"""MobileNetV2 backbone, SSD heads and the SSD block."""
