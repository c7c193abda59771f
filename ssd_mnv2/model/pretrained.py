"""Import ImageNet MobileNetV2 weights into Gluon's ``mobilenet_v2`` feature stack.

Two sources are supported:

* a TensorFlow Lite MobileNetV2 1.0 (224) model, int8 per-channel post-training quantized with
  batch norm folded into the convolutions (``*.tflite``), parsed with the ``tflite`` flatbuffers
  package. Weights are dequantized as ``(q - zero_point) * scale`` per output channel and converted
  from OHWI (depthwise: 1HWC) to Gluon's OIHW (depthwise: C1HW). Because batch norm is folded, every
  Gluon ``BatchNorm`` is set to identity-plus-bias (gamma 1, beta = folded bias, running mean 0,
  running var ``1 - eps``). The TF model's first inverted-residual block has no expansion 1x1
  convolution; Gluon's has one, which is set to the identity (its input is already ReLU6-clipped,
  so identity + ReLU6 reproduces the TF block).
* a Gluon model-zoo style ``mobilenetv2_<width>-*.params`` file (any width), either in the
  structural naming written by ``Block.save_parameters`` (``features.3.out.0.weight``) or the
  legacy prefixed naming (``mobilenetv20_features_linearbottleneck0_conv0_weight`` /
  ``features_linearbottleneck0_conv0_weight``).

Gluon keeps its symmetric padding for the stride-2 convolutions (TF uses asymmetric "SAME"
padding); the README of the weights notes that this still classifies sensibly.

Layers are passed as the list of ``get_mobilenet_v2(width).features`` children in their original
order: 20 of them (the detector's stack, truncated before the 1280-channel conv) or all 24.
"""
from __future__ import annotations

import os
import re
from typing import Dict, List, Optional, Tuple

import numpy as np

__all__ = [
    "TFLiteConv",
    "read_tflite_convs",
    "load_tflite_mobilenet_v2",
    "load_gluon_params",
    "load_pretrained_backbone",
    "slice_mobilenet_v2",
    "NUM_TRUNCATED_LAYERS",
    "NUM_FULL_LAYERS",
]

NUM_TRUNCATED_LAYERS = 20  # features children 0..19 (stem + 17 bottlenecks)
NUM_FULL_LAYERS = 24  # + 1280 conv, BN, ReLU6, global pool

# Convolutions of the TFLite MobileNetV2 1.0 in graph order.
_N_BACKBONE_CONVS = 1 + 2 + 16 * 3  # stem, first block (dw, project), 16 blocks (expand, dw, project)
_N_TFLITE_CONVS = _N_BACKBONE_CONVS + 2  # + 1280 conv + 1001-class classifier


# --------------------------------------------------------------------------------------------
# TFLite parsing
# --------------------------------------------------------------------------------------------
class TFLiteConv:
    """One dequantized (de)convolution of the TFLite graph, already in Gluon layout."""

    def __init__(self, index: int, op_index: int, kind: str, weight: np.ndarray,
                 bias: np.ndarray, stride: Tuple[int, int], padding: str, activation: str,
                 weight_name: str, bias_name: str):
        self.index = index  # position among the conv ops
        self.op_index = op_index  # position among all ops of the subgraph
        self.kind = kind  # "CONV_2D" or "DEPTHWISE_CONV_2D"
        self.weight = weight  # OIHW (depthwise: C,1,H,W), float32
        self.bias = bias  # (O,), float32
        self.stride = stride
        self.padding = padding  # "SAME" / "VALID"
        self.activation = activation  # "NONE", "RELU6", ...
        self.weight_name = weight_name
        self.bias_name = bias_name

    def describe(self) -> str:
        return (f"TFLite {self.kind} #{self.index} (op {self.op_index}) weight tensor "
                f"'{self.weight_name}' shape(OIHW)={tuple(self.weight.shape)}")

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return (f"TFLiteConv({self.index}, {self.kind}, w={tuple(self.weight.shape)}, "
                f"stride={self.stride}, act={self.activation})")


def _enum_names(enum_cls) -> Dict[int, str]:
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_") and isinstance(v, int)}


