"""The ONNX graph contract (output names and layouts) and exact rewrites for ONNX Runtime's CPU kernels.

Below both ``models`` (which exports graphs) and ``runtime`` (which runs them); needs neither torch nor timm.
"""
