"""Deployment, one job per module (no imports here: each module loads only what it needs).

- :mod:`.mxnet_symbol`: MXNet symbol export (``-symbol.json`` + ``-0000.params``) and loading
- :mod:`.onnx`: ONNX export, the ONNX export cache, :class:`~.onnx.OnnxDetector` (ONNX Runtime)
  and the numpy decode + NMS of the raw graph
- :mod:`.int8_onnx`: int8 for ONNX Runtime (static QDQ quantization)
- :mod:`.int8_onednn`: int8 for MXNet/oneDNN (``quantize_net_v2``), :func:`~.int8_onednn.compare_ap`
- :mod:`.calibration`: the calibration images of both int8 engines
- :mod:`.backends`: the backend vocabulary and :func:`~.backends.make_detector`
- :mod:`.protocol`: :class:`~.protocol.FaceDetector`, what every detector offers
"""