def _tensor_array(model, tensor) -> np.ndarray:
    import tflite

    buf = model.Buffers(tensor.Buffer())
    raw = buf.DataAsNumpy()
    if isinstance(raw, int) or raw is None or np.size(raw) == 0:
        raise ValueError(f"TFLite tensor '{tensor.Name().decode()}' has no constant data")
    dtypes = {
        tflite.TensorType.INT8: np.int8,
        tflite.TensorType.UINT8: np.uint8,
        tflite.TensorType.INT32: np.int32,
        tflite.TensorType.FLOAT32: np.float32,
    }
    if tensor.Type() not in dtypes:
        raise ValueError(f"TFLite tensor '{tensor.Name().decode()}' has unsupported type {tensor.Type()}")
    shape = tuple(int(s) for s in tensor.ShapeAsNumpy())
    return np.frombuffer(raw.tobytes(), dtype=dtypes[tensor.Type()]).reshape(shape)


def _quant_params(tensor) -> Tuple[Optional[np.ndarray], Optional[np.ndarray], int]:
    q = tensor.Quantization()
    if q is None or q.ScaleLength() == 0:
        return None, None, 0
    scale = np.asarray(q.ScaleAsNumpy(), dtype=np.float64)
    zp = (np.asarray(q.ZeroPointAsNumpy(), dtype=np.float64) if q.ZeroPointLength()
          else np.zeros_like(scale))
    return scale, zp, int(q.QuantizedDimension())


def _dequantize(model, tensor, fallback_scale: Optional[np.ndarray] = None) -> np.ndarray:
    """``(q - zero_point) * scale``, broadcast along the quantized dimension."""
    arr = _tensor_array(model, tensor)
    if arr.dtype == np.float32:
        return arr.astype(np.float32)
    scale, zp, qdim = _quant_params(tensor)
    if scale is None:
        if fallback_scale is None:
            raise ValueError(f"TFLite tensor '{tensor.Name().decode()}' has no quantization scale")
        scale, zp, qdim = fallback_scale, np.zeros_like(fallback_scale), 0
    bshape = [1] * arr.ndim
    if scale.size > 1:
        bshape[qdim] = scale.size
    out = (arr.astype(np.float64) - zp.reshape(bshape)) * scale.reshape(bshape)
    return out.astype(np.float32)


def read_tflite_convs(path: str) -> List[TFLiteConv]:
    """Return every CONV_2D / DEPTHWISE_CONV_2D of the first subgraph, in operator order.

    Weights are dequantized to float32 and converted to Gluon layout: OHWI -> OIHW for
    ordinary convolutions, 1HWC -> C1HW for depthwise ones. The int32 biases are dequantized with
    their own per-channel scale, or ``input_scale * weight_scale`` when the file stores none.
    """
    import tflite

    if not os.path.isfile(path):
        raise FileNotFoundError(2, "TFLite weights file not found", path)
    with open(path, "rb") as f:
        buf = f.read()
    model = tflite.Model.GetRootAsModel(buf, 0)
    if model.SubgraphsLength() < 1:
        raise ValueError(f"{path}: TFLite model has no subgraph")
    graph = model.Subgraphs(0)
    op_names = _enum_names(tflite.BuiltinOperator)
    act_names = _enum_names(tflite.ActivationFunctionType)
    pad_names = _enum_names(tflite.Padding)

    convs: List[TFLiteConv] = []
    for op_i in range(graph.OperatorsLength()):
        op = graph.Operators(op_i)
        code_obj = model.OperatorCodes(op.OpcodeIndex())
        code = max(int(code_obj.BuiltinCode()), int(code_obj.DeprecatedBuiltinCode()))
        name = op_names.get(code, str(code))
        if name not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            continue
        inputs = [op.Inputs(j) for j in range(op.InputsLength())]
        x_t = graph.Tensors(inputs[0])
        w_t = graph.Tensors(inputs[1])
        b_t = graph.Tensors(inputs[2]) if len(inputs) > 2 and inputs[2] >= 0 else None

        opts_tab = op.BuiltinOptions()
        if name == "CONV_2D":
            opts = tflite.Conv2DOptions()
        else:
            opts = tflite.DepthwiseConv2DOptions()
        opts.Init(opts_tab.Bytes, opts_tab.Pos)
        stride = (int(opts.StrideH()), int(opts.StrideW()))
        padding = pad_names.get(opts.Padding(), str(opts.Padding()))
        activation = act_names.get(opts.FusedActivationFunction(), str(opts.FusedActivationFunction()))

        w = _dequantize(model, w_t)
        if name == "CONV_2D":
            w = np.ascontiguousarray(w.transpose(0, 3, 1, 2))  # OHWI -> OIHW
        else:
            if w.shape[0] != 1:
                raise ValueError(f"{path}: depthwise weight '{w_t.Name().decode()}' has "
                                 f"unexpected shape {w.shape} (expected 1HWC)")
            mult = int(opts.DepthMultiplier()) or 1
            if mult != 1:
                raise ValueError(f"{path}: depthwise multiplier {mult} is not supported")
            w = np.ascontiguousarray(w.transpose(3, 0, 1, 2))  # 1HWC -> C1HW
        out_ch = w.shape[0]

        if b_t is not None:
            w_scale, _, _ = _quant_params(w_t)
            x_scale, _, _ = _quant_params(x_t)
            fallback = None
            if w_scale is not None and x_scale is not None:
                fallback = x_scale.reshape(-1)[0] * w_scale
            b = _dequantize(model, b_t, fallback_scale=fallback).reshape(-1)
            bias_name = b_t.Name().decode()
        else:
            b = np.zeros((out_ch,), np.float32)
            bias_name = "<none>"
        if b.shape != (out_ch,):
            raise ValueError(f"{path}: bias '{bias_name}' has shape {b.shape}, expected ({out_ch},)")
        convs.append(TFLiteConv(len(convs), op_i, name, w, b, stride, padding, activation,
                                w_t.Name().decode(), bias_name))
    return convs


