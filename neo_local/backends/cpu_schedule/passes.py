"""Relax-level rewrites of the default CPU pipeline (see ``neo_local.backends.cpu_schedule``).

Order (``relax_passes``):

1. ``FoldConstant`` and ``DecomposeOpsForInference`` (batch norm -> scale/shift), then
   ``rewrite_clip``: the ONNX importer turns ``Clip`` into ``call_tir(maximum|minimum, x, scalar)``,
   which ``ConvertLayout`` cannot see through; it becomes ``R.maximum``/``R.minimum`` again.
2. ``ConvertLayout``: every groups=1 NCHW conv2d whose channels divide by the vector width
   becomes NCHW{L}c / OIHW{L}i{L}o; elementwise ops, pools and means follow the blocked layout.
3. ``blocked_stem``: a conv2d the layout pass left in NCHW because its input channels do not
   divide (the 3-channel stem) becomes NCHW{C}c -> NCHW{L}c (one input block of all C channels).
4. ``LegalizeOps`` with ``legalize_conv2d``: blocked conv2d -> our own NCHWc TE compute
   (``conv2d_nchwc``: reduction over channel chunk, kh, kw, channel-in-block; padding as a separate
   ``data_pad`` stage); anything else -> TVM's own legalization.
5. ``FoldConstant`` (the weight ``layout_transform``s become repacked constants), fusion.
"""

from __future__ import annotations

import re

import tvm
from tvm import relax, te, tirx

CONV_BLOCK = "conv2d_nchwc"
PAD_BLOCK = "data_pad"

_BLOCKED_DATA = re.compile(r"^NCHW(\d+)c$")
_BLOCKED_KERNEL = re.compile(r"^OIHW(\d+)i(\d+)o$")


# --------------------------------------------------------------------------- Clip (call_tir) -> max/min


def _scalar_minmax_kind(func: tirx.PrimFunc) -> str | None:
    """'max' or 'min' when ``func`` is exactly out[...] = max|min(A[...], B[()]) over all axes."""
    if len(func.params) != 3:
        return None
    text = func.script()
    sig = re.search(r"def \w+\((\w+): T\.Buffer\((\(.*?\)), \"(\w+)\"\), (\w+): T\.Buffer\(\(\), \"(\w+)\"\), "
                    r"(\w+): T\.Buffer\((\(.*?\)), \"(\w+)\"\)\)", text)
    if sig is None or sig.group(1) != "A" or sig.group(2) != sig.group(7) or not (sig.group(3) == sig.group(5) == sig.group(8)):
        return None
    if text.count("T.sblock(") != 1:
        return None
    m = re.search(r"= T\.(max|min)\(A\[[^\]]*\], \w+\[\(\)\]\)", text)
    return m.group(1) if m else None


@relax.expr_functor.mutator
class _ClipRewriter(relax.PyExprMutator):
    def __init__(self, mod: tvm.IRModule):
        super().__init__(mod)
        self.mod_ = mod
        self._call_tir = tvm.ir.Op.get("relax.call_tir")

    def visit_call_(self, call: relax.Call) -> relax.Expr:  # noqa: N802 (TVM's naming)
        call = super().visit_call_(call)
        if call.op != self._call_tir or not isinstance(call.args[0], tvm.ir.GlobalVar):
            return call
        func = self.mod_[call.args[0]]
        if not isinstance(func, tirx.PrimFunc):
            return call
        args = call.args[1]
        if not isinstance(args, relax.Tuple) or len(args.fields) != 2:
            return call
        x, bound = args.fields
        if not isinstance(bound, tvm.ir.expr.Constant):
            return call
        kind = _scalar_minmax_kind(func)
        if kind is None:
            return call
        return (relax.op.maximum if kind == "max" else relax.op.minimum)(x, bound)


def rewrite_clip(mod: tvm.IRModule) -> tvm.IRModule:
    rewriter = _ClipRewriter(mod)
    for gv, func in mod.functions_items():
        if isinstance(func, relax.Function):
            rewriter.builder_.update_func(gv, rewriter.visit_expr(func))
    return relax.transform.DeadCodeElimination()(rewriter.builder_.get())


# --------------------------------------------------------------------------- 3-channel stem


def _static_shape(expr: relax.Expr) -> list[int] | None:
    sinfo = expr.ty
    if not isinstance(sinfo, relax.TensorType) or sinfo.shape is None:
        return None
    try:
        return [int(d) for d in sinfo.shape.values]
    except (TypeError, AttributeError):
        return None


