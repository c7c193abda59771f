from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="ssd_mnv2",
    version="0.1.0",
    description="A light single-shot face detector on MXNet/Gluon with a MobileNetV2 backbone",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0 (code); the shipped model is trained on WIDER FACE (non-commercial research)",
    python_requires=">=3.8,<3.12",
    packages=find_packages(include=["ssd_mnv2", "ssd_mnv2.*"]),
    package_data={"ssd_mnv2": ["models/*.params", "models/*.yaml", "models/*.json"]},
    include_package_data=True,
    install_requires=[
        "mxnet==1.9.1",                       # built with oneDNN and the distributed kvstore
        "numpy==1.23.5",                      # numpy >= 1.24 breaks mxnet 1.9.1
        "gluoncv==0.10.5.post0",
        "opencv-python-headless>=4.5,<4.12",  # 4.12+ needs numpy 2
        "matplotlib>=3.10,<3.11",
        "scipy>=1.10,<1.16",
        "tqdm>=4.60",
        "PyYAML>=6.0",
        "tflite>=2.10",                       # parse the ImageNet TFLite weights
        "Pillow>=9",
        "onnx>=1.15,<1.24",                   # export; onnxruntime is the default (fastest) backend
        "onnxruntime>=1.16",
        "pycocotools>=2.0.7",                 # COCO AP of `evaluate --format voc|coco`
    ],
    extras_require={
        "dev": ["pytest>=7", "nbclient>=0.7", "nbformat>=5", "ipykernel>=6"],
        "onnx": [],                           # kept for old install commands: now core dependencies
    },
    entry_points={"console_scripts": ["ssd-mnv2=ssd_mnv2.cli:main"]},
)