# --------------------------------------------------------------------------------------------
# Gluon side helpers
# --------------------------------------------------------------------------------------------
def _as_layer_list(layers_or_net) -> list:
    if hasattr(layers_or_net, "features") and not isinstance(layers_or_net, (list, tuple)):
        return list(layers_or_net.features)
    if isinstance(layers_or_net, (list, tuple)):
        return list(layers_or_net)
    try:  # a (Hybrid)Sequential of the features children
        return list(layers_or_net)
    except TypeError as exc:
        raise TypeError("expected a list of mobilenet_v2 features children, a Sequential of them "
                        f"or a network with a .features attribute, got {type(layers_or_net)}") from exc


def _shape_ok(param_shape, data_shape) -> bool:
    if param_shape is None:
        return True
    if len(param_shape) != len(data_shape):
        return False
    return all(p == 0 or p == d for p, d in zip(param_shape, data_shape))


def _set_param(param, data: np.ndarray, source: str) -> None:
    import mxnet as mx

    data = np.asarray(data, dtype=np.float32)
    if not _shape_ok(param.shape, data.shape):
        raise ValueError(f"shape mismatch: Gluon parameter '{param.name}' has shape "
                         f"{tuple(param.shape)} but {source} gives {tuple(data.shape)}")
    param.set_data(mx.nd.ndarray.array(data, dtype=param.dtype or "float32"))


def _conv_bn_pairs(block) -> List[tuple]:
    """(conv, bn, followed_by_relu6) triples of a LinearBottleneck's ``.out`` in order."""
    from mxnet.gluon import nn

    children = list(block.out)
    pairs = []
    i = 0
    while i < len(children):
        c = children[i]
        if isinstance(c, nn.Conv2D):
            if i + 1 >= len(children) or not isinstance(children[i + 1], nn.BatchNorm):
                raise ValueError(f"block '{block.name}': conv '{c.name}' is not followed by a BatchNorm")
            relu = i + 2 < len(children) and type(children[i + 2]).__name__ == "RELU6"
            pairs.append((c, children[i + 1], relu))
            i += 2
        else:
            i += 1
    return pairs