@relax.expr_functor.mutator
class _StemRewriter(relax.PyExprMutator):
    def __init__(self, mod: tvm.IRModule, lanes: int):
        super().__init__(mod)
        self.lanes = lanes
        self._conv = tvm.ir.Op.get("relax.nn.conv2d")

    def visit_call_(self, call: relax.Call) -> relax.Expr:  # noqa: N802
        call = super().visit_call_(call)
        if call.op != self._conv:
            return call
        attrs = call.attrs
        if (attrs.data_layout, attrs.kernel_layout, attrs.out_layout) != ("NCHW", "OIHW", "NCHW"):
            return call
        if int(attrs.groups) != 1 or not isinstance(call.args[1], tvm.ir.expr.Constant):
            return call
        xs, ws = _static_shape(call.args[0]), _static_shape(call.args[1])
        if xs is None or ws is None or call.args[0].ty.dtype != "float32":
            return call
        cin, cout = xs[1], ws[0]
        if cin % self.lanes == 0 or cout % self.lanes or cin > 16:
            return call
        lanes = self.lanes
        emit = self.builder_.emit
        x = emit(relax.op.layout_transform(call.args[0], lambda n, c, h, w: (n, c // cin, h, w, c % cin)))
        w = emit(relax.op.layout_transform(
            call.args[1], lambda o, i, h, w: (o // lanes, i // cin, h, w, i % cin, o % lanes)
        ))
        y = emit(relax.op.nn.conv2d(
            x, w, strides=attrs.strides, padding=attrs.padding, dilation=attrs.dilation, groups=1,
            data_layout=f"NCHW{cin}c", kernel_layout=f"OIHW{cin}i{lanes}o", out_layout=f"NCHW{lanes}c",
            out_dtype="float32",
        ))
        return relax.op.layout_transform(y, lambda n, c, h, w, b: (n, c * lanes + b, h, w))


def blocked_stem(mod: tvm.IRModule, lanes: int) -> tvm.IRModule:
    rewriter = _StemRewriter(mod, lanes)
    for gv, func in mod.functions_items():
        if isinstance(func, relax.Function):
            rewriter.builder_.update_func(gv, rewriter.visit_expr(func))
    return rewriter.builder_.get()


# --------------------------------------------------------------------------- conv2d legalization


def conv2d_nchwc_compute(data: te.Tensor, kernel: te.Tensor, strides, padding, dilation) -> te.Tensor:
    """out[n, oc, oh, ow, ob] = sum_{icc, kh, kw, icb} pad(data)[n, icc, oh*s+kh*d, ow*s+kw*d, icb]
    * kernel[oc, icc, kh, kw, icb, ob] (data NCHW{ic}c, kernel OIHW{ic}i{oc}o, out NCHW{oc}c)."""
    n, icc, h, w, icb = (int(d) for d in data.shape)
    occ, icc2, kh, kw, icb2, ocb = (int(d) for d in kernel.shape)
    assert icc == icc2 and icb == icb2, "kernel does not match the data's channel blocking"
    sh, sw = (int(s) for s in strides)
    dh, dw = (int(s) for s in dilation)
    pt, pl, pb, pr = (int(p) for p in padding)
    oh = (h + pt + pb - (kh - 1) * dh - 1) // sh + 1
    ow = (w + pl + pr - (kw - 1) * dw - 1) // sw + 1
    if pt or pl or pb or pr:
        zero = tvm.tirx.const(0.0, data.dtype)

        def _pad(b, c, y, x, cb):
            inside = tvm.tirx.all(y >= pt, y < h + pt, x >= pl, x < w + pl)
            return tvm.tirx.if_then_else(inside, data[b, c, y - pt, x - pl, cb], zero)

        padded = te.compute((n, icc, h + pt + pb, w + pl + pr, icb), _pad, name=PAD_BLOCK)
    else:
        padded = data
    rc = te.reduce_axis((0, icc), name="rc")
    ry = te.reduce_axis((0, kh), name="ry")
    rx = te.reduce_axis((0, kw), name="rx")
    rb = te.reduce_axis((0, icb), name="rb")
    return te.compute(
        (n, occ, oh, ow, ocb),
        lambda b, c, y, x, cb: te.sum(
            padded[b, rc, y * sh + ry * dh, x * sw + rx * dw, rb] * kernel[c, rc, ry, rx, rb, cb],
            axis=[rc, ry, rx, rb],
        ),
        name=CONV_BLOCK,
    )


def _default_conv2d_legalize(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    return tvm.ir.Op.get("relax.nn.conv2d").get_attr("FLegalize")(bb, call)


def legalize_conv2d(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    attrs = call.attrs
    d = _BLOCKED_DATA.match(attrs.data_layout)
    k = _BLOCKED_KERNEL.match(attrs.kernel_layout)
    o = _BLOCKED_DATA.match(attrs.out_layout)
    dtype = call.ty.dtype if isinstance(call.ty, relax.TensorType) else None
    if (
        d and k and o and int(attrs.groups) == 1 and dtype == "float32"
        and d.group(1) == k.group(1) and k.group(2) == o.group(1)
        and call.args[0].ty.dtype == "float32" and call.args[1].ty.dtype == "float32"
        and _static_shape(call.args[0]) is not None and _static_shape(call.args[1]) is not None
    ):
        return bb.call_te(
            conv2d_nchwc_compute, call.args[0], call.args[1],
            list(attrs.strides), list(attrs.padding), list(attrs.dilation),
            primfunc_name_hint="conv2d_nchwc",
        )
    return _default_conv2d_legalize(bb, call)


# --------------------------------------------------------------------------- the whole Relax part


def relax_passes(mod: tvm.IRModule, lanes: int) -> tvm.IRModule:
    """Run the Relax-level rewrites and legalization; returns a module of fused call_tir kernels."""
    seq = tvm.transform.Sequential
    mod = seq([relax.transform.DecomposeOpsForInference(), relax.transform.FoldConstant()])(mod)
    mod = rewrite_clip(mod)
    mod = seq([
        relax.transform.ConvertLayout({"relax.nn.conv2d": [f"NCHW{lanes}c", f"OIHW{lanes}i{lanes}o"]}),
        relax.transform.Normalize(),
    ])(mod)
    mod = blocked_stem(mod, lanes)
    mod = seq([
        relax.transform.Normalize(),
        relax.transform.EliminateCommonSubexpr(),
        relax.transform.LegalizeOps(customize_legalize_map={"relax.nn.conv2d": legalize_conv2d}),
        relax.transform.FoldConstant(),
        relax.transform.DeadCodeElimination(),
        relax.transform.AnnotateTIROpPattern(),
        relax.transform.FuseOps(),
        relax.transform.FuseTIR(),
        relax.transform.DeadCodeElimination(),
    ])(mod)
    return mod