def _check_layer_types(layers: list) -> None:
    from mxnet.gluon import nn

    if len(layers) not in (NUM_TRUNCATED_LAYERS, NUM_FULL_LAYERS):
        raise ValueError(f"expected {NUM_TRUNCATED_LAYERS} (truncated) or {NUM_FULL_LAYERS} (full) "
                         f"mobilenet_v2 features children, got {len(layers)}")
    if not isinstance(layers[0], nn.Conv2D) or not isinstance(layers[1], nn.BatchNorm):
        raise ValueError("features children 0/1 must be the stem Conv2D and its BatchNorm, got "
                         f"{type(layers[0]).__name__}/{type(layers[1]).__name__}")
    for i in range(3, 20):
        if not hasattr(layers[i], "out"):
            raise ValueError(f"features child {i} ('{layers[i].name}') is not a LinearBottleneck")
    if len(layers) == NUM_FULL_LAYERS:
        if not isinstance(layers[20], nn.Conv2D) or not isinstance(layers[21], nn.BatchNorm):
            raise ValueError("features children 20/21 must be the 1280-channel Conv2D and its BatchNorm")


def _conv_stride(conv) -> Tuple[int, int]:
    s = conv._kwargs.get("stride", (1, 1))
    return tuple(int(v) for v in (s if isinstance(s, (tuple, list)) else (s, s)))


def _load_conv_bn(conv, bn, tconv: Optional[TFLiteConv], *, identity_channels: int = 0,
                  relu6: Optional[bool] = None) -> None:
    """Load a TFLite conv into (conv, bn); BN becomes identity + folded bias."""
    if tconv is None:  # identity 1x1 conv, identity BN
        n = identity_channels
        w = np.eye(n, dtype=np.float32).reshape(n, n, 1, 1)
        b = np.zeros((n,), np.float32)
        source = f"identity {n}x{n} 1x1 conv (TFLite block has no expansion conv)"
        bsource = "zero bias (identity)"
    else:
        w, b = tconv.weight, tconv.bias
        source = tconv.describe()
        bsource = f"TFLite bias tensor '{tconv.bias_name}' (of {tconv.describe()})"
        if relu6 is not None and (tconv.activation == "RELU6") != relu6:
            raise ValueError(f"activation mismatch: Gluon conv '{conv.name}' is "
                             f"{'' if relu6 else 'not '}followed by ReLU6 but {source} has fused "
                             f"activation {tconv.activation} (operator order out of step?)")
        if _conv_stride(conv) != tconv.stride:
            raise ValueError(f"stride mismatch: Gluon conv '{conv.name}' has stride "
                             f"{_conv_stride(conv)} but {source} has {tconv.stride}")
    if conv.bias is not None:
        raise ValueError(f"Gluon conv '{conv.name}' unexpectedly has a bias")
    _set_param(conv.weight, w, source)
    eps = float(bn._kwargs.get("eps", 1e-5))
    n = b.shape[0]
    _set_param(bn.gamma, np.ones((n,), np.float32), bsource)
    _set_param(bn.beta, b, bsource)
    _set_param(bn.running_mean, np.zeros((n,), np.float32), bsource)
    _set_param(bn.running_var, np.full((n,), 1.0 - eps, np.float32), bsource)


# --------------------------------------------------------------------------------------------
# Public loaders
# --------------------------------------------------------------------------------------------
def load_tflite_mobilenet_v2(layers, path: str, include_head: bool = False
                             ) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """Load the TFLite MobileNetV2 1.0 weights into Gluon ``mobilenet_v2_1_0`` features children.

    ``layers``: the 20 (truncated) or 24 (full) children of ``get_mobilenet_v2(1.0).features``
    in order (a network with ``.features`` is accepted too). Shapes are checked; a mismatch
    raises ``ValueError`` naming the Gluon parameter and the TFLite tensor.

    With ``include_head=True`` (requires 24 layers) the 1280-channel conv is loaded as well and the
    1001-class classifier ``(weight (1001, 1280, 1, 1), bias (1001,))`` is returned as float32
    numpy arrays (index 0 is "background"); otherwise returns ``None``.
    """
    layers = _as_layer_list(layers)
    _check_layer_types(layers)
    if include_head and len(layers) != NUM_FULL_LAYERS:
        raise ValueError(f"include_head=True needs all {NUM_FULL_LAYERS} features children "
                         f"(got {len(layers)})")
    convs = read_tflite_convs(path)
    if len(convs) != _N_TFLITE_CONVS:
        raise ValueError(f"{path}: expected {_N_TFLITE_CONVS} convolutions in a MobileNetV2 1.0 "
                         f"TFLite graph, found {len(convs)}")
    it = iter(convs)

    # stem
    _load_conv_bn(layers[0], layers[1], next(it), relu6=True)
    # bottlenecks
    for li in range(3, 20):
        pairs = _conv_bn_pairs(layers[li])
        if len(pairs) != 3:
            raise ValueError(f"bottleneck '{layers[li].name}' has {len(pairs)} conv/bn pairs, expected 3")
        if li == 3:  # TF's first block: depthwise + project only
            conv, bn, _ = pairs[0]
            ch = int(convs[1].weight.shape[0])  # channels of TF's first depthwise conv
            _check_identity_shape(conv, ch)
            _load_conv_bn(conv, bn, None, identity_channels=ch)
            rest = pairs[1:]
        else:
            rest = pairs
        for conv, bn, relu in rest:
            _load_conv_bn(conv, bn, next(it), relu6=relu)
    head_conv = next(it)
    cls = next(it)
    if len(layers) == NUM_FULL_LAYERS:
        _load_conv_bn(layers[20], layers[21], head_conv, relu6=True)
    if not include_head:
        return None
    if cls.weight.shape[1:] != (head_conv.weight.shape[0], 1, 1):
        raise ValueError(f"{path}: unexpected classifier shape {cls.weight.shape}")
    return cls.weight.copy(), cls.bias.copy()


def _check_identity_shape(conv, ch: int) -> None:
    shp = tuple(conv.weight.shape)
    if ch == 0 or (len(shp) == 4 and shp[0] not in (0, ch)) or (len(shp) == 4 and shp[1] not in (0, ch)):
        raise ValueError(f"first bottleneck expansion conv '{conv.weight.name}' has shape {shp}; "
                         f"an identity needs ({ch}, {ch}, 1, 1)")


_LEGACY_RE = re.compile(r"^(?:arg:|aux:)?(?:.*?features_)(.+)$")


def _legacy_to_structural() -> Dict[str, str]:
    """Map legacy prefixed names (after 'features_') to structural names 'features.N....'."""
    from mxnet.gluon.model_zoo.vision import get_mobilenet_v2

    ref = get_mobilenet_v2(1.0)  # not initialised; names are width independent
    out = {}
    for skey, p in ref._collect_params_with_prefix().items():
        m = _LEGACY_RE.match(p.name)
        if skey.startswith("features.") and m:
            out[m.group(1)] = skey
    return out


def _read_params_file(path: str) -> Dict[str, np.ndarray]:
    import mxnet as mx

    try:
        loaded = mx.nd.load(path)
    except Exception as exc:  # mxnet raises MXNetError for corrupt files
        raise ValueError(f"{path}: cannot read as an MXNet .params file: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: MXNet .params file has no parameter names")
    structural = {}
    legacy_map = None
    for k, v in loaded.items():
        key = k[4:] if k.startswith(("arg:", "aux:")) else k
        if key.startswith("features."):
            structural[key] = v
            continue
        m = _LEGACY_RE.match(key)
        if m:
            if legacy_map is None:
                legacy_map = _legacy_to_structural()
            skey = legacy_map.get(m.group(1))
            if skey is not None:
                structural[skey] = v
    return structural


def load_gluon_params(layers_or_net, path: str) -> List[str]:
    """Load a Gluon model-zoo ``mobilenetv2_<width>-*.params`` file into features children.

    Handles the structural names written by ``save_parameters`` (``features.3.out.0.weight``)
    and the legacy prefixed names (``[mobilenetv20_]features_linearbottleneck0_conv0_weight``).
    Every parameter of the given layers must be present with the same shape; extra parameters of
    the file (the 1280 head, the classifier) are ignored. Returns the loaded parameter names.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(2, "Gluon .params file not found", path)
    layers = _as_layer_list(layers_or_net)
    file_params = _read_params_file(path)
    if not file_params:
        raise ValueError(f"{path}: no mobilenet_v2 'features' parameters found in the file")
    todo = []
    for i, layer in enumerate(layers):
        for sub, p in layer._collect_params_with_prefix().items():
            key = f"features.{i}.{sub}"
            if key not in file_params:
                raise ValueError(f"{path}: missing parameter '{key}' (Gluon parameter '{p.name}')")
            arr = file_params[key]
            if not _shape_ok(p.shape, arr.shape):
                raise ValueError(f"{path}: shape mismatch for '{key}': file has {tuple(arr.shape)}, "
                                 f"Gluon parameter '{p.name}' has {tuple(p.shape)} "
                                 "(wrong width multiplier?)")
            todo.append((key, p, arr))
    for _, p, arr in todo:  # only assign once everything checked
        p.set_data(arr.astype(p.dtype or "float32"))
    return [k for k, _, _ in todo]


def load_pretrained_backbone(layers, spec: str, width: float) -> str:
    """Load backbone weights according to ``spec`` and describe what was loaded.

    ``spec``: ``'none'`` (keep the current initialisation), a ``*.tflite`` path (ImageNet
    MobileNetV2 1.0; only ``width == 1.0``) or a ``*.params`` Gluon model-zoo path (any width
    matching the layers).
    """
    if spec is None or str(spec).strip().lower() in ("", "none"):
        return "none (random initialisation)"
    spec = str(spec)
    low = spec.lower()
    if low.endswith(".tflite"):
        if not os.path.isfile(spec):
            raise FileNotFoundError(2, "pretrained TFLite weights not found", spec)
        desc = f"ImageNet MobileNetV2 1.0 from TFLite int8 (dequantized, BN folded): {os.path.basename(spec)}"
        if abs(float(width) - 1.0) <= 1e-9:
            load_tflite_mobilenet_v2(layers, spec, include_head=False)
            return desc
        src = _width1_layers()
        load_tflite_mobilenet_v2(src, spec, include_head=False)
        slice_mobilenet_v2(src, _as_layer_list(layers))
        return f"{desc}, channel-sliced to width {width:g} (most important channels kept)"
    if low.endswith(".params"):
        if not os.path.isfile(spec):
            raise FileNotFoundError(2, "pretrained Gluon .params not found", spec)
        names = load_gluon_params(layers, spec)
        return f"Gluon MobileNetV2 {width:g} params ({len(names)} tensors): {os.path.basename(spec)}"
    raise ValueError(f"unknown pretrained spec '{spec}': expected 'none', a .tflite or a .params path")


# --------------------------------------------------------------------------------------------
# Width slicing: initialise a narrower MobileNetV2 from the width-1.0 weights
# --------------------------------------------------------------------------------------------
def _width1_layers() -> list:
    """The 20 truncated ``get_mobilenet_v2(1.0).features`` children, initialised (shapes known)."""
    import mxnet as mx
    from mxnet.gluon.model_zoo.vision import get_mobilenet_v2

    net = get_mobilenet_v2(1.0)
    net.initialize()
    layers = list(net.features)[:NUM_TRUNCATED_LAYERS]
    x = mx.nd.zeros((1, 3, 32, 32))
    for layer in layers:
        x = layer(x)
    return layers


def _pairs(layers: list) -> List[list]:
    """[[(stem conv, bn)], [(expand), (dw), (project)] per bottleneck...] as (conv, bn) tuples."""
    out = [[(layers[0], layers[1])]]
    for li in range(3, NUM_TRUNCATED_LAYERS):
        pairs = [(c, b) for c, b, _ in _conv_bn_pairs(layers[li])]
        if len(pairs) != 3:
            raise ValueError(f"bottleneck '{layers[li].name}' has {len(pairs)} conv/bn pairs, expected 3")
        out.append(pairs)
    return out


def _np(param) -> np.ndarray:
    return param.data().asnumpy()


def _top(score: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest scores, in increasing index order (ties: lower index first)."""
    order = np.argsort(-score, kind="stable")[:k]
    return np.sort(order)


def slice_mobilenet_v2(src_layers: list, dst_layers: list) -> Dict[int, np.ndarray]:
    """Copy a wide MobileNetV2 (e.g. width 1.0) into a narrower one by keeping channels.

    Both are the 20 truncated ``features`` children, with known shapes. Every convolution of
    the narrow net receives the sub-tensor of its wide counterpart at the kept (output, input)
    channels, every BatchNorm the kept entries. Channels are chosen by importance:

    * the residual stream of a stage (all bottlenecks with the same output channels share it,
      their outputs are added): L2 norms of the producing filters plus those of the consuming
      input columns, summed over the stage;
    * the expanded channels inside a bottleneck: the product of the expand filter, depthwise
      filter and project input-column norms.

    This is structured pruning used as an initialisation: it is not the accuracy of a model
    trained at that width, and the detector is fine-tuned afterwards.

    Returns the kept output channels of every block (0: the stem, then one per bottleneck).
    """
    src, dst = _pairs(_as_layer_list(src_layers)), _pairs(_as_layer_list(dst_layers))
    if len(src) != len(dst):
        raise ValueError(f"cannot slice: {len(src)} vs {len(dst)} blocks")

    def n_out(pair) -> int:
        return int(pair[0].weight.shape[0])

    # stream groups: stem, then runs of bottlenecks with equal output channels (residual stages)
    groups: List[List[int]] = [[0]]
    for bi in range(1, len(src)):
        if bi > 1 and n_out(src[bi][2]) == n_out(src[bi - 1][2]):
            groups[-1].append(bi)
        else:
            groups.append([bi])
    stream_idx: Dict[int, np.ndarray] = {}  # block -> kept output channels of that block
    for gi, g in enumerate(groups):
        prod = [src[bi][0] if bi == 0 else src[bi][2] for bi in g]
        score = sum(np.sqrt((_np(c.weight) ** 2).reshape(n_out((c, b)), -1).sum(1)) for c, b in prod)
        consumers = [bi for bi in g[1:]] + (groups[gi + 1][:1] if gi + 1 < len(groups) else [])
        for bi in consumers:
            w = _np(src[bi][0][0].weight)  # expand conv (O, I, 1, 1)
            if bi > 1:  # block 1's expansion is the identity: no information
                score = score + np.sqrt((w ** 2).sum(axis=(0, 2, 3)))
        k = n_out(dst[g[0]][0] if g[0] == 0 else dst[g[0]][2])
        idx = _top(score, k)
        for bi in g:
            stream_idx[bi] = idx

    def put(dpair, spair, out_idx, in_idx) -> None:
        (dc, db), (sc, sb) = dpair, spair
        w = _np(sc.weight)[out_idx]
        if in_idx is not None:
            w = w[:, in_idx]
        _set_param(dc.weight, w, f"slice of '{sc.weight.name}'")
        for name in ("gamma", "beta", "running_mean", "running_var"):
            _set_param(getattr(db, name), _np(getattr(sb, name))[out_idx], f"slice of '{getattr(sb, name).name}'")

    put(dst[0][0], src[0][0], stream_idx[0], None)
    prev = stream_idx[0]
    for bi in range(1, len(src)):
        (ec, _), (dc, _), (pc, _) = src[bi]
        k = n_out(dst[bi][0])
        if bi == 1:  # identity expansion: keep it the identity on the kept stream channels
            if k != len(prev):
                raise ValueError("first bottleneck: expansion width differs from the stem's")
            exp_idx = prev
        else:
            n = n_out(src[bi][0])
            score = (np.sqrt((_np(ec.weight) ** 2).reshape(n, -1).sum(1))
                     * np.sqrt((_np(dc.weight) ** 2).reshape(n, -1).sum(1))
                     * np.sqrt((_np(pc.weight) ** 2).sum(axis=(0, 2, 3))))
            exp_idx = _top(score, k)
        put(dst[bi][0], src[bi][0], exp_idx, prev)
        put(dst[bi][1], src[bi][1], exp_idx, None)  # depthwise: (C, 1, 3, 3)
        put(dst[bi][2], src[bi][2], stream_idx[bi], exp_idx)
        prev = stream_idx[bi]
    return stream_idx
